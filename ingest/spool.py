"""The spool: raw deliveries on disk, durable before anyone is told "accepted".

Deliveries that arrive together are written together: `SpoolFlusher` (one thread) takes
every delivery waiting, writes them as records of one file `DATA_DIR/spool/<group>.spool`
(temporary name, fsync, rename, fsync of the folder), then wakes up the receivers. One
fsync covers the whole group, however many clients are sending.

A record is a one-line JSON header (id, channel, time, peer, size) followed by the bytes
exactly as received. A group file is deleted once every record in it has been stored in
DuckDB or moved to the quarantine; whatever a crash leaves here is read again at the
next start (a report stored twice is a duplicate, stored once).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ingest.durable import fsync_dir
from ingest.model import Channel

log = logging.getLogger(__name__)

SPOOL_DIR = "spool"
_SUFFIX = ".spool"
_MAX_HEADER = 4096
_MAX_GROUP = 512


class SpoolError(Exception):
    """A spool file that cannot be read back (damaged or foreign)."""


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    id: str
    """`<group>-<index>`: the group file and the record's place in it."""
    channel: Channel
    received_at: datetime
    source: str | None

    @property
    def group(self) -> str:
        return self.id.rsplit("-", 1)[0]

    def header(self, size: int) -> bytes:
        meta = {
            "id": self.id,
            "channel": self.channel.value,
            "received_at": self.received_at.isoformat(),
            "source": self.source,
            "size": size,
        }
        return json.dumps(meta, separators=(",", ":")).encode() + b"\n"


class Spool:
    """The spool folder. Thread-safe; blocking file operations."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / SPOOL_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}
        """Group -> records not yet stored or quarantined."""

    @staticmethod
    def new_group() -> str:
        """A fresh group name; names sort in arrival order."""
        return f"{time.time_ns():016x}{secrets.token_hex(3)}"

    def path(self, group: str) -> Path:
        return self.dir / f"{group}{_SUFFIX}"

    def write_group(self, group: str, items: list[tuple[SpoolEntry, bytes]]) -> None:
        """Write records durably as one file: fsync, rename, fsync of the folder."""
        final = self.path(group)
        tmp = final.with_name(f".{final.name}.tmp")
        # One buffer, one write: each system call hands the GIL back and forth with the
        # event loop, and every hand-over can wait for the loop's switch interval.
        data = b"".join(part for entry, raw in items for part in (entry.header(len(raw)), raw))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            with self._lock:
                self._open[group] = len(items)
            tmp.replace(final)
            fsync_dir(self.dir)
        except BaseException:
            tmp.unlink(missing_ok=True)
            with self._lock:
                self._open.pop(group, None)
            raise

    def done(self, entry_id: str) -> None:
        """A record was stored or quarantined; the file goes when all of its records have."""
        group = entry_id.rsplit("-", 1)[0]
        with self._lock:
            left = self._open.get(group, 0) - 1
            if left > 0:
                self._open[group] = left
                return
            self._open.pop(group, None)
        self.path(group).unlink(missing_ok=True)

    def groups(self) -> list[str]:
        """Complete group files on disk, oldest first."""
        names = sorted(p.name for p in self.dir.glob(f"*{_SUFFIX}") if not p.name.startswith("."))
        return [name[: -len(_SUFFIX)] for name in names]

    def read_group(self, group: str) -> Iterator[tuple[SpoolEntry, bytes]]:
        """The records of a group file (at start-up, before new deliveries arrive)."""
        data = self.path(group).read_bytes()
        records: list[tuple[SpoolEntry, bytes]] = []
        pos = 0
        while pos < len(data):
            end = data.find(b"\n", pos, pos + _MAX_HEADER)
            if end < 0:
                raise SpoolError(f"spool file {group}: record at byte {pos} has no header")
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
                raise SpoolError(f"spool file {group}: bad record header ({exc})") from exc
            raw = data[end + 1 : end + 1 + size]
            if len(raw) != size:
                raise SpoolError(f"spool file {group}: record {entry.id} is truncated")
            records.append((entry, raw))
            pos = end + 1 + size
        with self._lock:
            self._open[group] = len(records)
        if not records:
            self.path(group).unlink(missing_ok=True)
        yield from records

    def remove_group(self, group: str) -> None:
        with self._lock:
            self._open.pop(group, None)
        self.path(group).unlink(missing_ok=True)

    def remove_partial(self) -> int:
        """Delete temporary files a crash left behind (never acknowledged)."""
        removed = 0
        for tmp in self.dir.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
            removed += 1
        return removed


@dataclass(slots=True)
class _Pending:
    channel: Channel
    source: str | None
    received_at: datetime
    raw: bytes
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[SpoolEntry]


class SpoolFlusher:
    """A thread that writes spool entries in groups; `await put(...)` returns once the
    entry is durable."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self._pending: list[_Pending] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="spool-flusher", daemon=True)
        self._thread.start()

    async def put(self, channel: Channel, raw: bytes, source: str | None) -> SpoolEntry:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SpoolEntry] = loop.create_future()
        pending = _Pending(channel, source, datetime.now(UTC), raw, loop, future)
        with self._cond:
            if self._closed:
                raise RuntimeError("the spool is closed")
            self._pending.append(pending)
            if len(self._pending) == 1:
                self._cond.notify()  # the thread sleeps only when nothing is pending
        return await future

    def close(self) -> None:
        """Finish what is waiting, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return
                group = self._pending[:_MAX_GROUP]
                del self._pending[:_MAX_GROUP]
            name = self.spool.new_group()
            entries = [
                SpoolEntry(f"{name}-{i}", p.channel, p.received_at, p.source)
                for i, p in enumerate(group)
            ]
            error: BaseException | None = None
            try:
                self.spool.write_group(
                    name, [(e, p.raw) for e, p in zip(entries, group, strict=True)]
                )
            except OSError as exc:
                log.error("spool write failed: %s", exc)
                error = exc
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Pending, SpoolEntry]]] = {}
            for entry, p in zip(entries, group, strict=True):
                by_loop.setdefault(p.loop, []).append((p, entry))
            for loop, settled in by_loop.items():  # one wake-up per loop and group
                loop.call_soon_threadsafe(_settle, settled, error)


def _settle(settled: list[tuple[_Pending, SpoolEntry]], error: BaseException | None) -> None:
    for pending, entry in settled:
        if pending.future.done():
            continue  # cannot happen: receptions are shielded from cancellation
        if error is None:
            pending.future.set_result(entry)
        else:
            pending.future.set_exception(error)
