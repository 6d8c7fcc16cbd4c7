"""Commands that show or rebuild what is stored: summary, quarantine, reprocess."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click
import pandas as pd
from rich.console import Console
from rich.table import Table

from analysis.overview import domain_summary
from ingest.collector_lock import collector_lock
from ingest.quarantine import Quarantine
from ingest.reprocess import reprocess
from tlsrpt.options import COMMON_ERRORS, data_dir_option, json_option, print_json, user_errors


@click.command("summary")
@data_dir_option
@json_option
@user_errors(*COMMON_ERRORS)
def summary_command(data_dir: Path, as_json: bool) -> None:
    """Per policy domain: reports, senders, sessions ok and failed, first and last day."""
    frame = domain_summary(data_dir)
    rows: list[dict[str, str | int | None]] = [
        {
            "policy_domain": None if pd.isna(r.policy_domain) else str(r.policy_domain),
            "reports": int(r.reports),
            "senders": int(r.senders),
            "successful_sessions": int(r.successful_sessions),
            "failed_sessions": int(r.failed_sessions),
            "first_day": _day(r.first_day),
            "last_day": _day(r.last_day),
        }
        for r in frame.itertuples()
    ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("No reports stored yet.")
        return
    table = Table(
        "policy_domain",
        "reports",
        "senders",
        "sessions ok",
        "sessions failed",
        "first day",
        "last day",
    )
    for row in rows:
        table.add_row(*(str(v) if v is not None else "(none)" for v in row.values()))
    _console().print(table)


@click.command("quarantine")
@data_dir_option
@json_option
def quarantine_command(data_dir: Path, as_json: bool) -> None:
    """List refused inputs, with their reason. The raw bytes are in
    DATA_DIR/quarantine/ID.raw."""
    entries = sorted(Quarantine(data_dir).entries(), key=lambda e: e.received_at)
    if as_json:
        print_json([asdict(e) for e in entries])
        return
    if not entries:
        click.echo("The quarantine is empty.")
        return
    table = Table("id", "received_at", "channel", "code", "reason", "source")
    for e in entries:
        table.add_row(e.id, e.received_at, e.channel, e.code, e.reason, e.source or "")
    _console().print(table)


@click.command("reprocess")
@data_dir_option
@json_option
@user_errors(*COMMON_ERRORS)
def reprocess_command(data_dir: Path, as_json: bool) -> None:
    """Rebuild the reports, policies and failure_details tables from the stored raw
    bytes, with this version's parser. Arrival data (channel, time, DKIM) is kept.
    Refuses to run while `tlsrpt serve` runs on the same data directory."""
    with collector_lock(data_dir, "reprocess"):
        result = reprocess(data_dir)
    if as_json:
        print_json(result.as_dict())
    else:
        click.echo(
            f"{result.reprocessed} reports reprocessed, {result.merged} merged as duplicates, "
            f"{result.failed} kept as they were (the parser now refuses them)"
        )


def _day(value: object) -> str:
    return str(pd.Timestamp(value).date().isoformat())


def _console() -> Console:
    """Tables at full width even when piped (rich assumes 80 columns then)."""
    probe = Console()
    return Console(highlight=False, markup=False, width=None if probe.is_terminal else 200)
