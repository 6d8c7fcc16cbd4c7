"""The collector's writer connection: the database file is attached for a batch only,
so other processes open it between batches; a reader holding it makes the writer wait.
Each report is stored once, with or without the collector's hint of which are new."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from ingest import writer as writer_module
from ingest.database import Attacher, DatabaseBusy, database_path
from ingest.intake import IntakeRules, intake
from ingest.model import Channel, Envelope
from ingest.rows import report_key
from ingest.store import BatchWriter, Outcome
from ingest.writer import Accepted, StoreWriter
from tests.support.collector import report_json


def envelope(report_id: str) -> Envelope:
    return intake(report_json(report_id), Channel.HTTPS, IntakeRules(), source="https:192.0.2.1")


def key_of(env: Envelope) -> int:
    return report_key(env.parsed.report.submitter, env.parsed.report.report_id)


def count_in_another_process(path: Path) -> int:
    code = (
        "import duckdb, sys\n"
        "con = duckdb.connect(sys.argv[1], read_only=True)\n"
        "print(con.execute('SELECT count(*) FROM reports').fetchall()[0][0])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    return int(result.stdout)


def test_other_processes_open_the_file_between_batches(data_dir: Path) -> None:
    writer = BatchWriter(data_dir)
    try:
        with writer.batch() as store:
            assert store.add([envelope("b-1"), envelope("b-2")]) == [Outcome.STORED] * 2
        assert count_in_another_process(database_path(data_dir)) == 2
        with writer.batch() as store:
            assert store.add([envelope("b-2"), envelope("b-3")]) == [
                Outcome.DUPLICATE,
                Outcome.STORED,
            ]
        assert count_in_another_process(database_path(data_dir)) == 3
        assert not database_path(data_dir).with_suffix(".duckdb.wal").exists()  # checkpointed
    finally:
        writer.close()


@contextmanager
def reader_holding(path: Path) -> Iterator[None]:
    """Another process with a read-only connection open on the file."""
    code = (
        "import duckdb, sys\n"
        "con = duckdb.connect(sys.argv[1], read_only=True)\n"
        "print('open', flush=True)\n"
        "sys.stdin.readline()\n"
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", code, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline() == "open\n"
        yield
    finally:
        reader.communicate("done\n", timeout=30)


def test_a_reader_holding_the_file_makes_the_batch_wait(data_dir: Path) -> None:
    writer = BatchWriter(data_dir)
    try:
        with writer.batch() as store:
            store.add([envelope("r-1")])
        with (
            reader_holding(database_path(data_dir)),
            pytest.raises(DatabaseBusy),
            writer.batch(wait=0.3),
        ):
            pass
        with writer.batch() as store:
            assert store.add([envelope("r-2")]) == [Outcome.STORED]
    finally:
        writer.close()


def test_a_database_file_replaced_between_batches_is_migrated_again(data_dir: Path) -> None:
    writer = BatchWriter(data_dir)
    try:
        with writer.batch() as store:
            store.add([envelope("m-1")])
        database_path(data_dir).unlink()
        with pytest.raises(duckdb.CatalogException), writer.batch() as store:
            store.add([envelope("m-2")])  # the schema was checked at the first batch only
        with writer.batch() as store:
            assert store.add([envelope("m-2")]) == [Outcome.STORED]
        assert count_in_another_process(database_path(data_dir)) == 1
    finally:
        writer.close()


def test_only_the_keys_that_may_be_stored_are_looked_up(data_dir: Path) -> None:
    writer = BatchWriter(data_dir)
    try:
        with writer.batch() as store:
            store.add([envelope("k-1")])
        with writer.batch() as store:
            outcomes = store.add(
                [envelope("k-1"), envelope("k-2"), envelope("k-2")],
                maybe_stored={key_of(envelope("k-1"))},
            )
        assert outcomes == [Outcome.DUPLICATE, Outcome.STORED, Outcome.DUPLICATE]
        assert count_in_another_process(database_path(data_dir)) == 2
    finally:
        writer.close()


def test_a_batch_committed_before_an_error_is_not_stored_again(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's retry looks up every key: the batch below is committed, then the
    detach fails, and the retry must find the reports instead of adding them twice."""
    failures = iter([duckdb.IOException("injected: detach failed")])
    detach = Attacher._detach

    def detach_once_failing(self: Attacher) -> None:
        detach(self)
        exc = next(failures, None)
        if exc is not None:
            raise exc

    monkeypatch.setattr(Attacher, "_detach", detach_once_failing)
    done: list[str] = []
    writer = StoreWriter(data_dir, done=done.extend)
    try:
        for n, report_id in enumerate(["c-1", "c-2"]):
            env = envelope(report_id)
            writer.submit(Accepted(f"s-{n}", env, key_of(env), new=True))
        assert writer.wait_idle(30)
    finally:
        writer.close(30)
    assert sorted(done) == ["s-0", "s-1"]
    assert (writer.stats.stored, writer.stats.duplicates) == (0, 2)
    assert count_in_another_process(database_path(data_dir)) == 2


def submit_all(writer: StoreWriter, report_ids: list[str]) -> None:
    for report_id in report_ids:
        env = envelope(report_id)
        writer.submit(Accepted(report_id, env, key_of(env), new=True))


def test_a_full_batch_is_written_without_lingering(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that fell behind must not wait for batches that are already full, or it
    never catches up with a sustained load."""
    monkeypatch.setattr(writer_module, "MAX_BATCH", 10)
    monkeypatch.setattr(writer_module, "LINGER", 60.0)
    writer = StoreWriter(data_dir, done=lambda ids: None)
    try:
        start = time.monotonic()
        submit_all(writer, [f"f-{n}" for n in range(30)])
        assert writer.wait_idle(20)
        assert time.monotonic() - start < 20
        assert (writer.stats.batches, writer.stats.stored) == (3, 30)
    finally:
        writer.close(30)


def test_a_writer_behind_holds_new_reports_back_until_it_catches_up(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "MAX_PENDING", 3)
    monkeypatch.setattr(writer_module, "LINGER", 0.1)
    writer = StoreWriter(data_dir, done=lambda ids: None)
    try:
        submit_all(writer, ["p-0"])
        assert writer.wait_idle(30)  # the database exists
        with reader_holding(database_path(data_dir)):
            submit_all(writer, ["p-1", "p-2"])
            assert writer.wait_for_room(0.5)  # 2 waiting: room for more
            submit_all(writer, ["p-3"])
            assert not writer.wait_for_room(1.0)  # 3 waiting for the reader to let go
            assert writer.pending == 3
        assert writer.wait_for_room(30)
        assert writer.wait_idle(30)
    finally:
        writer.close(30)
    assert writer.stats.stored == 4
    assert count_in_another_process(database_path(data_dir)) == 4
