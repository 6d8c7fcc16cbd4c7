"""The spool: raw deliveries on disk, durable before anyone is told "accepted".

Each entry is one file `DATA_DIR/spool/<id>.msg`: a one-line JSON header (channel, time,
peer) followed by the bytes exactly as received. A file appears only complete (written
to a temporary name, fsynced, renamed, folder fsynced) and is deleted only after its
report is committed to DuckDB or moved to the quarantine; whatever a crash leaves here
is picked up again at the next start.

`SpoolFlusher` groups the fsyncs of concurrent deliveries: one thread writes every
waiting entry, fsyncs each file, renames them all and fsyncs the folder once, then wakes
up the waiting receivers.
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
_SUFFIX = ".msg"
_MAX_HEADER = 4096
_MAX_GROUP = 256


class SpoolError(Exception):
    """A spool file that cannot be read back (truncated or foreign)."""


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    id: str
    channel: Channel
    received_at: datetime
    source: str | None

    def header(self) -> bytes:
        meta = {
            "channel": self.channel.value,
            "received_at": self.received_at.isoformat(),
            "source": self.source,
        }
        return json.dumps(meta, separators=(",", ":")).encode() + b"\n"


class Spool:
    """The spool folder: plain, blocking file operations."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / SPOOL_DIR
        self.dir.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def new_entry(channel: Channel, source: str | None) -> SpoolEntry:
        """A fresh entry; ids sort in arrival order."""
        now = time.time_ns()
        entry_id = f"{now:016x}{secrets.token_hex(4)}"
        return SpoolEntry(entry_id, channel, datetime.fromtimestamp(now / 1e9, UTC), source)

    def path(self, entry: SpoolEntry | str) -> Path:
        entry_id = entry if isinstance(entry, str) else entry.id
        return self.dir / f"{entry_id}{_SUFFIX}"

    def write_group(self, items: list[tuple[SpoolEntry, bytes]]) -> None:
        """Write entries durably: each file fsynced, then renamed, then one folder fsync."""
        staged: list[tuple[Path, Path]] = []
        try:
            for entry, raw in items:
                final = self.path(entry)
                tmp = final.with_name(f".{final.name}.tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
                staged.append((tmp, final))
                try:
                    for chunk in (entry.header(), raw):
                        view = memoryview(chunk)
                        while view:
                            view = view[os.write(fd, view) :]
                    os.fsync(fd)
                finally:
                    os.close(fd)
            for tmp, final in staged:
                tmp.replace(final)
            fsync_dir(self.dir)
        except BaseException:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            raise

    def read(self, entry_id: str) -> tuple[SpoolEntry, bytes]:
        data = self.path(entry_id).read_bytes()
        end = data.find(b"\n", 0, _MAX_HEADER)
        if end < 0:
            raise SpoolError(f"spool file {entry_id} has no header")
        try:
            meta = json.loads(data[:end])
            entry = SpoolEntry(
                entry_id,
                Channel(meta["channel"]),
                datetime.fromisoformat(meta["received_at"]),
                meta.get("source"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise SpoolError(f"spool file {entry_id} has a bad header: {exc}") from exc
        return entry, data[end + 1 :]

    def ids(self) -> Iterator[str]:
        """Ids of the complete entries, oldest first."""
        names = sorted(p.name for p in self.dir.glob(f"*{_SUFFIX}") if not p.name.startswith("."))
        for name in names:
            yield name[: -len(_SUFFIX)]

    def remove(self, entry_id: str) -> None:
        self.path(entry_id).unlink(missing_ok=True)

    def remove_partial(self) -> int:
        """Delete temporary files a crash left behind (never acknowledged)."""
        removed = 0
        for tmp in self.dir.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
            removed += 1
        return removed


@dataclass(slots=True)
class _Pending:
    entry: SpoolEntry
    raw: bytes
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


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
        entry = self.spool.new_entry(channel, source)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the spool is closed")
            self._pending.append(_Pending(entry, raw, loop, future))
            self._cond.notify()
        await future
        return entry

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
            error: BaseException | None = None
            try:
                self.spool.write_group([(p.entry, p.raw) for p in group])
            except OSError as exc:
                log.error("spool write failed: %s", exc)
                error = exc
            for p in group:
                p.loop.call_soon_threadsafe(_settle, p.future, error)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return  # the receiver gave up (client gone); the entry is on disk anyway
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
