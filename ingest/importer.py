"""Bulk import: inputs on disk -> parsed, checked envelopes -> the store, in batches.

Refused inputs go to the quarantine with their reason; nothing of them is stored.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.database import run
from ingest.intake import IntakeRules
from ingest.model import Channel
from ingest.parse_pool import ParsedChunks, Refused
from ingest.quarantine import Quarantine
from ingest.rows import RowBatch
from ingest.sources import InputRef
from ingest.store import Outcome, open_store

log = logging.getLogger(__name__)

BATCH_SIZE = 2000


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
    with ParsedChunks(refs, channel, rules, workers) as chunks, open_store(data_dir) as store:
        # The parse workers keep the CPUs busy: a second DuckDB thread would only contend.
        run(store.con, "SET threads = 1")

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

        for refused, rows in chunks:
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
    result: Refused, quarantine: Quarantine, channel: Channel, summary: ImportSummary
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
