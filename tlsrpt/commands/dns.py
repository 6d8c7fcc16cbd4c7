"""`tlsrpt dns`, `tlsrpt check` and `tlsrpt enforce-plan`: publish the records, check them
live, and plan the switch to enforce."""

from __future__ import annotations

import importlib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import click

from ingest.database import DatabaseBusy, DatabaseMissing
from tlsrpt.dns_lookup import Lookup, LookupFailed, Nameserver
from tlsrpt.domain_check import Checklist, CheckSettings, Status, check_domain
from tlsrpt.enforce_plan import EnforcePlan, plan_enforce
from tlsrpt.hostnames import InvalidName, normalise_hostname
from tlsrpt.options import COMMON_ERRORS, data_dir_option, json_option, print_json, user_errors
from tlsrpt.policy_fetch import FetchFailed, fetch_policy
from tlsrpt.records import (
    STS_PREFIX,
    TLSRPT_PREFIX,
    RecordError,
    build_sts,
    build_tlsrpt,
    encode_rua_uri,
    new_sts_id,
)
from tlsrpt.sts_policy import MAX_AGE_LIMIT, Mode, build_policy, parse_policy, policy_url

F = TypeVar("F", bound=Callable[..., Any])
_TXT_STRING = 255
_DEFAULT_MAX_AGE = {Mode.TESTING: 86400, Mode.NONE: 86400, Mode.ENFORCE: 604800}


