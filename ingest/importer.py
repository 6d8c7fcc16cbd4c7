"""Bulk import: inputs on disk -> parsed, checked envelopes -> the store, in batches.

Refused inputs go to the quarantine with their reason; nothing of them is stored.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ingest.errors import InvalidReport
from ingest.intake import IntakeRules, intake
from ingest.model import Channel, Envelope
from ingest.quarantine import Quarantine
from ingest.sources import InputRef, read_inputs
from ingest.store import Outcome, RowBatch, flatten, open_store

log = logging.getLogger(__name__)

BATCH_SIZE = 2000
PARALLEL_MINIMUM = 1000
"""Fewer inputs than this are parsed in-process (worker start-up would cost more)."""
CHUNK = 250


@dataclass(frozen=True, slots=True)
class Rejection:
    source: str
    code: str
    reason: str
    quarantine_id: str | None


@dataclass
class ImportSummary:
    inputs: int = 0
    imported: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    def rejected_by_reason(self) -> Counter[str]:
        return Counter(f"{r.code}: {r.reason}" for r in self.rejections)

    def as_dict(self) -> dict[str, object]:
        return {
            "inputs": self.inputs,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "rejected": self.rejected,
            "rejected_by_reason": dict(self.rejected_by_reason().most_common()),
            "rejections": [
                {
                    "source": r.source,
                    "code": r.code,
                    "reason": r.reason,
                    "quarantine_id": r.quarantine_id,
                }
                for r in self.rejections
            ],
        }


@dataclass(frozen=True, slots=True)
class _Refused:
    source: str
    raw: bytes | None
    code: str
    reason: str
    received_at: datetime


_Result = Envelope | _Refused


def _intake_all(
    refs: Iterable[InputRef], channel: Channel, rules: IntakeRules
) -> Iterator[Envelope | _Refused]:
    for ref, raw in read_inputs(refs):
        received_at = datetime.now(UTC)
        if isinstance(raw, OSError):
            yield _Refused(ref.source, None, "unreadable", raw.strerror or str(raw), received_at)
            continue
        try:
            yield intake(raw, channel, rules, source=ref.source, received_at=received_at)
        except InvalidReport as exc:
            yield _Refused(ref.source, raw, exc.code, str(exc), received_at)


_Chunk = tuple[list[_Refused], RowBatch]


def _intake_chunk(refs: list[InputRef], channel: Channel, rules: IntakeRules) -> _Chunk:
    """Parse a chunk of inputs into rows (what a worker sends back: Arrow tables pickle
    far faster than the model objects)."""
    refused: list[_Refused] = []
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


def _worker_chunk(refs: list[InputRef]) -> _Chunk:
    assert _worker_job is not None
    return _intake_chunk(refs, *_worker_job)


def _chunks(
    refs: list[InputRef], channel: Channel, rules: IntakeRules, workers: int
) -> Iterator[_Chunk]:
    """Parsed chunks in input order: in worker processes for large imports, with a
    bounded number of chunks in flight so memory stays flat; else in this process."""
    chunks = [refs[i : i + CHUNK] for i in range(0, len(refs), CHUNK)]
    if workers <= 1 or len(refs) < PARALLEL_MINIMUM:
        for chunk in chunks:
            yield _intake_chunk(chunk, channel, rules)
        return
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(channel, rules)
    ) as pool:
        pending: deque[Future[_Chunk]] = deque()
        for chunk in chunks:
            pending.append(pool.submit(_worker_chunk, chunk))
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def import_inputs(
    refs: Iterable[InputRef],
    data_dir: Path,
    rules: IntakeRules,
    *,
    channel: Channel = Channel.IMPORT,
    batch_size: int = BATCH_SIZE,
    workers: int | None = None,
    advance: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import every input; `advance(n)` is called as inputs are done (for progress).

    Large imports are parsed by `workers` processes (default: one per CPU) while this
    one writes to the store; small ones are parsed here.
    """
    refs = list(refs)
    workers = workers if workers is not None else (os.cpu_count() or 1)
    summary = ImportSummary()
    quarantine = Quarantine(data_dir)
    pending: list[RowBatch] = []
    with open_store(data_dir) as store:

        def flush() -> None:
            if not pending:
                return
            batch = RowBatch.concat(pending)
            pending.clear()
            outcomes = store.add_rows(batch)
            counts = Counter(outcomes)
            summary.imported += counts[Outcome.STORED]
            summary.duplicates += counts[Outcome.DUPLICATE]
            summary.conflicts += counts[Outcome.CONFLICT]
            if counts[Outcome.CONFLICT]:
                _log_conflicts(batch, outcomes)
            if advance:
                advance(len(batch))

        for refused, rows in _chunks(refs, channel, rules, workers):
            for result in refused:
                _quarantine(result, quarantine, channel, summary)
                if advance:
                    advance(1)
            summary.inputs += len(refused) + len(rows)
            pending.append(rows)
            if sum(len(b) for b in pending) >= batch_size:
                flush()
        flush()
    return summary


def _quarantine(
    result: _Refused, quarantine: Quarantine, channel: Channel, summary: ImportSummary
) -> None:
    entry_id = None
    if result.raw is not None:
        entry_id = quarantine.put(
            result.raw,
            code=result.code,
            reason=result.reason,
            channel=channel.value,
            source=result.source,
            received_at=result.received_at,
        ).id
    summary.rejections.append(Rejection(result.source, result.code, result.reason, entry_id))


def _log_conflicts(batch: RowBatch, outcomes: list[Outcome]) -> None:
    columns = batch.reports.select(["source", "report_id", "submitter"]).to_pylist()
    for row, outcome in zip(columns, outcomes, strict=True):
        if outcome is Outcome.CONFLICT:
            log.warning(
                "%s: report %r from %s was stored before with other content; kept the first",
                row["source"],
                row["report_id"],
                row["submitter"],
            )
