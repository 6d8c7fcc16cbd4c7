"""`tlsrpt report` (weekly HTML reports) and `tlsrpt verdict` (may we enforce MTA-STS?)."""

from __future__ import annotations

import textwrap
from datetime import date, datetime
from pathlib import Path

import click

from analysis.verdict import Decision, Verdict, domain_verdict
from analysis.weekly_report import write_reports
from analysis.window import BadWindow, Window, iso_week, last_complete_week
from tlsrpt.options import COMMON_ERRORS, data_dir_option, json_option, print_json, user_errors

EXIT_STATUS = {Decision.READY: 0, Decision.NOT_READY: 1, Decision.INSUFFICIENT_DATA: 2}
VERDICT_ERROR_STATUS = 3


def _week(value: str | None) -> Window:
    return iso_week(value) if value else last_complete_week()


@click.command("report")
@click.option(
    "--week",
    metavar="YYYY-Www",
    help="ISO week to report on, e.g. 2026-W48 (default: the last complete week, UTC).",
)
@click.option(
    "--domain",
    "domains",
    multiple=True,
    help="Policy domain to report on (repeatable; default: every domain with reports that week).",
)
@click.option("--png", is_flag=True, help="Also export every chart as PNG (needs Chromium).")
@data_dir_option
@json_option
@user_errors(*COMMON_ERRORS, BadWindow)
def report_command(
    week: str | None, domains: tuple[str, ...], png: bool, data_dir: Path, as_json: bool
) -> None:
    """Write the weekly HTML report of each policy domain to
    DATA_DIR/reports/<week>/<domain>.html: the enforce verdict, the week's charts, the
    comparison with the week before, the top failing senders and MXes.

    The files are self-contained (they work offline) and are rewritten on each run. The
    command only reads the database, for short moments, so it is safe to run from cron
    or a systemd timer while the collector runs.
    """
    window = _week(week)
    written = write_reports(data_dir, window, domains, png=png)
    if as_json:
        print_json({"week": window.label, "reports": [w.as_dict() for w in written]})
        return
    if not written:
        click.echo(f"No reports stored for {window.label}: nothing written.")
    for w in written:
        click.echo(f"{w.domain}: {w.decision.value} -> {w.html}")
        for image in w.png:
            click.echo(f"  {image}")


class VerdictError(click.ClickException):
    exit_code = VERDICT_ERROR_STATUS


@click.command("verdict")
@click.argument("domain")
@click.option(
    "--days",
    type=click.IntRange(1, 400),
    default=28,
    show_default=True,
    help="Length of the window in UTC days.",
)
@click.option(
    "--end",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Last UTC day of the window, YYYY-MM-DD (default: yesterday).",
)
@data_dir_option
@json_option
def verdict_command(
    domain: str, days: int, end: datetime | None, data_dir: Path, as_json: bool
) -> None:
    """May DOMAIN's MTA-STS policy move from testing to enforce?

    Prints the verdict (ready, not_ready or insufficient_data), the reasons with their
    evidence, and the next steps. Exit status: 0 ready, 1 not ready, 2 insufficient data
    (2 is also click's status for a usage error), 3 when the store cannot be read.
    Thresholds: see docs/verdict.md.
    """
    last: date | None = end.date() if end else None
    try:
        verdict = domain_verdict(data_dir, domain, end=last, days=days)
    except COMMON_ERRORS as exc:
        raise VerdictError(str(exc)) from exc
    if as_json:
        print_json(verdict.as_dict())
    else:
        _print_verdict(verdict)
    raise SystemExit(EXIT_STATUS[verdict.decision])


_HEADLINE = {
    Decision.READY: "ready to enforce",
    Decision.NOT_READY: "NOT ready to enforce",
    Decision.INSUFFICIENT_DATA: "not enough data to judge",
}


def _wrap(text: str, first: str, rest: str) -> str:
    return textwrap.fill(
        text, width=100, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False
    )


def _print_verdict(verdict: Verdict) -> None:
    ev = verdict.evidence
    enforced = " (already in enforce mode)" if verdict.already_enforced else ""
    click.echo(
        f"{ev['policy_domain']}: {_HEADLINE[verdict.decision]}{enforced} "
        f"[{verdict.decision.value}], {ev['first_day']} to {ev['last_day']}"
    )
    click.echo(
        f"  {ev['sts_sessions']} STS sessions from {ev['senders']} senders on "
        f"{ev['days_with_reports']} days; {ev['would_fail_sessions']} would fail under "
        f"enforce; {ev['policy_error_sessions']} could not get the policy."
    )
    click.echo("Reasons:")
    for reason in verdict.reasons:
        mark = "x" if reason.blocking else "-"
        click.echo(_wrap(f"[{reason.code}] {reason.message}", f"  {mark} ", "      "))
    if verdict.next_steps:
        click.echo("Next steps:")
        for i, step in enumerate(verdict.next_steps, 1):
            click.echo(_wrap(step, f"  {i}. ", "     "))
