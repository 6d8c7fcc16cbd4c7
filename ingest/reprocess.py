"""Rebuild the parsed tables from the stored raw bytes, when the parser improves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ingest.database import run
from ingest.errors import InvalidReport
from ingest.intake import IntakeRules, intake
from ingest.model import Channel, DkimResult, DkimVerdict, Envelope
from ingest.store import Outcome, open_store

BATCH = 2000


@dataclass
class ReprocessResult:
    reprocessed: int = 0
    merged: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"reprocessed": self.reprocessed, "merged": self.merged, "failed": self.failed}


def reprocess(data_dir: Path) -> ReprocessResult:
    """Re-parse every stored report from its raw bytes and replace its rows, in one
    transaction. Arrival facts (channel, time, source, DKIM result) are kept; a raw
    input the parser now refuses keeps its old rows."""
    result = ReprocessResult()
    rules = IntakeRules()  # the report was accepted once: no domain or DKIM rules now
    with open_store(data_dir) as store:
        con = store.con
        keys = [int(k) for (k,) in con.execute("SELECT report_key FROM reports").fetchall()]
        run(con, "BEGIN TRANSACTION")
        try:
            for start in range(0, len(keys), BATCH):
                chunk = keys[start : start + BATCH]
                rows = con.execute(
                    "SELECT r.report_key, w.raw, r.channel, r.received_at, r.source, "
                    "r.dkim_result, r.dkim_domain "
                    "FROM reports r JOIN raw_reports w USING (report_key) "
                    "WHERE r.report_key IN (SELECT unnest(?))",
                    [chunk],
                ).fetchall()
                envelopes: list[Envelope] = []
                replaced: list[int] = []
                for key, raw, channel, received_at, source, dkim_result, dkim_domain in rows:
                    try:
                        env = intake(
                            bytes(raw),
                            Channel(channel),
                            rules,
                            source=source,
                            received_at=received_at,
                        )
                    except InvalidReport:
                        result.failed += 1
                        continue
                    dkim = (
                        DkimVerdict(DkimResult(dkim_result), dkim_domain) if dkim_result else None
                    )
                    envelopes.append(
                        Envelope(
                            env.parsed, env.raw, env.channel, env.received_at, env.source, dkim
                        )
                    )
                    replaced.append(int(key))
                for table in ("failure_details", "policies", "raw_reports", "reports"):
                    run(
                        con,
                        f"DELETE FROM {table} WHERE report_key IN (SELECT unnest(?))",
                        [replaced],
                    )
                for outcome in store.add(envelopes, transaction=False):
                    if outcome is Outcome.STORED:
                        result.reprocessed += 1
                    else:
                        result.merged += 1
            run(con, "COMMIT")
        except BaseException:
            run(con, "ROLLBACK")
            raise
    return result
