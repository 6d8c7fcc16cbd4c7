"""Opening the DuckDB file: short-lived connections that wait out the other side's lock.

DuckDB lets one process hold the file read-write, and while it does no other process can
open it at all; read-only connections exclude a writer too. Every connection here is
meant to live for one unit of work, so both sides only ever wait milliseconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import duckdb

DB_FILENAME = "tlsrpt.duckdb"
_RETRY_PAUSE = 0.02
_T = TypeVar("_T")
_ALIAS = "store"


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


def _while_locked(attempt: Callable[[], _T], wait: float, held: str) -> _T:
    """`attempt()`, retried while another process holds the database file; raises
    `DatabaseBusy` (saying `held`) after `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return attempt()
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                raise DatabaseBusy(f"{held}; waited {wait:.0f} s") from exc
            time.sleep(_RETRY_PAUSE)


@contextmanager
def connect(
    path: Path, *, read_only: bool, wait: float = 10.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection with `TimeZone` set to UTC, retried while another process holds the
    file, closed on exit."""
    if read_only and not path.exists():
        raise DatabaseMissing(f"no database at {path}: import or receive some reports first")
    con = _while_locked(
        lambda: duckdb.connect(str(path), read_only=read_only),
        wait,
        f"{path} is held by another process (a reader or the collector)",
    )
    try:
        run(con, "SET TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


class Attacher:
    """A long-lived in-memory DuckDB connection that attaches the database file for one
    unit of work and detaches it afterwards (which checkpoints and releases the file).

    Between units the file is free for other processes, as with a short-lived
    connection, at a fraction of the cost: every new connection builds DuckDB's whole
    function catalog (about 25 ms of CPU), attaching the file takes about 2 ms.
    Not thread-safe: one owner.
    """

    def __init__(self, path: Path, *, memory_limit: str | None = None) -> None:
        self.path = path
        self._memory_limit = memory_limit
        self._con: duckdb.DuckDBPyConnection | None = None

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            con = duckdb.connect(":memory:")
            if self._memory_limit:
                run(con, f"SET memory_limit = '{self._memory_limit}'")
            run(con, "SET TimeZone = 'UTC'")
            # small batches: no gain from spreading them over threads, which would
            # compete with the listeners for the cores
            run(con, "SET threads = 1")
            self._con = con
        return self._con

    @contextmanager
    def attached(self, *, wait: float = 10.0) -> Iterator[duckdb.DuckDBPyConnection]:
        """The connection with the database file attached as the default catalog,
        retried while another process holds the file; detached on exit."""
        con = self._connection()
        literal = str(self.path).replace("'", "''")
        _while_locked(
            lambda: run(con, f"ATTACH '{literal}' AS {_ALIAS}"),
            wait,
            f"{self.path} is held by another process (a reader)",
        )
        try:
            run(con, f"USE {_ALIAS}")
            yield con
        finally:
            self._detach()

    def _detach(self) -> None:
        con = self._con
        assert con is not None
        try:
            run(con, "USE memory")
            run(con, f"DETACH {_ALIAS}")
        except duckdb.Error:
            # a connection that cannot let go of the file is of no further use
            self.close()
            raise

    def close(self) -> None:
        if self._con is not None:
            con, self._con = self._con, None
            con.close()
