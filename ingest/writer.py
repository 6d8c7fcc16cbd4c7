"""The one writer: a thread that moves accepted spool entries into DuckDB in batches.

Each batch attaches the database file, stores, commits and detaches it again, so
readers (the CLI, notebooks, the weekly job) can open the file between batches. While a reader holds
the file the writer waits and retries; the reports wait in the spool meanwhile, and are
deleted from it only after their batch is committed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ingest.database import DatabaseBusy
from ingest.model import Envelope
from ingest.store import BatchWriter, Outcome

log = logging.getLogger(__name__)

MAX_BATCH = 5000
LINGER = 1.0
"""Seconds a batch keeps collecting after its first report, unless it fills up before:
each batch costs 50-80 ms of CPU whatever its size (the inserts, the commit, the
checkpoint when the file is detached), so bigger batches cost far less per report. A
report is in the database about a second after its acknowledgement."""
_LINGER_STEP = 0.05
"""While a batch collects, the queue is drained this often (not woken per report)."""
MAX_PENDING = 20_000
"""Accepted reports held in memory for the writer, at most (a few KiB each): when the
writer falls behind, `wait_for_room` holds the intake back, which holds the senders'
acknowledgements back, so memory stays bounded however long the load lasts."""
_BUSY_WAIT = 1.0
"""Seconds one open attempt waits for a reader before the writer logs and tries again."""
_BUSY_LOG_EVERY = 30.0
_ERROR_PAUSE = 1.0


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid delivery, durable in the spool, waiting to be stored."""

    spool_id: str
    envelope: Envelope
    report_key: int
    new: bool
    """The index of known reports had not seen the key (so it is not in the database):
    the writer need not look it up."""


@dataclass
class WriterStats:
    stored: int = 0
    duplicates: int = 0
    conflicts: int = 0
    failed: int = 0
    batches: int = 0


class StoreWriter:
    """Owns every write to the database while the collector runs."""

    def __init__(self, data_dir: Path, done: Callable[[list[str]], None]) -> None:
        """`done(spool ids)` is called (in the writer thread) once those are committed."""
        self.data_dir = data_dir
        self._done = done
        self.stats = WriterStats()
        self._db = BatchWriter(data_dir)
        self._queue: queue.Queue[Accepted | None] = queue.Queue()
        self._pending = 0
        self._pending_changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Accepted reports not yet committed."""
        with self._pending_changed:
            return self._pending

    def submit(self, item: Accepted) -> None:
        with self._pending_changed:
            self._pending += 1
        self._queue.put(item)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is committed."""
        with self._pending_changed:
            return self._pending_changed.wait_for(lambda: self._pending == 0, timeout)

    def wait_for_room(self, timeout: float | None = None) -> bool:
        """Wait while `MAX_PENDING` or more reports wait for the writer; False when the
        time ran out."""
        with self._pending_changed:
            return self._pending_changed.wait_for(lambda: self._pending < MAX_PENDING, timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Store what is queued, then stop. False when the time ran out (what is left
        stays in the spool for the next start)."""
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            stopping = self._collect(batch)
            self._write(batch)
            with self._pending_changed:
                self._pending -= len(batch)
                self._pending_changed.notify_all()
        self._db.close()

    def _collect(self, batch: list[Accepted]) -> bool:
        """Fill the batch from the queue until it holds `MAX_BATCH` or `LINGER` has
        passed; True when the queue said stop. A writer that fell behind finds a full
        batch waiting and does not linger at all."""
        deadline = time.monotonic() + LINGER
        while True:
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    return True
                batch.append(item)
            left = deadline - time.monotonic()
            if len(batch) >= MAX_BATCH or left <= 0:
                return False
            time.sleep(min(_LINGER_STEP, left))

    def _write(self, batch: list[Accepted]) -> None:
        waited_since: float | None = None
        last_log = 0.0
        while True:
            try:
                outcomes = self._store(batch)
            except DatabaseBusy:
                now = time.monotonic()
                waited_since = waited_since or now
                if now - last_log >= _BUSY_LOG_EVERY:
                    log.warning(
                        "the database is held by a reader; %d report(s) wait in the spool",
                        self.pending,
                    )
                    last_log = now
                continue
            except (duckdb.Error, OSError) as exc:
                # the batch may have been committed: from here on, every key is looked up
                log.error("storing a batch of %d failed (%s); storing one by one", len(batch), exc)
                time.sleep(_ERROR_PAUSE)
                self._write_one_by_one(batch)
                return
            if waited_since is not None:
                log.info(
                    "stored after waiting %.1f s for a reader", time.monotonic() - waited_since
                )
            self._count(outcomes)
            self._done([item.spool_id for item in batch])
            return

    def _store(self, batch: list[Accepted], *, look_up_all: bool = False) -> list[Outcome]:
        maybe_stored = None if look_up_all else {a.report_key for a in batch if not a.new}
        with self._db.batch(wait=_BUSY_WAIT) as store:
            outcomes = store.add([a.envelope for a in batch], maybe_stored=maybe_stored)
        self.stats.batches += 1
        for item, outcome in zip(batch, outcomes, strict=True):
            if outcome is Outcome.CONFLICT:
                report = item.envelope.parsed.report
                log.warning(
                    "report %r from %s was stored before with other content; kept the first",
                    report.report_id,
                    report.submitter,
                )
        return outcomes

    def _write_one_by_one(self, batch: list[Accepted]) -> None:
        for item in batch:
            while True:
                try:
                    outcomes = self._store([item], look_up_all=True)
                except DatabaseBusy:
                    continue
                except (duckdb.Error, OSError) as exc:
                    self.stats.failed += 1
                    log.error(
                        "could not store spool entry %s (%s); it stays in the spool and is "
                        "tried again at the next start",
                        item.spool_id,
                        exc,
                    )
                    break
                self._count(outcomes)
                self._done([item.spool_id])
                break

    def _count(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            if outcome is Outcome.STORED:
                self.stats.stored += 1
            elif outcome is Outcome.DUPLICATE:
                self.stats.duplicates += 1
            else:
                self.stats.conflicts += 1
