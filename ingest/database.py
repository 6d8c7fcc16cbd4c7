"""Opening the DuckDB file: short-lived connections that wait out the other side's lock.

DuckDB lets one process hold the file read-write, and while it does no other process can
open it at all; read-only connections exclude a writer too. Every connection here is
meant to live for one unit of work, so both sides only ever wait milliseconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

DB_FILENAME = "tlsrpt.duckdb"
_RETRY_PAUSE = 0.02


class DatabaseBusy(Exception):
    """Another process held the database for longer than we were willing to wait."""


class DatabaseMissing(Exception):
    """There is no database yet (nothing imported or received)."""


def database_path(data_dir: Path) -> Path:
    return data_dir / DB_FILENAME


def _is_lock_error(exc: duckdb.Error) -> bool:
    text = str(exc)
    return "lock" in text.lower() and ("Conflicting" in text or "Could not set" in text)


def run(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> None:
    """Execute a statement and consume its result (DuckDB 2 refuses further work on a
    connection while a result is pending)."""
    con.execute(sql, params).fetchall()


@contextmanager
def connect(
    path: Path, *, read_only: bool, wait: float = 10.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection with `TimeZone` set to UTC, retried while another process holds the
    file, closed on exit."""
    if read_only and not path.exists():
        raise DatabaseMissing(f"no database at {path}: import or receive some reports first")
    deadline = time.monotonic() + wait
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                raise DatabaseBusy(
                    f"{path} is held by another process (a reader or the collector); "
                    f"waited {wait:.0f} s"
                ) from exc
            time.sleep(_RETRY_PAUSE)
    try:
        run(con, "SET TimeZone = 'UTC'")
        yield con
    finally:
        con.close()
