"""Who owns the write side of a data directory: an exclusive lock on DATA_DIR/collector.lock.

`tlsrpt serve` holds it for as long as it runs; `tlsrpt import` and `tlsrpt reprocess`
hold it while they write. The file tells who holds it (pid, command, listeners); the
kernel drops the lock when the process dies, even by `kill -9`.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LOCK_FILENAME = "collector.lock"


class DataDirBusy(Exception):
    """Another process writes to this data directory."""


def lock_path(data_dir: Path) -> Path:
    return data_dir / LOCK_FILENAME


def holder(data_dir: Path) -> dict[str, Any]:
    """What the lock file says about its holder (empty when unknown)."""
    try:
        info = json.loads(lock_path(data_dir).read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


@contextmanager
def collector_lock(data_dir: Path, command: str) -> Iterator[dict[str, Any]]:
    """Hold the lock; raises `DataDirBusy` when another process has it. Yields the info
    dict written to the lock file; call `update_lock` to add to it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(data_dir), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = holder(data_dir)
            who = f"`tlsrpt {other.get('command', '?')}` (pid {other.get('pid', '?')})"
            what = (
                "deliver reports to it, or stop it first"
                if other.get("command") == "serve"
                else "wait for it to finish"
            )
            raise DataDirBusy(f"{who} is writing to {data_dir}; {what}") from None
        info: dict[str, Any] = {"pid": os.getpid(), "command": command}
        _write(fd, info)
        try:
            yield info
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def update_lock(data_dir: Path, info: dict[str, Any]) -> None:
    """Rewrite the holder info (the caller holds the lock)."""
    fd = os.open(lock_path(data_dir), os.O_WRONLY)
    try:
        _write(fd, info)
    finally:
        os.close(fd)


def _write(fd: int, info: dict[str, Any]) -> None:
    data = json.dumps(info).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
