"""`tlsrpt import`: bulk import of report files, emails and mailboxes."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ingest.collector_lock import collector_lock
from ingest.dkim_check import DkimChecker
from ingest.importer import ImportSummary, import_inputs
from ingest.intake import IntakeRules
from ingest.limits import MB, Limits
from ingest.sources import InputRef, find_inputs
from tlsrpt.options import (
    COMMON_ERRORS,
    data_dir_option,
    json_option,
    print_json,
    user_errors,
)


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@data_dir_option
@json_option
@click.option(
    "--domain",
    "domains",
    multiple=True,
    help="Accept only reports about this policy domain (repeatable; default: any).",
)
@click.option(
    "--max-decompressed-mb",
    type=click.IntRange(1),
    default=50,
    show_default=True,
    help="Refuse gzip data that inflates past this size.",
)
@click.option(
    "--dkim/--no-dkim",
    default=True,
    show_default=True,
    help="Verify the DKIM signature of report emails (needs DNS).",
)
@click.option("--nameserver", multiple=True, help="DNS server for DKIM key lookups (repeatable).")
@click.option("--dns-port", type=int, default=53, show_default=True, hidden=True)
@user_errors(*COMMON_ERRORS)
def import_command(
    paths: tuple[Path, ...],
    data_dir: Path,
    as_json: bool,
    domains: tuple[str, ...],
    max_decompressed_mb: int,
    dkim: bool,
    nameserver: tuple[str, ...],
    dns_port: int,
) -> None:
    """Import reports from files (.json, .json.gz, .gz, .eml), folders (recursively),
    mbox files and Maildir folders.

    Prints what was imported, what was already there and what was refused and why;
    refused inputs are kept in the quarantine (see `tlsrpt quarantine`). The exit status
    is 1 when anything was refused. Refuses to run while `tlsrpt serve` runs on the same
    data directory (send the reports to it instead).
    """
    refs = find_inputs(list(paths))
    rules = IntakeRules(
        limits=Limits(max_decompressed=max_decompressed_mb * MB),
        domains=frozenset(d.lower().rstrip(".") for d in domains),
        dkim=DkimChecker(nameservers=nameserver, port=dns_port) if dkim else None,
    )
    with collector_lock(data_dir, "import"):
        summary = _import_with_progress(refs, data_dir, rules, quiet=as_json)
    if as_json:
        print_json(summary.as_dict())
    else:
        _print_summary(summary)
    if summary.rejected:
        raise click.ClickException(f"{summary.rejected} input(s) refused; see `tlsrpt quarantine`")


def _import_with_progress(
    refs: list[InputRef], data_dir: Path, rules: IntakeRules, *, quiet: bool
) -> ImportSummary:
    """The import, with a progress bar on a terminal (stderr)."""
    err = Console(stderr=True)
    with Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=quiet or not err.is_terminal,
    ) as progress:
        task = progress.add_task("import", total=len(refs))
        return import_inputs(refs, data_dir, rules, advance=lambda n: progress.advance(task, n))


def _print_summary(summary: ImportSummary) -> None:
    click.echo(
        f"{summary.inputs} inputs: {summary.imported} imported, "
        f"{summary.duplicates} duplicates, {summary.conflicts} conflicts, "
        f"{summary.rejected} refused"
    )
    for reason, count in summary.rejected_by_reason().most_common():
        click.echo(f"  refused {count} x {reason}")
