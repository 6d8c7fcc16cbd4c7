"""The intake process's side, in this process: a group of deliveries is spooled, checked
and routed, and the verdicts come back over a real pipe."""

from __future__ import annotations

import multiprocessing
import pickle
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.errors import ForeignDomain, InternalError, InvalidReport, TooLarge, Unauthenticated
from ingest.intake import IntakeRules
from ingest.intake_process import Checker, _Replies
from ingest.known_reports import load_known
from ingest.model import Channel
from ingest.receipt import Receipt
from ingest.spool import Spool
from ingest.writer import StoreWriter
from tests.support.collector import query, report_json

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "error",
    [
        InvalidReport("missing", "organization-name"),
        TooLarge("inflates past 50 MB"),
        ForeignDomain("report is about other.example", "policy-domain"),
        Unauthenticated("DKIM none", "DKIM-Signature"),
        InternalError("internal error (KeyError)"),
    ],
)
def test_refusals_cross_the_process_boundary_whole(error: InvalidReport) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert (copy.code, copy.reason, copy.field, str(copy)) == (
        error.code,
        error.reason,
        error.field,
        str(error),
    )
    receipt = Receipt("seg-1", refusal=error, quarantine_id="q1")
    assert Receipt(*pickle.loads(pickle.dumps(receipt.verdict(7)))[1:]).refusal is not None


def test_a_group_is_spooled_checked_and_routed(data_dir: Path) -> None:
    theirs, ours = multiprocessing.Pipe()
    spool = Spool(data_dir)

    def stored(spool_ids: list[str]) -> None:
        for spool_id in spool_ids:
            spool.done(spool_id)

    writer = StoreWriter(data_dir, done=stored)
    checker = Checker(
        data_dir,
        IntakeRules(domains=frozenset({"example.com"})),
        spool,
        load_known(data_dir),
        writer,
        _Replies(theirs),
    )
    try:
        checker.deliver(
            [
                (1, Channel.HTTPS, NOW, "https:192.0.2.1", report_json("g-1")),
                (2, Channel.HTTPS, NOW, None, report_json("g-2", domain="other.example")),
                (3, Channel.HTTPS, NOW, None, report_json("g-1")),
            ]
        )
        verdicts: dict[int, Receipt] = {}
        deadline = time.monotonic() + 30
        while len(verdicts) < 3 and ours.poll(max(0.0, deadline - time.monotonic())):
            kind, found = ours.recv()
            assert kind == "verdicts"
            verdicts.update((token, Receipt(*rest)) for token, *rest in found)
        assert verdicts[1].accepted and not verdicts[1].duplicate
        assert verdicts[3].accepted and verdicts[3].duplicate  # the same report again
        refusal = verdicts[2].refusal
        assert isinstance(refusal, ForeignDomain) and verdicts[2].quarantine_id
        assert verdicts[1].spool_id.rsplit("-", 1)[0] == verdicts[2].spool_id.rsplit("-", 1)[0]
        assert writer.wait_idle(30)
    finally:
        checker.close()
        writer.close(30)
    assert query(data_dir, "SELECT report_id, source FROM reports") == [("g-1", "https:192.0.2.1")]
    assert writer.stats.stored == 1 and writer.stats.duplicates == 1
    assert not list(spool.dir.iterdir())  # one segment, gone once all three were done