def _domain(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return normalise_hostname(value, what="domain")
    except InvalidName as exc:
        raise click.BadParameter(str(exc)) from exc


def _nameservers(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[Nameserver, ...]:
    try:
        return tuple(Nameserver.parse(v) for v in value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _rua_uris(scheme: str) -> Callable[[click.Context, click.Parameter, tuple[str, ...]], Any]:
    def check(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
        try:
            uris = tuple(encode_rua_uri(v) for v in value)
        except RecordError as exc:
            raise click.BadParameter(str(exc)) from exc
        wrong = [u for u in uris if not u.lower().startswith(scheme)]
        if wrong:
            raise click.BadParameter(f"{wrong[0]!r} is not a {scheme} URI")
        return uris

    return check


domain_argument = click.argument("domain", callback=_domain)


def network_options(func: F) -> F:
    """Where and how to look things up: DNS server, trusted CAs, ports, time limit."""
    options = [
        click.option(
            "--nameserver",
            "nameservers",
            multiple=True,
            callback=_nameservers,
            metavar="HOST[:PORT]",
            help="Ask this DNS server instead of the system's (repeatable).",
        ),
        click.option(
            "--ca-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Trust only the CA certificates in this PEM file (default: the system's).",
        ),
        click.option(
            "--https-port",
            type=click.IntRange(1, 65535),
            default=443,
            show_default=True,
            help="Port of the policy host mta-sts.DOMAIN.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(0.1, 600),
            default=10.0,
            show_default=True,
            help="Seconds allowed for each DNS question, the policy fetch and each MX probe.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _tls_context(ca_file: Path | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except ssl.SSLError as exc:
        raise click.ClickException(f"--ca-file {ca_file}: not a PEM CA file ({exc})") from exc


# tlsrpt dns


@click.command("dns", short_help="Print the TLS-RPT and MTA-STS records to publish.")
@domain_argument
@click.option(
    "--rua",
    multiple=True,
    required=True,
    metavar="URI",
    help="Where senders send reports: mailto:ADDRESS or https://URL (repeatable). "
    "',', '!' and ';' are percent-encoded for you.",
)
@click.option(
    "--mx",
    multiple=True,
    metavar="HOST",
    help="An MX host, or *.example.com for any one label under it (repeatable).",
)
@click.option(
    "--mode",
    type=click.Choice([m.value for m in Mode]),
    default=Mode.TESTING.value,
    show_default=True,
    help="testing: report only; enforce: senders refuse MXes that fail; none: withdraw.",
)
@click.option(
    "--max-age",
    type=int,
    help=f"Seconds senders may cache the policy, at most {MAX_AGE_LIMIT} "
    "(default: 86400 in testing, 604800 in enforce).",
)
@click.option("--id", "sts_id", help="The policy id (default: the current UTC time).")
@click.option(
    "--ttl", type=click.IntRange(60), default=3600, show_default=True, help="TTL for --zone."
)
@click.option("--zone", is_flag=True, help="Print BIND zone-file lines.")
@json_option
@user_errors(RecordError)
def dns_command(
    domain: str,
    rua: tuple[str, ...],
    mx: tuple[str, ...],
    mode: str,
    max_age: int | None,
    sts_id: str | None,
    ttl: int,
    zone: bool,
    as_json: bool,
) -> None:
    """Print the DNS records and the MTA-STS policy file to publish for DOMAIN.

    \b
    _smtp._tls.DOMAIN  TXT  where senders send their TLS reports (RFC 8460)
    _mta-sts.DOMAIN    TXT  announces the MTA-STS policy and its id (RFC 8461)
    https://mta-sts.DOMAIN/.well-known/mta-sts.txt   the policy file itself

    Everything printed is checked against the RFC grammar first.
    """
    policy_mode = Mode(mode)
    tlsrpt = build_tlsrpt(rua)
    sts = build_sts(sts_id or new_sts_id(datetime.now(UTC)))
    policy = build_policy(
        policy_mode, mx, _DEFAULT_MAX_AGE[policy_mode] if max_age is None else max_age
    )
    records = [
        (f"{TLSRPT_PREFIX}.{domain}", tlsrpt.text(), "where senders send their reports"),
        (f"{STS_PREFIX}.{domain}", sts.text(), "announces the policy; change id with each policy"),
    ]
    if as_json:
        print_json(
            {
                "domain": domain,
                "records": [
                    {
                        "name": name,
                        "type": "TXT",
                        "ttl": ttl,
                        "value": value,
                        "strings": _txt_strings(value),
                    }
                    for name, value, _ in records
                ],
                "policy_url": policy_url(domain),
                "policy": policy.text(),
                "mode": str(policy.mode),
                "mx": list(policy.mx),
                "max_age": policy.max_age,
            }
        )
        return
    if zone:
        for name, value, about in records:
            click.echo(f"; {about}")
            strings = " ".join(f'"{s}"' for s in _txt_strings(value))
            click.echo(f"{name}. {ttl} IN TXT {strings}")
        click.echo(f"; mta-sts.{domain} needs A/AAAA (or CNAME) records for the web server")
        click.echo(f"; that serves {policy_url(domain)}")
        return
    for name, value, about in records:
        click.echo(f"TXT record ({about})")
        click.echo(f"  name:  {name}")
        click.echo(f"  value: {value}")
        click.echo()
    click.echo(f"Policy file, served as text/plain with status 200 at {policy_url(domain)}")
    click.echo(f"(mta-sts.{domain} needs an address and a certificate valid for that name):")
    click.echo()
    click.echo(policy.text(), nl=False)


def _txt_strings(value: str) -> list[str]:
    """A TXT value as character-strings of at most 255 bytes (records are ASCII)."""
    return [value[i : i + _TXT_STRING] for i in range(0, len(value), _TXT_STRING)] or [""]


# tlsrpt check


@click.command("check", short_help="Check a domain's records, policy and MX TLS live.")
@domain_argument
@click.option(
    "--mailbox",
    "mailboxes",
    multiple=True,
    callback=_rua_uris("mailto:"),
    metavar="ADDR",
    help="This collector's report address; the rua list should contain it (repeatable).",
)
@click.option(
    "--https-url",
    "https_urls",
    multiple=True,
    callback=_rua_uris("https:"),
    metavar="URL",
    help="This collector's HTTPS report URL; the rua list should contain it (repeatable).",
)
@network_options
@click.option(
    "--smtp-port",
    type=click.IntRange(1, 65535),
    default=25,
    show_default=True,
    help="Port to probe STARTTLS on each MX.",
)
@json_option
@user_errors(RecordError)
def check_command(
    domain: str,
    mailboxes: tuple[str, ...],
    https_urls: tuple[str, ...],
    nameservers: tuple[Nameserver, ...],
    ca_file: Path | None,
    https_port: int,
    timeout: float,
    smtp_port: int,
    as_json: bool,
) -> None:
    """Check DOMAIN's TLS-RPT and MTA-STS setup live, as a sender sees it.

    \b
    - the TLS-RPT TXT record: exactly one, valid, its rua pointing at this collector
    - the MTA-STS TXT record and its id
    - the policy over HTTPS: status 200 with no redirect, text/plain, at most 64 KB,
      within --timeout, certificate valid for mta-sts.DOMAIN; then its content
    - each MX: matched by a policy mx pattern; STARTTLS with a trusted, unexpired
      certificate naming the MX, and the days until it expires

    Exit status 0 when nothing fails (warnings allowed), 1 otherwise.
    """
    settings = CheckSettings(
        lookup=Lookup(nameservers, timeout),
        tls_context=_tls_context(ca_file),
        https_port=https_port,
        smtp_port=smtp_port,
        timeout=timeout,
        mailboxes=mailboxes,
        https_urls=https_urls,
    )
    checklist = check_domain(domain, settings)
    if as_json:
        print_json(checklist.as_dict())
    else:
        _print_checklist(checklist)
    if not checklist.ok:
        raise SystemExit(1)


_MARK = {Status.PASS: "PASS", Status.WARN: "WARN", Status.FAIL: "FAIL"}


def _print_checklist(checklist: Checklist) -> None:
    click.echo(f"Checking {checklist.domain}")
    click.echo()
    width = max(len(item.name) for item in checklist.items)
    for item in checklist.items:
        colour = {"pass": "green", "warn": "yellow", "fail": "red"}[item.status]
        mark = click.style(_MARK[item.status], fg=colour, bold=True)
        click.echo(f"  {mark}  {item.name.ljust(width)}  {item.detail}")
        if item.fix and item.status is not Status.PASS:
            click.echo(f"        {''.ljust(width)}  fix: {item.fix}")
    counts = {s: sum(1 for i in checklist.items if i.status is s) for s in Status}
    click.echo()
    click.echo(
        f"{counts[Status.FAIL]} failed, {counts[Status.WARN]} warnings, "
        f"{counts[Status.PASS]} passed"
    )


# tlsrpt enforce-plan


class _Reason(Protocol):
    message: str


class _Verdict(Protocol):
    """What `analysis.verdict.domain_verdict` returns."""

    decision: Any
    reasons: Sequence[_Reason]
    next_steps: Sequence[str]

    def as_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class _VerdictLookup:
    verdict: _Verdict | None
    missing: str | None


def _load_verdict(data_dir: Path, domain: str) -> _VerdictLookup:
    """The analysis verdict for the domain, when the analysis and a database exist."""
    try:
        module = importlib.import_module("analysis.verdict")
    except ModuleNotFoundError as exc:
        if exc.name != "analysis.verdict":
            raise
        return _VerdictLookup(None, "No verdict: this installation cannot analyse the reports.")
    try:
        verdict: _Verdict = module.domain_verdict(data_dir, domain)
    except (DatabaseMissing, DatabaseBusy) as exc:
        return _VerdictLookup(None, f"No verdict: {exc}.")
    return _VerdictLookup(verdict, None)


def _decision(verdict: _Verdict) -> str:
    return str(getattr(verdict.decision, "value", verdict.decision))


@click.command("enforce-plan", short_help="Print the steps to switch MTA-STS to mode: enforce.")
@domain_argument
@click.option(
    "--mx",
    multiple=True,
    metavar="HOST",
    help="MX host or *.example.com pattern for the enforce policy (repeatable; "
    "default: the patterns of the live policy).",
)
@click.option(
    "--max-age",
    type=click.IntRange(0, MAX_AGE_LIMIT),
    help="max_age for the enforce policy (default: the live one, at least a week).",
)
@network_options
@data_dir_option
@json_option
@user_errors(RecordError, *COMMON_ERRORS)
def enforce_plan_command(
    domain: str,
    mx: tuple[str, ...],
    max_age: int | None,
    nameservers: tuple[Nameserver, ...],
    ca_file: Path | None,
    https_port: int,
    timeout: float,
    data_dir: Path,
    as_json: bool,
) -> None:
    """Print how to switch DOMAIN's MTA-STS policy to mode: enforce.

    First the verdict of the stored reports (when there are any), then the steps in
    order: the new policy file, the new id for the _mta-sts TXT record (published after
    the policy), and what to watch in the reports afterwards.

    The mx patterns and max_age come from --mx/--max-age, else from the live policy at
    https://mta-sts.DOMAIN/.well-known/mta-sts.txt.
    """
    found = _load_verdict(data_dir, domain)
    lookup = Lookup(nameservers, timeout)
    current = None
    source = "the --mx options"
    if not mx or max_age is None:
        try:
            fetched = fetch_policy(
                domain,
                lookup.addresses(f"mta-sts.{domain}"),
                context=_tls_context(ca_file),
                port=https_port,
                timeout=timeout,
            )
            current = parse_policy(fetched.text).policy
        except (LookupFailed, FetchFailed) as exc:
            if not mx:
                raise click.ClickException(
                    f"cannot read the live policy ({exc}); give the MX hosts with --mx"
                ) from exc
        if current is None and not mx:
            raise click.ClickException(
                f"the live policy at {policy_url(domain)} is not valid; give the MX hosts with --mx"
            )
        if current is not None and not mx:
            mx = current.mx
            source = f"the live policy at {policy_url(domain)} (mode {current.mode})"
    try:
        mx_hosts = [host for _, host in lookup.mx(domain) if host != "."]
    except LookupFailed:
        mx_hosts = []
    plan = plan_enforce(
        domain,
        mx,
        datetime.now(UTC),
        max_age=max_age,
        current=current,
        source=source,
        mx_hosts=mx_hosts,
    )
    if as_json:
        print_json(
            {
                "verdict": found.verdict.as_dict() if found.verdict else None,
                "verdict_missing": found.missing,
                "current_mode": str(current.mode) if current else None,
                **plan.as_dict(),
            }
        )
        return
    _print_verdict(found)
    _print_plan(plan, current.mode if current else None)


def _print_verdict(found: _VerdictLookup) -> None:
    verdict = found.verdict
    if verdict is None:
        click.echo(found.missing or "No verdict.")
        click.echo()
        return
    decision = _decision(verdict)
    colour = "green" if decision == "ready" else "yellow"
    click.echo("Verdict from the stored reports: " + click.style(decision, fg=colour, bold=True))
    for reason in verdict.reasons:
        click.echo(f"  - {reason.message}")
    for step in verdict.next_steps:
        click.echo(f"  next: {step}")
    if decision != "ready":
        click.echo("The reports do not support enforce yet: fix the above before publishing this.")
    click.echo()


def _print_plan(plan: EnforcePlan, current_mode: Mode | None) -> None:
    click.echo(f"Switching {plan.domain} to MTA-STS mode: enforce")
    click.echo(f"mx patterns from {plan.source}")
    if current_mode is Mode.ENFORCE:
        click.echo("The live policy is already in mode enforce; this plan re-publishes it.")
    for host in plan.unmatched_mx:
        warning = click.style("Warning:", fg="red", bold=True)
        click.echo(
            f"{warning} the MX {host} matches no mx pattern below; in enforce mode senders "
            f"refuse to deliver to it. Add --mx {host} (or fix the MX records) first."
        )
    click.echo()
    for number, step in enumerate(plan.steps, start=1):
        click.echo(f"{number}. {step}")
    click.echo()
    click.echo(f"New policy file ({policy_url(plan.domain)}):")
    click.echo()
    click.echo(plan.policy.text())
    click.echo("New TXT record, published after the policy:")
    click.echo(f"  {STS_PREFIX}.{plan.domain}  TXT  {plan.record.text()}")
    click.echo()
    click.echo("Watch in the reports afterwards:")
    for item in plan.watch:
        click.echo(f"  - {item}")
