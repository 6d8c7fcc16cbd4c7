"""The intake process: spools the deliveries the collector receives, checks them and
stores the accepted ones, in a process of its own beside the one that receives them.

The receiving process (`ingest.reception`) runs the listeners on one event loop and
does nothing else with a delivery than hand it over and wait for the verdict. The rest
runs here, so it does not compete with that loop for the interpreter lock: the spool
(durable before any verdict), the parse and checks (`intake`), DKIM, the index of known
reports, the quarantine and the one DuckDB writer. At start this process also checks
what an earlier run left in the spool.

Over a socket pair (`multiprocessing` connection framing, pickled tuples), the
receiving process sends
  ("deliver", [(token, channel, received_at, source, raw), ...])
  ("stop",)                      at shutdown, after the last delivery was answered
and this process answers
  ("ready", known, accepted, refused)  the database is open and the spool of an
                                 earlier run checked: reports stored before, and the
                                 spooled ones accepted and refused
  ("failed", message)            it could not start
  ("verdicts", [Verdict, ...])   once the delivery is durable and checked
  ("stopped", counts, left)      the queue is stored: what the writer did (stored,
                                 duplicates, conflicts), `left` stay in the spool
Deliveries that arrive while the spool syncs are written together at the next sync
(group commit). This process exits at once, storing nothing more, when the receiving
process goes away (everything that was acknowledged is in the spool), and ignores
SIGINT and SIGTERM (the receiving process leads the shutdown).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import logging
import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from logging.handlers import QueueHandler
from multiprocessing.connection import Connection
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from ingest.dkim_check import DkimChecker, has_dkim_signature
from ingest.errors import InternalError, InvalidReport
from ingest.intake import IntakeRules, intake
from ingest.known_reports import KnownReports, load_known
from ingest.model import Channel, Envelope
from ingest.quarantine import Quarantine
from ingest.receipt import Delivery, Receipt, Verdict
from ingest.rows import report_key
from ingest.spool import SegmentContents, Spool, SpoolEntry
from ingest.writer import Accepted, StoreWriter

log = logging.getLogger(__name__)

INTAKE_THREADS = 4
QUICK_MAX = 256 * 1024
"""Inputs up to this size are checked at once, in order (well under a millisecond of
JSON, a few of MIME); larger ones, which may inflate to megabytes, and messages whose
DKIM signature needs DNS lookups, in worker threads."""
_MAX_GROUP = 512
"""Deliveries written with one sync, at most."""
_HELD_BACK_LOG_EVERY = 30.0
"""Seconds between warnings while deliveries wait for room in the writer's queue."""
_PR_SET_PDEATHSIG = 1


