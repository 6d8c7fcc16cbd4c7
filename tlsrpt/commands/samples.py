"""`tlsrpt samples`: write example reports to try the tool on."""

from __future__ import annotations

from pathlib import Path

import click

from tlsrpt.samples import DOMAIN, write_samples


@click.command("samples")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--days", type=click.IntRange(1, 400), default=35, show_default=True)
def samples_command(folder: Path, days: int) -> None:
    """Write DAYS days of example reports about example.com (ending yesterday, UTC)
    into FOLDER, ready for `tlsrpt import FOLDER`."""
    written = write_samples(folder, days=days)
    click.echo(f"wrote {len(written)} example reports about {DOMAIN} to {folder}")
