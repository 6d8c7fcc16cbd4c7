"""`tlsrpt check`: a domain's TLS-RPT and MTA-STS setup, looked up live, as a checklist."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tlsrpt.commands.network import domain_argument, network_options, tls_context
from tlsrpt.dns_lookup import Lookup, Nameserver
from tlsrpt.domain_check import Checklist, CheckSettings, Status, check_domain
from tlsrpt.options import json_option, print_json, user_errors
from tlsrpt.records import RecordError, encode_rua_uri


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
        tls_context=tls_context(ca_file),
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
