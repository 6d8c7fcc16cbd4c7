"""`tlsrpt enforce-plan`: the verdict of the stored reports, then the steps to switch the
MTA-STS policy to enforce."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import click

from analysis.verdict import Decision, Verdict, domain_verdict
from analysis.views import format_verdict
from analysis.window import BadWindow
from ingest.database import DatabaseBusy, DatabaseMissing
from tlsrpt.commands.network import domain_argument, network_options, tls_context
from tlsrpt.dns_lookup import Lookup, LookupFailed, Nameserver
from tlsrpt.enforce_plan import EnforcePlan, plan_enforce
from tlsrpt.options import (
    COMMON_ERRORS,
    data_dir_option,
    json_option,
    print_json,
    user_errors,
    verdict_window_options,
)
from tlsrpt.policy_fetch import FetchFailed, fetch_policy
from tlsrpt.records import STS_PREFIX, RecordError
from tlsrpt.sts_policy import MAX_AGE_LIMIT, Mode, parse_policy, policy_url


@dataclass(frozen=True)
class _VerdictLookup:
    verdict: Verdict | None
    missing: str | None
    """Why there is no verdict: one line for the user."""


def _load_verdict(data_dir: Path, domain: str, end: date | None, days: int) -> _VerdictLookup:
    """The verdict of the stored reports; none when there is no database yet or it stays
    busy (a domain without reports gets its verdict: insufficient_data)."""
    try:
        verdict = domain_verdict(data_dir, domain, end=end, days=days)
    except (DatabaseMissing, DatabaseBusy) as exc:
        return _VerdictLookup(None, f"No verdict: {exc}.")
    return _VerdictLookup(verdict, None)


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
@verdict_window_options
@network_options
@data_dir_option
@json_option
@user_errors(RecordError, BadWindow, *COMMON_ERRORS)
def enforce_plan_command(
    domain: str,
    mx: tuple[str, ...],
    max_age: int | None,
    days: int,
    end: datetime | None,
    nameservers: tuple[Nameserver, ...],
    ca_file: Path | None,
    https_port: int,
    timeout: float,
    data_dir: Path,
    as_json: bool,
) -> None:
    """Print how to switch DOMAIN's MTA-STS policy to mode: enforce.

    First the verdict of the stored reports over the --days UTC days ending with --end
    (as `tlsrpt verdict` prints it; one line instead when there is no database yet),
    then the steps in order: the new policy file, the new id for the _mta-sts TXT record
    (published after the policy), and what to watch in the reports afterwards.

    The mx patterns and max_age come from --mx/--max-age, else from the live policy at
    https://mta-sts.DOMAIN/.well-known/mta-sts.txt.
    """
    found = _load_verdict(data_dir, domain, end.date() if end else None, days)
    lookup = Lookup(nameservers, timeout)
    current = None
    source = "the --mx options"
    if not mx or max_age is None:
        try:
            fetched = fetch_policy(
                domain,
                lookup.addresses(f"mta-sts.{domain}"),
                context=tls_context(ca_file),
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
        click.echo(found.missing)
    else:
        click.echo(format_verdict(verdict))
        if verdict.decision is not Decision.READY:
            click.echo(
                "The reports do not support enforce yet: fix the above before publishing this."
            )
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
