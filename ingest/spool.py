"""The spool: raw deliveries on disk, durable before anyone is told "accepted".

Deliveries that arrive together are written together (group commit): `Spool.append`
writes a group with one `write` to the current segment file
`DATA_DIR/spool/<segment>.spool` and makes it durable with one `fdatasync`. One sync
covers the whole group, however many clients are sending; a new segment file also syncs
the folder once.

A record is a one-line JSON header (id, channel, time, peer, size) followed by the bytes
exactly as received. A segment takes records until it holds `SEGMENT_BYTES`; it is
deleted once every record in it has been stored in DuckDB or moved to the quarantine
(so when the writer has caught up, the segment goes and the next delivery starts a new
one). Whatever a crash leaves here is read again at the next start (a report stored
twice is a duplicate, stored once); a record cut short by a crash was never
acknowledged, and what cannot be read back goes to the quarantine.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ingest.durable import fsync_dir
from ingest.model import Channel

SPOOL_DIR = "spool"
_SUFFIX = ".spool"
_MAX_HEADER = 4096
SEGMENT_BYTES = 8 * 1024 * 1024
"""A segment takes no more groups once it holds this much."""


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    id: str
    """`<segment>-<index>`: the segment file and the record's place in it."""
    channel: Channel
    received_at: datetime
    source: str | None

    @property
    def segment(self) -> str:
        return self.id.rsplit("-", 1)[0]

    def header(self, size: int) -> bytes:
        """The record's header: one line of JSON. Written without the encoder's
        dictionary walk (a quarter of the time); only the peer needs quoting."""
        return (
            f'{{"id":"{self.id}","channel":"{self.channel.value}",'
            f'"received_at":"{self.received_at.isoformat()}",'
            f'"source":{json.dumps(self.source)},"size":{size}}}\n'
        ).encode()


@dataclass(slots=True)
class _Segment:
    """The segment file being appended to."""

    name: str
    fd: int
    size: int = 0
    records: int = 0
    dir_synced: bool = False


@dataclass(frozen=True, slots=True)
class SegmentContents:
    """What a segment file holds, read back at start-up."""

    records: list[tuple[SpoolEntry, bytes]]
    damaged: bytes = b""
    """The bytes from the first record that could not be read back to the end (a write
    cut short by a crash, or damage), empty when every record was whole."""
    problem: str = ""


Incoming = tuple[Channel, datetime, str | None, bytes]
"""A delivery to spool: channel, arrival time, peer, raw bytes."""


class Spool:
    """The spool folder. Thread-safe; blocking file operations. `append` has one
    caller at a time."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / SPOOL_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}
        """Segment -> records not yet stored or quarantined."""
        self._current: _Segment | None = None

    @staticmethod
    def new_segment_name() -> str:
        """A fresh segment name; names sort in creation order."""
        return f"{time.time_ns():016x}{secrets.token_hex(3)}"

    def path(self, segment: str) -> Path:
        return self.dir / f"{segment}{_SUFFIX}"

    def append(self, items: list[Incoming]) -> list[SpoolEntry]:
        """Append records durably: one write and one fdatasync (and a sync of the folder
        when the segment is new). Returns their entries, in order."""
        with self._lock:
            segment = self._current
            if segment is None or segment.size >= SEGMENT_BYTES:
                if segment is not None:
                    self._retire(segment)
                segment = self._current = self._create()
            first = segment.records
            segment.records += len(items)
            self._open[segment.name] = self._open.get(segment.name, 0) + len(items)
        entries = [
            SpoolEntry(f"{segment.name}-{first + i}", channel, received_at, source)
            for i, (channel, received_at, source, _) in enumerate(items)
        ]
        # one buffer, one write
        data = b"".join(
            part
            for entry, (*_, raw) in zip(entries, items, strict=True)
            for part in (entry.header(len(raw)), raw)
        )
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(segment.fd, view) :]
            os.fdatasync(segment.fd)
            if not segment.dir_synced:
                fsync_dir(self.dir)
                segment.dir_synced = True
        except OSError:
            with self._lock:
                self._open[segment.name] -= len(items)
                # later records must not follow a partial one: cut it off, and append
                # no more to this segment
                with contextlib.suppress(OSError):
                    os.ftruncate(segment.fd, segment.size)
                self._retire(segment)
            raise
        segment.size += len(data)
        return entries

    def _create(self) -> _Segment:
        name = self.new_segment_name()
        fd = os.open(self.path(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        return _Segment(name, fd)

    def _retire(self, segment: _Segment) -> None:
        """No more records go to this segment; delete it if none is waiting (lock held)."""
        if self._current is segment:
            self._current = None
        os.close(segment.fd)
        if not self._open.get(segment.name):
            self._open.pop(segment.name, None)
            self.path(segment.name).unlink(missing_ok=True)

    def done(self, entry_id: str) -> None:
        """A record was stored or quarantined; its segment goes when all of its records
        have (the segment being appended to included: the next group starts a new one)."""
        name = entry_id.rsplit("-", 1)[0]
        with self._lock:
            left = self._open.get(name, 0) - 1
            if left > 0:
                self._open[name] = left
                return
            self._open.pop(name, None)
            current = self._current
            if current is not None and current.name == name:
                self._retire(current)
                return
        self.path(name).unlink(missing_ok=True)

    def close(self) -> None:
        """Stop appending (at shutdown); records not yet done stay."""
        with self._lock:
            if self._current is not None:
                self._retire(self._current)

    def segments(self) -> list[str]:
        """Segment files on disk, oldest first (at start-up, before new deliveries)."""
        names = sorted(p.name for p in self.dir.glob(f"*{_SUFFIX}") if not p.name.startswith("."))
        return [name[: -len(_SUFFIX)] for name in names]

    def read_segment(self, segment: str) -> SegmentContents:
        """The records of a segment file (at start-up, before new deliveries arrive).
        Reading stops at the first record that is cut short or unreadable."""
        data = self.path(segment).read_bytes()
        records: list[tuple[SpoolEntry, bytes]] = []
        pos = 0
        problem = ""
        while pos < len(data):
            end = data.find(b"\n", pos, pos + _MAX_HEADER)
            if end < 0:
                problem = f"record at byte {pos} has no header"
                break
            try:
                meta = json.loads(data[pos:end])
                entry = SpoolEntry(
                    str(meta["id"]),
                    Channel(meta["channel"]),
                    datetime.fromisoformat(meta["received_at"]),
                    meta.get("source"),
                )
                size = int(meta["size"])
            except (ValueError, KeyError, TypeError) as exc:
                problem = f"bad record header at byte {pos} ({exc})"
                break
            raw = data[end + 1 : end + 1 + size]
            if len(raw) != size:
                problem = f"record {entry.id} is cut short"
                break
            records.append((entry, raw))
            pos = end + 1 + size
        with self._lock:
            self._open[segment] = len(records)
        if not records and not problem:
            self.path(segment).unlink(missing_ok=True)
        return SegmentContents(records, data[pos:] if problem else b"", problem)

    def remove_segment(self, segment: str) -> None:
        with self._lock:
            self._open.pop(segment, None)
        self.path(segment).unlink(missing_ok=True)

    def remove_partial(self) -> int:
        """Delete temporary files a crash left behind (never acknowledged; earlier
        versions wrote each group to a temporary file first)."""
        removed = 0
        for tmp in self.dir.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
            removed += 1
        return removed
