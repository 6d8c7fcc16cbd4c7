"""The spool on a real folder: segments appended durably, deleted once their records are
done, read back after a crash, and a failed write that leaves nothing half-written."""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

import ingest.spool
from ingest.model import Channel
from ingest.spool import Incoming, Spool

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def deliveries(*bodies: bytes) -> list[Incoming]:
    return [(Channel.HTTPS, NOW, "https:192.0.2.1", body) for body in bodies]


def files(spool: Spool) -> list[str]:
    return sorted(p.name for p in spool.dir.iterdir())


def test_groups_append_to_one_segment_and_read_back_after_a_restart(data_dir: Path) -> None:
    spool = Spool(data_dir)
    first = spool.append(deliveries(b"one", b"two"))
    second = spool.append(deliveries(b"three\n{with a newline}"))
    assert [e.segment for e in first + second] == [first[0].segment] * 3
    assert [e.id.rsplit("-", 1)[1] for e in first + second] == ["0", "1", "2"]
    assert files(spool) == [f"{first[0].segment}.spool"]

    after_crash = Spool(data_dir)  # a new run reads what the last one left
    assert after_crash.segments() == [first[0].segment]
    contents = after_crash.read_segment(first[0].segment)
    assert contents.damaged == b""
    assert [(e, raw) for e, raw in contents.records] == list(
        zip(first + second, [b"one", b"two", b"three\n{with a newline}"], strict=True)
    )
    assert contents.records[0][0].source == "https:192.0.2.1"


def test_a_segment_goes_once_its_records_are_done_and_the_next_group_starts_another(
    data_dir: Path,
) -> None:
    spool = Spool(data_dir)
    first = spool.append(deliveries(b"a", b"b"))
    spool.done(first[0].id)
    assert files(spool) == [f"{first[0].segment}.spool"]  # one record still waits
    spool.done(first[1].id)
    assert files(spool) == []
    again = spool.append(deliveries(b"c"))
    assert again[0].segment != first[0].segment
    assert files(spool) == [f"{again[0].segment}.spool"]


def test_a_full_segment_takes_no_more_and_goes_when_done(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest.spool, "SEGMENT_BYTES", 100)
    spool = Spool(data_dir)
    full = spool.append(deliveries(b"x" * 100))
    later = spool.append(deliveries(b"y"))
    assert later[0].segment != full[0].segment
    assert len(files(spool)) == 2
    spool.done(full[0].id)
    assert files(spool) == [f"{later[0].segment}.spool"]


def test_a_failed_write_is_cut_off_and_the_next_group_starts_a_new_segment(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(data_dir)
    kept = spool.append(deliveries(b"kept"))

    real_fdatasync = os.fdatasync

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ingest.spool.os, "fdatasync", disk_full)
    with pytest.raises(OSError, match="No space"):
        spool.append(deliveries(b"lost: never acknowledged"))
    monkeypatch.setattr(ingest.spool.os, "fdatasync", real_fdatasync)

    later = spool.append(deliveries(b"later"))
    assert later[0].segment != kept[0].segment
    reread = Spool(data_dir)
    contents = reread.read_segment(kept[0].segment)
    assert [raw for _, raw in contents.records] == [b"kept"]
    assert contents.damaged == b""
    spool.done(kept[0].id)
    assert files(spool) == [f"{later[0].segment}.spool"]


def test_a_record_cut_short_is_returned_apart_from_the_whole_ones(data_dir: Path) -> None:
    spool = Spool(data_dir)
    entries = spool.append(deliveries(b"whole", b"cut short by a crash"))
    path = spool.path(entries[0].segment)
    data = path.read_bytes()
    path.write_bytes(data[:-5])

    contents = Spool(data_dir).read_segment(entries[0].segment)
    assert [raw for _, raw in contents.records] == [b"whole"]
    assert contents.damaged.endswith(b"\ncut short by a ")
    assert f"record {entries[1].id} is cut short" in contents.problem
