"""The SMTP edge (aiosmtpd): accept report mail for the configured mailboxes.

Thin: the handler checks the recipient, hands the message to `Reception` and turns the
receipt into an SMTP reply. No AUTH, no relaying, STARTTLS offered but never required
(RFC 8460 §3: reports must get through even when TLS fails).
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import weakref
from email._header_value_parser import AddrSpec, AngleAddr, get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from ingest.errors import ForeignDomain, InternalError, NoReportFound, TooLarge, Unauthenticated
from ingest.model import Channel
from ingest.receipt import Receipt
from ingest.reception import Reception

log = logging.getLogger(__name__)

IDENT = "tlsrpt-collector"
_MAX_REPLY = 400
_EXPIRY_RECHECK = 0.1
"""Seconds between checks whether an expired session's delivery has its reply."""
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_ADDRESS = re.compile(rf"<({_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*)>[ \t]*")
"""`<local@domain>` of RFC 5322 dot-atoms, and the blanks after it (which the full
parser skips too, with any comment: one that follows is left to that parser)."""


def smtp_reply(receipt: Receipt) -> str:
    """The SMTP reply for a receipt, with an enhanced status code (RFC 3463)."""
    error = receipt.refusal
    if error is None:
        return f"250 2.0.0 queued as {receipt.spool_id}"
    if isinstance(error, InternalError):
        return "451 4.3.0 the report could not be checked; try again later"
    if isinstance(error, TooLarge):
        code = "552 5.3.4"
    elif isinstance(error, Unauthenticated):
        return _one_line(f"550 5.7.20 no passing DKIM signature ({error.reason})")
    elif isinstance(error, ForeignDomain):
        code = "550 5.7.1"
    elif isinstance(error, NoReportFound):
        code = "550 5.6.0"
    else:
        code = "550 5.6.0 invalid TLS report:"
    return _one_line(f"{code} {error}")


def _one_line(text: str) -> str:
    """One line of printable ASCII, bounded: the reason came from untrusted input."""
    text = " ".join(text.split())
    return text.encode("ascii", "replace").decode()[:_MAX_REPLY]


class ReportHandler:
    """aiosmtpd handler hooks."""

    def __init__(self, reception: Reception, mailboxes: frozenset[str]) -> None:
        self.reception = reception
        self.mailboxes = mailboxes
        """Accepted recipient addresses, lower case; empty: any."""
        self.sessions: weakref.WeakSet[ReportSMTP] = weakref.WeakSet()
        """Open sessions, to count them and to close them at shutdown."""
        self.full = False
        """Whether the last connection was refused for too many sessions (logged once)."""
        self.closing = False
        """Set at shutdown: messages already being sent finish, new ones are refused."""

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.closing:
            return "421 4.3.2 shutting down; try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        return [r for r in responses if not r.startswith("250-AUTH")]

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.mailboxes and address.lower() not in self.mailboxes:
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        peer = session.peer
        source = f"smtp:{peer[0]}" if isinstance(peer, tuple) else "smtp"
        if server.transport is None or server.transport.is_closing():
            # the session ended (its time limit) just as the message came in: its
            # sender cannot be told, and sends it again
            return "421 4.4.2 session closed"
        if isinstance(server, ReportSMTP):
            server.delivering = True
        try:
            receipt = await self.reception.receive(raw, Channel.SMTP, source)
        finally:
            if isinstance(server, ReportSMTP):
                server.delivering = False
        return smtp_reply(receipt)


class ReportSMTP(SMTP):
    """aiosmtpd's SMTP with a cap on the whole session, against slow clients, and
    tolerance for lines longer than RFC 5321's 1000 (some senders do not wrap)."""

    line_length_limit = 64 * 1024

    def __init__(self, *args: Any, max_session: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_session = max_session
        self.delivering = False
        """A message is being checked: the session limit waits for its reply."""
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._deadline is None:  # STARTTLS calls this again for the TLS transport
            self._deadline = self.loop.call_later(self._max_session, self._session_expired)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.event_handler.sessions.discard(self)
        if self._deadline is not None:
            self._deadline.cancel()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """The address of MAIL and RCPT, and the rest of the argument, as aiosmtpd
        parses them, at a fraction of the cost: aiosmtpd defines a `typing.Protocol`
        class on every call (half of the 0.1 ms each address cost), then runs the
        standard library's RFC 5322 parser (the other half). `<local@domain>` with plain
        dot-atoms, nearly every address, needs neither; anything else still gets the
        full parser."""
        if not arg:
            return "", ""
        simple = _SIMPLE_ADDRESS.match(arg)
        if simple is not None and not arg.startswith("(", simple.end()):
            addr, rest = simple[1], arg[simple.end() :]
        else:
            address: AngleAddr | AddrSpec
            try:
                if arg.lstrip().startswith("<"):
                    address, rest = get_angle_addr(arg)
                else:
                    address, rest = get_addr_spec(arg)
            except HeaderParseError:
                return None, None
            addr = address.addr_spec
        localpart = addr.rpartition("@")[0]
        if self.local_part_limit and len(localpart) > self.local_part_limit:
            return None, None
        return addr, rest

    def _session_expired(self) -> None:
        if self.delivering:  # hanging up now would make the sender send it again
            self._deadline = self.loop.call_later(_EXPIRY_RECHECK, self._session_expired)
            return
        log.info("closing an SMTP session that exceeded %.0f s", self._max_session)
        self.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class _TooManySessions(asyncio.Protocol):
    """Greets with 421 and hangs up (RFC 5321 §3.1): the sender tries again later."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(b"421 4.7.0 too many connections; try again later\r\n")
        transport.close()


def smtp_factory(
    handler: ReportHandler,
    *,
    hostname: str,
    data_size_limit: int,
    tls_context: ssl.SSLContext | None,
    idle_timeout: float,
    max_session: float,
    max_sessions: int,
) -> Any:
    """The protocol factory for `loop.create_server`. At most `max_sessions` sessions
    at once, each buffering a message of up to `data_size_limit`: that bounds memory."""

    def make() -> asyncio.Protocol:
        if len(handler.sessions) >= max_sessions:
            if not handler.full:
                log.warning("%d SMTP sessions are open: refusing more (421)", max_sessions)
                handler.full = True
            return _TooManySessions()
        handler.full = False
        session = ReportSMTP(
            handler,
            hostname=hostname,
            ident=IDENT,
            data_size_limit=data_size_limit,
            tls_context=tls_context,
            require_starttls=False,
            auth_required=False,
            auth_exclude_mechanism=["LOGIN", "PLAIN"],
            timeout=idle_timeout,
            max_session=max_session,
        )
        handler.sessions.add(session)  # counted at once, not when connection_made runs
        return session

    return make
