"""Bulk import: inputs on disk -> parsed, checked envelopes -> the store, in batches.

Refused inputs go to the quarantine with their reason; nothing of them is stored.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ingest.errors import InvalidReport
from ingest.intake import IntakeRules, intake
from ingest.model import Channel, Envelope
from ingest.quarantine import Quarantine
from ingest.sources import InputRef, read_inputs
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
    advance: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import every input; `advance(n)` is called as inputs are done (for progress)."""
    summary = ImportSummary()
    quarantine = Quarantine(data_dir)
    batch: list[Envelope] = []
    with open_store(data_dir) as store:

        def flush() -> None:
            for env, outcome in zip(batch, store.add(batch), strict=True):
                if outcome is Outcome.STORED:
                    summary.imported += 1
                elif outcome is Outcome.DUPLICATE:
                    summary.duplicates += 1
                else:
                    summary.conflicts += 1
                    log.warning(
                        "%s: report %r from %s was stored before with other content; "
                        "kept the first",
                        env.source,
                        env.parsed.report.report_id,
                        env.parsed.report.submitter,
                    )
            if advance:
                advance(len(batch))
            batch.clear()

        for ref, raw in read_inputs(refs):
            summary.inputs += 1
            if isinstance(raw, OSError):
                reason = raw.strerror or str(raw)
                summary.rejections.append(Rejection(ref.source, "unreadable", reason, None))
                if advance:
                    advance(1)
                continue
            received_at = datetime.now(UTC)
            try:
                batch.append(
                    intake(raw, channel, rules, source=ref.source, received_at=received_at)
                )
            except InvalidReport as exc:
                entry = quarantine.put(
                    raw,
                    code=exc.code,
                    reason=str(exc),
                    channel=channel.value,
                    source=ref.source,
                    received_at=received_at,
                )
                summary.rejections.append(Rejection(ref.source, exc.code, str(exc), entry.id))
                if advance:
                    advance(1)
                continue
            if len(batch) >= batch_size:
                flush()
        flush()
    return summary
