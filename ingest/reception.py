"""What both receivers do with a delivery: hand it to the intake process, answer with
its verdict.

The intake process (`ingest.intake_process`) spools the bytes durably, then checks them
(parse, policy domains, DKIM). Refused: it moves them to the quarantine with the
reason. Accepted: its writer stores the report. Either way its verdict comes back here,
once the bytes are durable, and the receiver answers with it: the spool id, "duplicate"
when the report was accepted before, or the refusal.

This process only receives and answers, on one event loop with no other thread, so
nothing else competes with the listeners for the interpreter lock. Deliveries handed
over in the same turn of the event loop travel in one message. The intake process works
on what it was given whether or not anyone still waits for the answer, so a client that
hangs up mid-way changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import pickle
import socket
import struct
from datetime import UTC, datetime
from logging.handlers import QueueListener
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from ingest.errors import InternalError
from ingest.intake import IntakeRules
from ingest.model import Channel
from ingest.receipt import Delivery, Receipt

log = logging.getLogger(__name__)

_HEADER = struct.Struct("!i")
"""`multiprocessing.connection`'s framing: a signed 32-bit length, then the pickle."""


class IntakeFailed(Exception):
    """The intake process could not start, or stopped."""


class Reception:
    """Hands deliveries to the intake process and answers with its verdicts. `start`
    it on the main thread, `close` it at shutdown."""

    def __init__(self, data_dir: Path, rules: IntakeRules) -> None:
        self.data_dir = data_dir
        self.rules = rules
        self.known = 0
        """Reports stored before this start."""
        self.recovered = (0, 0)
        """Spooled deliveries of an earlier run: accepted, refused."""
        self.stats: dict[str, int] | None = None
        """What the writer did (stored, duplicates, conflicts), once closed."""
        self.left = 0
        """Accepted reports not stored at shutdown (they stay in the spool)."""
        self.failed = asyncio.Event()
        """Set when the intake process ends unexpectedly."""
        self._process: BaseProcess | None = None
        self._logs: QueueListener | None = None
        self._transport: asyncio.Transport | None = None
        self._waiting: dict[int, asyncio.Future[Receipt]] = {}
        self._outgoing: list[Delivery] = []
        self._token = 0
        self._ready: asyncio.Future[tuple[Any, ...]] | None = None
        self._stopped: asyncio.Future[tuple[Any, ...]] | None = None
        self._gone = False

    async def start(self, drain_timeout: float) -> None:
        """Start the intake process and wait until it has checked what an earlier run
        left in the spool. Call it on the main thread: the process is killed when this
        thread ends."""
        loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("spawn")
        ours, theirs = socket.socketpair()
        child_end = Connection(theirs.detach())
        logs: Queue[logging.LogRecord] = context.Queue()
        self._logs = QueueListener(logs, *logging.getLogger().handlers)
        self._logs.start()
        self._process = context.Process(
            target=_intake_main,
            args=(
                child_end,
                self.data_dir,
                self.rules,
                logs,
                logging.getLogger().getEffectiveLevel(),
                drain_timeout,
            ),
            name="tlsrpt-intake",
            daemon=True,
        )
        self._ready = loop.create_future()
        try:
            self._process.start()
        finally:
            child_end.close()  # the child has its own copy
        await loop.connect_accepted_socket(lambda: _Link(self), ours)
        kind, *detail = await self._ready
        if kind != "ready":
            self._gone = True
            await self.close(0)
            raise IntakeFailed(f"cannot start the intake process: {detail[0]}")
        self.known, accepted, refused = detail
        self.recovered = (accepted, refused)

    async def receive(self, raw: bytes, channel: Channel, source: str | None) -> Receipt:
        """Have one delivery spooled and checked; returns its verdict once the bytes
        are durable."""
        if self._gone or self._transport is None:
            return _unchecked("")
        loop = asyncio.get_running_loop()
        self._token += 1
        answer: asyncio.Future[Receipt] = loop.create_future()
        self._waiting[self._token] = answer
        if not self._outgoing:
            loop.call_soon(self._send_outgoing)
        self._outgoing.append((self._token, channel, datetime.now(UTC), source, raw))
        return await answer

    async def drain(self) -> None:
        """Wait for the verdicts of the deliveries in progress (at shutdown)."""
        while self._waiting:
            await asyncio.sleep(0.01)

    async def close(self, drain_timeout: float) -> None:
        """Let the intake process store its queue (up to `drain_timeout`; what is left
        stays in the spool) and stop it."""
        if not self._gone and self._transport is not None:
            self._stopped = asyncio.get_running_loop().create_future()
            self._send(("stop",))
            try:
                _, self.stats, self.left = await asyncio.wait_for(self._stopped, drain_timeout + 10)
            except (TimeoutError, IntakeFailed):
                log.warning("the intake process did not stop in time")
        process = self._process
        if process is not None:
            await asyncio.to_thread(process.join, 10.0)
            if process.is_alive():
                process.kill()
                await asyncio.to_thread(process.join, 5.0)
        self._gone = True
        if self._transport is not None:
            self._transport.close()
        if self._logs is not None:
            self._logs.stop()
            self._logs = None

    def _send_outgoing(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        self._send(("deliver", outgoing))

    def _send(self, message: tuple[Any, ...]) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        payload = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        self._transport.write(_HEADER.pack(len(payload)) + payload)

    # -- called by the link ------------------------------------------------------------

    def _connected(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def _message(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "verdicts":
            for token, *receipt in message[1]:
                answer = self._waiting.pop(token, None)
                if answer is not None and not answer.done():  # done: the receiver gave up
                    answer.set_result(Receipt(*receipt))
        elif kind in ("ready", "failed"):
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(message)
        elif kind == "stopped" and self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(message)

    def _lost(self) -> None:
        if self._gone:
            return
        self._gone = True
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(("failed", "it ended (see the log)"))
        elif self._stopped is not None:
            if not self._stopped.done():
                self._stopped.set_exception(IntakeFailed("the intake process ended"))
        else:
            log.error(
                "the intake process ended unexpectedly; stopping (what was acknowledged "
                "is in the spool and is stored at the next start)"
            )
            self.failed.set()
        waiting, self._waiting = self._waiting, {}
        for answer in waiting.values():
            if not answer.done():
                answer.set_result(_unchecked(""))


class _Link(asyncio.Protocol):
    """The event loop's end of the socket pair to the intake process."""

    def __init__(self, reception: Reception) -> None:
        self.reception = reception
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.reception._connected(transport)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        start = 0
        while len(buffer) - start >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer, start)
            end = start + _HEADER.size + size
            if len(buffer) < end:
                break
            # from our own intake process, over a socket pair no one else holds
            message = pickle.loads(buffer[start + _HEADER.size : end])  # noqa: S301
            start = end
            self.reception._message(message)
        del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self.reception._lost()


def _intake_main(*args: Any) -> None:
    """The intake process's entry point. Imported there, not here: this process needs
    none of the database and Arrow libraries."""
    from ingest.intake_process import main

    main(*args)


def _unchecked(spool_id: str) -> Receipt:
    # transient for the sender (451 / 500): it tries again later
    return Receipt(spool_id, refusal=InternalError("the report could not be checked"))
