"""Options and output helpers shared by every command."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

DATA_DIR_ENV = "TLSRPT_DATA_DIR"


def data_dir_option(func: F) -> F:
    """`--data-dir DIR` (env TLSRPT_DATA_DIR, default ./data): where all state lives."""
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar=DATA_DIR_ENV,
        default=Path("data"),
        show_default=True,
        show_envvar=True,
        help="Folder holding the database, spool and quarantine.",
    )(func)


def verdict_window_options(func: F) -> F:
    """`--days N` and `--end YYYY-MM-DD`: the UTC days the enforce verdict looks at."""
    func = click.option(
        "--end",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        help="Last UTC day of the verdict's window, YYYY-MM-DD (default: yesterday).",
    )(func)
    return click.option(
        "--days",
        type=click.IntRange(1, 400),
        default=28,
        show_default=True,
        help="Length of the verdict's window in UTC days.",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")(func)


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write("\n")


def user_errors(*kinds: type[Exception]) -> Callable[[F], F]:
    """Turn the named exception types into one-line CLI errors (exit status 1)."""

    def wrap(func: F) -> F:
        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except kinds as exc:
                raise click.ClickException(str(exc)) from exc

        return inner  # type: ignore[return-value]

    return wrap


def _common_errors() -> tuple[type[Exception], ...]:
    from ingest.collector_lock import DataDirBusy
    from ingest.database import DatabaseBusy, DatabaseMissing
    from ingest.schema import SchemaTooNew
    from ingest.sources import SourceError

    return (
        DatabaseBusy,
        DatabaseMissing,
        DataDirBusy,
        SchemaTooNew,
        SourceError,
        PermissionError,
    )


COMMON_ERRORS = _common_errors()