class _Replies:
    """The connection back to the receiving process, shared by this process's threads."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def send(self, message: tuple[Any, ...]) -> None:
        with self._lock:
            self._conn.send(message)


class Checker:
    """Spools deliveries, checks them and routes them: refused ones to the quarantine,
    accepted ones to the writer."""

    def __init__(
        self,
        data_dir: Path,
        rules: IntakeRules,
        spool: Spool,
        known: KnownReports,
        writer: StoreWriter,
        replies: _Replies,
    ) -> None:
        self.rules = rules
        self.spool = spool
        self.known = known
        self.writer = writer
        self.replies = replies
        self.quarantine = Quarantine(data_dir)
        self._executor = ThreadPoolExecutor(INTAKE_THREADS, thread_name_prefix="intake")
        self._local = threading.local()

    def deliver(self, deliveries: list[Delivery]) -> None:
        """Spool a group with one sync, then answer for each delivery: at once when it
        is small and needs no DNS (the common case), else from a worker thread."""
        try:
            entries = self.spool.append([d[1:] for d in deliveries])
        except OSError as exc:  # disk full, permissions: the sender should try again later
            log.error("spool write failed: %s", exc)
            refusal = InternalError(f"cannot spool the delivery ({exc.strerror or exc})")
            self.replies.send(
                ("verdicts", [Receipt("", refusal=refusal).verdict(d[0]) for d in deliveries])
            )
            return
        verdicts: list[Verdict] = []
        for (token, *_, raw), entry in zip(deliveries, entries, strict=True):
            if len(raw) <= QUICK_MAX and not self._needs_dns(entry.channel, raw):
                envelope = self._quick_intake(entry, raw)
                if envelope is not None:
                    verdicts.append(self._accept(entry, envelope).verdict(token))
                    continue
            self._executor.submit(self._check_later, token, entry, raw)
        if verdicts:
            self.replies.send(("verdicts", verdicts))

    def recover(self) -> tuple[int, int]:
        """Check what an earlier run left in the spool; returns (accepted, refused)."""
        partial = self.spool.remove_partial()
        if partial:
            log.info("removed %d incomplete spool file(s) (never acknowledged)", partial)
        accepted = refused = 0
        for segment in self.spool.segments():
            try:
                contents = self.spool.read_segment(segment)
            except OSError as exc:
                log.error("cannot read spool file %s (%s)", segment, exc)
                continue
            if contents.damaged:
                self._set_aside(segment, contents)
            for entry, raw in contents.records:
                self.writer.wait_for_room()
                if self.check(entry, raw).accepted:
                    accepted += 1
                else:
                    refused += 1
        return accepted, refused

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def _check_later(self, token: int, entry: SpoolEntry, raw: bytes) -> None:
        self.replies.send(("verdicts", [self.check(entry, raw).verdict(token)]))

    def _quick_intake(self, entry: SpoolEntry, raw: bytes) -> Envelope | None:
        """The envelope, or None when the input is refused (or the parser fails):
        `check` then does it again in a worker thread and writes the quarantine."""
        try:
            return self._intake(entry, raw)  # no DNS: HTTPS, or a message without signature
        except Exception:  # noqa: BLE001
            return None

    def _needs_dns(self, channel: Channel, raw: bytes) -> bool:
        return channel is Channel.SMTP and self.rules.dkim is not None and has_dkim_signature(raw)

    def check(self, entry: SpoolEntry, raw: bytes) -> Receipt:
        """Check a spooled delivery and route it (blocking)."""
        try:
            envelope = self._intake(entry, raw)
        except InvalidReport as exc:
            return self._refuse(entry, raw, exc)
        except Exception as exc:  # a checker bug must not lose the delivery
            log.exception("checking spool entry %s failed", entry.id)
            return self._refuse(entry, raw, InternalError(f"internal error ({type(exc).__name__})"))
        return self._accept(entry, envelope)

    def _intake(self, entry: SpoolEntry, raw: bytes) -> Envelope:
        return intake(
            raw,
            entry.channel,
            self._thread_rules(),
            source=entry.source,
            received_at=entry.received_at,
        )

    def _thread_rules(self) -> IntakeRules:
        """Each thread has its own DKIM checker (they keep per-lookup state)."""
        rules: IntakeRules | None = getattr(self._local, "rules", None)
        if rules is None:
            dkim = self.rules.dkim
            if dkim is not None:
                dkim = DkimChecker(
                    nameservers=dkim.nameservers, port=dkim.port, timeout=dkim.timeout
                )
            rules = dataclasses.replace(self.rules, dkim=dkim)
            self._local.rules = rules
        return rules

    def _accept(self, entry: SpoolEntry, envelope: Envelope) -> Receipt:
        report = envelope.parsed.report
        key = report_key(report.submitter, report.report_id)
        new = self.known.add(key)
        self.writer.submit(Accepted(entry.id, envelope, key, new))
        return Receipt(entry.id, duplicate=not new)

    def _refuse(self, entry: SpoolEntry, raw: bytes, exc: InvalidReport) -> Receipt:
        quarantined = self.quarantine.put(
            raw,
            code=exc.code,
            reason=str(exc),
            channel=entry.channel.value,
            source=entry.source,
            received_at=entry.received_at,
        )
        self.spool.done(entry.id)
        log.info(
            "refused %s delivery from %s: %s: %s (quarantine %s)",
            entry.channel.value,
            entry.source,
            exc.code,
            exc,
            quarantined.id,
        )
        return Receipt(entry.id, refusal=exc, quarantine_id=quarantined.id)

    def _set_aside(self, segment: str, contents: SegmentContents) -> None:
        """Keep what could not be read back of a spool file in the quarantine."""
        log.error(
            "spool file %s: %s; %d record(s) read, the remaining %d bytes go to the "
            "quarantine (a write cut short by a crash was never acknowledged)",
            segment,
            contents.problem,
            len(contents.records),
            len(contents.damaged),
        )
        self.quarantine.put(
            contents.damaged,
            code="bad_spool_file",
            reason=f"unreadable spool file: {contents.problem}",
            channel="spool",
            source=None,
        )
        if not contents.records:
            self.spool.remove_segment(segment)


def main(
    conn: Connection,
    data_dir: Path,
    rules: IntakeRules,
    logs: Queue[logging.LogRecord],
    log_level: int,
    drain_timeout: float,
) -> None:
    """The process (started by `ingest.reception.Reception` with the spawn method)."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    root = logging.getLogger()
    root.handlers[:] = [QueueHandler(logs)]
    root.setLevel(log_level)
    # the checks answer waiting clients: do not let the writer thread hold the
    # interpreter lock for the default 5 ms at a time
    sys.setswitchinterval(0.001)
    replies = _Replies(conn)
    spool = Spool(data_dir)
    try:
        known = load_known(data_dir)
    except Exception as exc:
        log.debug("cannot open the database", exc_info=True)
        replies.send(("failed", str(exc) or type(exc).__name__))
        return

    def stored(spool_ids: list[str]) -> None:
        for spool_id in spool_ids:
            spool.done(spool_id)

    writer = StoreWriter(data_dir, done=stored)
    checker = Checker(data_dir, rules, spool, known, writer, replies)
    accepted, refused = checker.recover()
    gc.freeze()  # what exists now lives as long as the process (see tlsrpt.service)
    replies.send(("ready", len(known), accepted, refused))
    stopping = False
    while not stopping:
        if not writer.wait_for_room(_HELD_BACK_LOG_EVERY):
            log.warning(
                "%d accepted reports wait for the database; new deliveries wait too",
                writer.pending,
            )
            continue
        deliveries: list[Delivery] = []
        try:
            while True:
                kind, *body = conn.recv()
                if kind == "stop":
                    stopping = True
                    break
                deliveries.extend(body[0])
                if len(deliveries) >= _MAX_GROUP or not conn.poll():
                    break
        except (EOFError, OSError):
            log.error("the receiving process is gone; what it acknowledged is in the spool")
            os._exit(1)
        if deliveries:
            checker.deliver(deliveries)
    checker.close()
    left = writer.pending
    finished = writer.close(drain_timeout)
    spool.close()
    stats = writer.stats
    counts = {"stored": stats.stored, "duplicates": stats.duplicates, "conflicts": stats.conflicts}
    replies.send(("stopped", counts, 0 if finished else left))


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the thread that started it (the receiving
    process's main thread) ends, however it ends."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before the request
        os._exit(1)
