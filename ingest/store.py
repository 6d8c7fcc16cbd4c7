"""The only code that writes reports to DuckDB.

`Store.add` takes a batch of parsed envelopes and writes each new report (its row, its
policies, its failure details and its raw bytes) in one transaction, counting the ones
already stored as duplicates. Deduplication is on (submitter, report_id), see
`Report.submitter`; it is done here, not by a database constraint (see the schema's
second migration), and relies on one writer at a time.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from ingest.database import Attacher, connect, database_path, run
from ingest.model import Envelope
from ingest.rows import ROW_COLUMN, RowBatch, flatten
from ingest.schema import migrate

WRITER_MEMORY_LIMIT = "256MB"


class Outcome(enum.StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    """Already stored, with the same report JSON."""
    CONFLICT = "conflict"
    """Already stored under the same (submitter, report_id), with other content: the
    first one is kept."""


class Store:
    """A writer connection. Open with `open_store`; keep it for one batch or a few."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def add(
        self,
        envelopes: Sequence[Envelope],
        *,
        transaction: bool = True,
        maybe_stored: Collection[int] | None = None,
    ) -> list[Outcome]:
        """Store a batch in one transaction (or in the caller's, with
        `transaction=False`); returns an outcome per envelope, in order."""
        if not envelopes:
            return []
        return self.add_rows(flatten(envelopes), transaction=transaction, maybe_stored=maybe_stored)

    def add_rows(
        self,
        batch: RowBatch,
        *,
        transaction: bool = True,
        maybe_stored: Collection[int] | None = None,
    ) -> list[Outcome]:
        """Store flattened reports, skipping those already stored (and repeats within
        the batch); returns an outcome per report, in order.

        `maybe_stored`: the report keys of the batch that may be stored already, when
        the caller knows the others are not (the collector's index of known reports
        does); only those are looked up, which spares a scan of the whole table.
        None: look up every key."""
        if not len(batch):
            return []
        keys: list[int] = batch.reports.column("report_key").to_pylist()
        digests: list[str] = batch.reports.column("json_sha256").to_pylist()
        lookup = set(keys) if maybe_stored is None else set(keys).intersection(maybe_stored)
        known = self._stored_digests(lookup)
        outcomes: list[Outcome] = []
        kept: list[int] = []
        for row, (key, digest) in enumerate(zip(keys, digests, strict=True)):
            if key in known:
                same = known[key] == digest
                outcomes.append(Outcome.DUPLICATE if same else Outcome.CONFLICT)
                continue
            known[key] = digest
            outcomes.append(Outcome.STORED)
            kept.append(row)
        if kept:
            self._insert(batch, kept, transaction=transaction)
        return outcomes

    def _insert(self, batch: RowBatch, kept: list[int], *, transaction: bool) -> None:
        reports, children = batch.reports, (batch.policies, batch.details, batch.raw)
        if len(kept) < len(batch):
            reports = reports.take(pa.array(kept, pa.int32()))
            children = tuple(_rows_of(t, set(kept)) for t in children)
        con = self.con
        if transaction:
            run(con, "BEGIN TRANSACTION")
        try:
            for name, table in zip(
                ("reports", "policies", "failure_details", "raw_reports"),
                (reports, *(t.drop_columns([ROW_COLUMN]) for t in children)),
                strict=True,
            ):
                if table.num_rows:
                    con.register("_batch", table)
                    run(con, f"INSERT INTO {name} BY NAME SELECT * FROM _batch")
                    con.unregister("_batch")
            if transaction:
                run(con, "COMMIT")
        except BaseException:
            if transaction:
                run(con, "ROLLBACK")
            raise

    def _stored_digests(self, keys: set[int]) -> dict[int, str]:
        if not keys:
            return {}
        self.con.register("_keys", pa.Table.from_arrays([pa.array(list(keys), pa.int64())], ["k"]))
        try:
            rows = self.con.execute(
                "SELECT report_key, json_sha256 FROM reports "
                "WHERE report_key IN (SELECT k FROM _keys)"
            ).fetchall()
        finally:
            self.con.unregister("_keys")
        return {int(k): str(d) for k, d in rows}


def _rows_of(table: pa.Table, reports: set[int]) -> pa.Table:
    """The rows of a child table that belong to the given reports (batch positions)."""
    owners = table.column(ROW_COLUMN).to_pylist()
    return table.take(pa.array([i for i, r in enumerate(owners) if r in reports], pa.int32()))


@contextmanager
def open_store(data_dir: Path, *, wait: float = 10.0) -> Iterator[Store]:
    """A writer on the data directory's database, migrated to the current schema."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with connect(database_path(data_dir), read_only=False, wait=wait) as con:
        # DuckDB would cache up to 80 % of RAM; the writer needs little and must stay small.
        run(con, f"SET memory_limit = '{WRITER_MEMORY_LIMIT}'")
        migrate(con)
        yield Store(con)


class BatchWriter:
    """The collector's writer: one DuckDB connection for the whole run that holds the
    database file only while it stores a batch (see `Attacher`), so readers can open
    the file between batches. The schema is migrated at the first batch."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._attacher = Attacher(database_path(data_dir), memory_limit=WRITER_MEMORY_LIMIT)
        self._migrated = False

    @contextmanager
    def batch(self, *, wait: float = 10.0) -> Iterator[Store]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._attacher.attached(wait=wait) as con:
            try:
                if not self._migrated:
                    migrate(con)
                    self._migrated = True
                yield Store(con)
            except duckdb.Error:
                self._migrated = False  # check the schema again (was the file replaced?)
                raise

    def close(self) -> None:
        self._attacher.close()
