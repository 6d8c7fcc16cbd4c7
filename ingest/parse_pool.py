"""Parsing inputs in chunks, in worker processes for large imports.

Workers import only the parser and `ingest.rows` (no database), and send back each
chunk's rows as Arrow tables, which pickle far faster than the model objects.
"""

from __future__ import annotations

import gc
import multiprocessing
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from ingest.errors import InvalidReport
from ingest.intake import IntakeRules, intake
from ingest.model import Channel, Envelope
from ingest.rows import RowBatch, flatten, skip_pandas_probe
from ingest.sources import InputRef, read_inputs

PARALLEL_MINIMUM = 1000
"""Fewer inputs than this are parsed in-process (worker start-up would cost more)."""
CHUNK = 250
IN_FLIGHT_PER_WORKER = 8
"""Chunks parsed ahead per worker while the writer stores (each a few hundred kB)."""


@dataclass(frozen=True, slots=True)
class Refused:
    """An input the intake refused (or could not read), with its raw bytes."""

    source: str
    raw: bytes | None
    code: str
    reason: str
    received_at: datetime


_Result = Envelope | Refused


def _intake_all(
    refs: Iterable[InputRef], channel: Channel, rules: IntakeRules
) -> Iterator[Envelope | Refused]:
    for ref, raw in read_inputs(refs):
        received_at = datetime.now(UTC)
        if isinstance(raw, OSError):
            yield Refused(ref.source, None, "unreadable", raw.strerror or str(raw), received_at)
            continue
        try:
            yield intake(raw, channel, rules, source=ref.source, received_at=received_at)
        except InvalidReport as exc:
            yield Refused(ref.source, raw, exc.code, str(exc), received_at)


_Chunk = tuple[list[Refused], RowBatch]


def _intake_chunk(refs: list[InputRef], channel: Channel, rules: IntakeRules) -> _Chunk:
    """Parse a chunk of inputs into rows (what a worker sends back: Arrow tables pickle
    far faster than the model objects)."""
    refused: list[Refused] = []
    accepted: list[Envelope] = []
    for result in _intake_all(refs, channel, rules):
        if isinstance(result, Envelope):
            accepted.append(result)
        else:
            refused.append(result)
    return refused, flatten(accepted)


_worker_job: tuple[Channel, IntakeRules] | None = None


def _init_worker(channel: Channel, rules: IntakeRules) -> None:
    global _worker_job
    _worker_job = (channel, rules)
    skip_pandas_probe()


def _worker_chunk(refs: list[InputRef]) -> _Chunk:
    assert _worker_job is not None
    return _intake_chunk(refs, *_worker_job)


def _worker_context() -> multiprocessing.context.BaseContext:
    """Fork while this process runs no other thread (quick, and the workers inherit the
    imported parser); else a fork server, since forking a threaded process is unsafe."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


class ParsedChunks:
    """Parsed chunks in input order: in worker processes for large imports, with a
    bounded number of chunks in flight so memory stays flat; else in this process.

    The workers start when this is made: make it before opening the database, so they
    can be forked from a process that runs no other thread yet."""

    def __init__(
        self, refs: list[InputRef], channel: Channel, rules: IntakeRules, workers: int
    ) -> None:
        self._chunks = deque(refs[i : i + CHUNK] for i in range(0, len(refs), CHUNK))
        self._job = (channel, rules)
        self._pool: ProcessPoolExecutor | None = None
        self._pending: deque[Future[_Chunk]] = deque()
        skip_pandas_probe()
        if workers > 1 and len(refs) >= PARALLEL_MINIMUM:
            # Objects the workers inherit are kept out of their garbage collections, which
            # would otherwise scan them, and copy every page they touch, again and again.
            gc.freeze()
            self._pool = ProcessPoolExecutor(
                workers,
                mp_context=_worker_context(),
                initializer=_init_worker,
                initargs=self._job,
            )
            while self._chunks and len(self._pending) < IN_FLIGHT_PER_WORKER * workers:
                self._pending.append(self._pool.submit(_worker_chunk, self._chunks.popleft()))

    def __iter__(self) -> Iterator[_Chunk]:
        if self._pool is None:
            while self._chunks:
                yield _intake_chunk(self._chunks.popleft(), *self._job)
            return
        while self._pending:
            done = self._pending.popleft().result()
            if self._chunks:
                self._pending.append(self._pool.submit(_worker_chunk, self._chunks.popleft()))
            yield done

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            gc.unfreeze()

    def __enter__(self) -> ParsedChunks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
