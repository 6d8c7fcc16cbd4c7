"""Inputs we refused, kept for inspection with their reason.

Each entry is two files in `<data-dir>/quarantine/`: `<id>.raw` (the bytes as received)
and `<id>.json` (why, when, from where). The id is derived from the content, so the same
input refused twice is one entry.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from ingest.durable import fsync_dir, write_durably

QUARANTINE_DIR = "quarantine"


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    id: str
    code: str
    reason: str
    channel: str
    source: str | None
    received_at: str
    size: int


class Quarantine:
    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / QUARANTINE_DIR

    def put(
        self,
        raw: bytes,
        *,
        code: str,
        reason: str,
        channel: str,
        source: str | None,
        received_at: datetime | None = None,
    ) -> QuarantineEntry:
        self.dir.mkdir(parents=True, exist_ok=True)
        entry = QuarantineEntry(
            id=hashlib.sha256(raw).hexdigest()[:24],
            code=code,
            reason=reason,
            channel=channel,
            source=source,
            received_at=(received_at or datetime.now(UTC)).isoformat(timespec="seconds"),
            size=len(raw),
        )
        write_durably(self.dir / f"{entry.id}.raw", raw, sync_dir=False)
        meta = json.dumps(asdict(entry), indent=1).encode()
        write_durably(self.dir / f"{entry.id}.json", meta, sync_dir=False)
        fsync_dir(self.dir)
        return entry

    def entries(self) -> Iterator[QuarantineEntry]:
        if not self.dir.is_dir():
            return
        for meta in sorted(self.dir.glob("*.json")):
            try:
                yield QuarantineEntry(**json.loads(meta.read_bytes()))
            except (ValueError, TypeError):
                continue  # a half-written or foreign file: not ours to list

    def raw_path(self, entry_id: str) -> Path:
        return self.dir / f"{entry_id}.raw"

    def purge(self, older_than_days: float) -> int:
        """Delete entries older than the retention period; returns how many."""
        if not self.dir.is_dir():
            return 0
        cutoff = time.time() - older_than_days * 86400
        removed = 0
        for meta in self.dir.glob("*.json"):
            if meta.stat().st_mtime < cutoff:
                meta.with_suffix(".raw").unlink(missing_ok=True)
                meta.unlink(missing_ok=True)
                removed += 1
        return removed
