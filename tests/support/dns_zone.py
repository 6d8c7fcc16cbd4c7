"""A real DNS server on loopback (dnslib) answering from a dict, for DKIM and DNS tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from dnslib import QTYPE, RCODE, RR, TXT, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer


@dataclass
class Zone(BaseResolver):  # type: ignore[misc]
    """TXT records by name; every other question gets NXDOMAIN."""

    txt: dict[str, list[list[bytes]]] = field(default_factory=dict)
    """name -> records, each a list of character-strings (a record split over strings)."""

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        records = self.txt.get(name)
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if request.q.qtype == QTYPE.TXT:
            for strings in records:
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(strings), ttl=60))
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
