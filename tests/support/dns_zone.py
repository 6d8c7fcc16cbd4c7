"""A real DNS server on loopback (dnslib) answering from dicts, for DKIM and DNS tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from dnslib import AAAA, CNAME, MX, QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer


@dataclass
class Zone(BaseResolver):  # type: ignore[misc]
    """Records by lowercase name; a name with no record of any kind is NXDOMAIN, a name
    without the asked type gets an empty answer. CNAMEs are followed inside the zone."""

    txt: dict[str, list[list[bytes]]] = field(default_factory=dict)
    """name -> records, each a list of character-strings (a record split over strings)."""
    mx: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    a: dict[str, list[str]] = field(default_factory=dict)
    aaaa: dict[str, list[str]] = field(default_factory=dict)
    cname: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before each answer (a slow server)."""

    def _exists(self, name: str) -> bool:
        return any(name in table for table in (self.txt, self.mx, self.a, self.aaaa, self.cname))

    def _answer(self, reply: DNSRecord, name: str, qtype: int) -> None:
        if name in self.cname and qtype != QTYPE.CNAME:
            target = self.cname[name]
            reply.add_answer(RR(name, QTYPE.CNAME, rdata=CNAME(target), ttl=60))
            self._answer(reply, target.rstrip(".").lower(), qtype)
            return
        if qtype == QTYPE.TXT:
            for strings in self.txt.get(name, []):
                reply.add_answer(RR(name, QTYPE.TXT, rdata=TXT(strings), ttl=60))
        elif qtype == QTYPE.MX:
            for preference, host in self.mx.get(name, []):
                reply.add_answer(RR(name, QTYPE.MX, rdata=MX(host, preference), ttl=60))
        elif qtype == QTYPE.A:
            for address in self.a.get(name, []):
                reply.add_answer(RR(name, QTYPE.A, rdata=A(address), ttl=60))
        elif qtype == QTYPE.AAAA:
            for address in self.aaaa.get(name, []):
                reply.add_answer(RR(name, QTYPE.AAAA, rdata=AAAA(address), ttl=60))

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        time.sleep(self.delay)
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        if not self._exists(name):
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        self._answer(reply, name, request.q.qtype)
        return reply


@contextmanager
def serve_zone(zone: Zone) -> Iterator[int]:
    """Serve the zone over UDP on 127.0.0.1; yields the port."""
    server = DNSServer(
        zone,
        address="127.0.0.1",
        port=0,
        logger=DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data"),
    )
    server.start_thread()
    try:
        yield server.server.server_address[1]
    finally:
        server.stop()
        server.server.server_close()
