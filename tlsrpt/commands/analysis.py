"""`tlsrpt report` (weekly HTML reports) and `tlsrpt verdict` (may we enforce MTA-STS?)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import click

from analysis.verdict import Decision, Thresholds, domain_verdict
from analysis.views import format_verdict
from analysis.weekly_report import write_reports
from analysis.window import BadWindow, Window, iso_week, last_complete_week
from tlsrpt.options import (
    COMMON_ERRORS,
    data_dir_option,
    json_option,
    print_json,
    user_errors,
    verdict_window_options,
)

EXIT_STATUS = {Decision.READY: 0, Decision.NOT_READY: 1, Decision.INSUFFICIENT_DATA: 2}
VERDICT_ERROR_STATUS = 3
DEFAULTS = Thresholds()


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
@verdict_window_options
@click.option(
    "--min-days",
    type=click.IntRange(0),
    default=DEFAULTS.min_days,
    show_default=True,
    help="UTC days with STS reports needed.",
)
@click.option(
    "--min-senders",
    type=click.IntRange(0),
    default=DEFAULTS.min_senders,
    show_default=True,
    help="Sending organizations needed.",
)
@click.option(
    "--min-sessions",
    type=click.IntRange(0),
    default=DEFAULTS.min_sessions,
    show_default=True,
    help="STS sessions needed.",
)
@click.option(
    "--max-sender-failure-rate",
    type=click.FloatRange(0, 1),
    default=DEFAULTS.max_sender_failure_rate,
    show_default=True,
    help="Share of a sender's sessions that may fail without blocking.",
)
@data_dir_option
@json_option
def verdict_command(
    domain: str,
    days: int,
    end: datetime | None,
    min_days: int,
    min_senders: int,
    min_sessions: int,
    max_sender_failure_rate: float,
    data_dir: Path,
    as_json: bool,
) -> None:
    """May DOMAIN's MTA-STS policy move from testing to enforce?

    Prints the verdict (ready, not_ready or insufficient_data), the reasons with their
    evidence, and the next steps. Exit status: 0 ready, 1 not ready, 2 insufficient data
    (2 is also click's status for a usage error), 3 when the store cannot be read.
    The thresholds (the others too) are explained in docs/verdict.md.
    """
    last: date | None = end.date() if end else None
    thresholds = replace(
        DEFAULTS,
        min_days=min_days,
        min_senders=min_senders,
        min_sessions=min_sessions,
        max_sender_failure_rate=max_sender_failure_rate,
    )
    try:
        verdict = domain_verdict(data_dir, domain, end=last, days=days, thresholds=thresholds)
    except COMMON_ERRORS as exc:
        raise VerdictError(str(exc)) from exc
    if as_json:
        print_json(verdict.as_dict())
    else:
        click.echo(format_verdict(verdict))
    raise SystemExit(EXIT_STATUS[verdict.decision])
