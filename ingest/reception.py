"""What both receivers do with a delivery: spool it durably, check it, answer.

1. The raw bytes go to the spool (durable) before anything else.
2. `intake` parses and checks them: on the event loop when that is quick and pure, in a
   worker thread when DKIM needs DNS or the input is refused (the quarantine write).
3. Refused: the bytes move to the quarantine with the reason; the receiver answers with
   a permanent error. Accepted: the report goes to the writer queue; the receiver answers
   with the spool id, and "duplicate" when the report was accepted before.

Checking and routing run in callbacks of the spool, not in the receiver's task, so a
client that hangs up mid-way changes nothing: what was spooled is still checked and
stored or quarantined.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ingest.dkim_check import DkimChecker, has_dkim_signature
from ingest.errors import InvalidReport
from ingest.intake import IntakeRules, intake
from ingest.known_reports import KnownReports
from ingest.model import Channel, Envelope
from ingest.quarantine import Quarantine
from ingest.rows import report_key
from ingest.spool import SegmentContents, Spool, SpoolEntry, SpoolFlusher
from ingest.writer import Accepted, StoreWriter

log = logging.getLogger(__name__)

INTAKE_THREADS = 4
QUICK_MAX = 256 * 1024
"""Inputs up to this size are parsed on the event loop (well under a millisecond of
JSON, a few of MIME); larger ones, which may inflate to megabytes, in a worker thread."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """The answer to one delivery."""

    spool_id: str
    duplicate: bool = False
    refusal: InvalidReport | None = None
    quarantine_id: str | None = None

    @property
    def accepted(self) -> bool:
        return self.refusal is None


class InternalError(InvalidReport):
    """The checker itself failed; the input is kept in the quarantine."""

    code = "internal_error"


class Reception:
    def __init__(
        self,
        data_dir: Path,
        rules: IntakeRules,
        known: KnownReports,
        writer: StoreWriter,
        spool: Spool,
    ) -> None:
        self.rules = rules
        self.known = known
        self.writer = writer
        self.spool = spool
        self.flusher = SpoolFlusher(spool)
        self.quarantine = Quarantine(data_dir)
        self._executor = ThreadPoolExecutor(INTAKE_THREADS, thread_name_prefix="intake")
        self._local = threading.local()
        self._in_progress: set[asyncio.Future[Receipt]] = set()
        """Deliveries not yet checked and routed."""

    async def receive(self, raw: bytes, channel: Channel, source: str | None) -> Receipt:
        """Spool, check and route one delivery; returns once the bytes are durable and
        the verdict is known."""
        receipt: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._in_progress.add(receipt)
        try:
            self.flusher.put(channel, raw, source, functools.partial(self._durable, raw, receipt))
        except BaseException:
            self._in_progress.discard(receipt)
            raise
        return await receipt

    async def drain(self) -> None:
        """Wait for deliveries in progress (at shutdown)."""
        while self._in_progress:
            await asyncio.sleep(0.01)

    def close(self) -> None:
        self.flusher.close()
        self._executor.shutdown(wait=True)

    def _durable(
        self,
        raw: bytes,
        receipt: asyncio.Future[Receipt],
        entry: SpoolEntry | None,
        error: OSError | None,
    ) -> None:
        """The delivery is durable (or could not be written): check and route it. Runs
        as a callback on the event loop, not in the receiver's task, so a client that
        goes away (which cancels that task) changes nothing."""
        if entry is None:  # disk full, permissions: the sender should try again later
            reason = error.strerror if error is not None else "unknown error"
            self._finish(
                receipt, Receipt("", refusal=InternalError(f"cannot spool the delivery ({reason})"))
            )
            return
        if len(raw) <= QUICK_MAX and not self._needs_dns(entry.channel, raw):
            # the common case: parsing is quick and pure, so it runs right here
            envelope = self._quick_intake(entry, raw)
            if envelope is not None:
                self._finish(receipt, self._accept(entry, envelope))
                return
        work = asyncio.get_running_loop().run_in_executor(self._executor, self.check, entry, raw)
        work.add_done_callback(functools.partial(self._checked, entry, receipt))

    def _checked(
        self, entry: SpoolEntry, receipt: asyncio.Future[Receipt], work: asyncio.Future[Receipt]
    ) -> None:
        if work.cancelled() or work.exception() is not None:  # `check` catches its errors
            refusal = InternalError("internal error (the check did not finish)")
            self._finish(receipt, Receipt(entry.id, refusal=refusal))
        else:
            self._finish(receipt, work.result())

    def _finish(self, receipt: asyncio.Future[Receipt], result: Receipt) -> None:
        self._in_progress.discard(receipt)
        if not receipt.done():  # done: the receiver's task was cancelled
            receipt.set_result(result)

    def _quick_intake(self, entry: SpoolEntry, raw: bytes) -> Envelope | None:
        """The envelope, or None when the input is refused (or the parser fails):
        `check` then does it again in a worker thread and writes the quarantine."""
        try:
            return intake(
                raw,
                entry.channel,
                self._thread_rules(),  # no DNS: HTTPS, or a message without signature
                source=entry.source,
                received_at=entry.received_at,
            )
        except Exception:  # noqa: BLE001
            return None

    def _needs_dns(self, channel: Channel, raw: bytes) -> bool:
        return channel is Channel.SMTP and self.rules.dkim is not None and has_dkim_signature(raw)

    def check(self, entry: SpoolEntry, raw: bytes) -> Receipt:
        """Check a spooled delivery and route it (blocking; runs in a worker thread)."""
        try:
            envelope = intake(
                raw,
                entry.channel,
                self._thread_rules(),
                source=entry.source,
                received_at=entry.received_at,
            )
        except InvalidReport as exc:
            return self._refuse(entry, raw, exc)
        except Exception as exc:  # a checker bug must not lose the delivery
            log.exception("checking spool entry %s failed", entry.id)
            return self._refuse(entry, raw, InternalError(f"internal error ({type(exc).__name__})"))
        return self._accept(entry, envelope)

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
                if self.check(entry, raw).accepted:
                    accepted += 1
                else:
                    refused += 1
        return accepted, refused

    def _thread_rules(self) -> IntakeRules:
        """Each worker thread has its own DKIM checker (they keep per-lookup state)."""
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
        new = self.known.add(report_key(report.submitter, report.report_id))
        self.writer.submit(Accepted(entry.id, envelope))
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
