"""A real MX on loopback: aiosmtpd offering STARTTLS, with the certificate chosen by the
name the client asks for (SNI), so one server plays several MX hosts."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

from aiosmtpd.controller import Controller


class _Refuse:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "554 this test MX takes no mail"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def sni_context(default: ssl.SSLContext, by_name: dict[str, ssl.SSLContext]) -> ssl.SSLContext:
    """`default`, switching to `by_name[server_name]` when the client names that host."""

    def choose(sock: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        chosen = by_name.get((server_name or "").lower())
        if chosen is not None:
            sock.context = chosen

    default.sni_callback = choose  # type: ignore[assignment]
    return default


@contextmanager
def serve_mx(tls: ssl.SSLContext | None) -> Iterator[int]:
    """SMTP on 127.0.0.1, with STARTTLS when `tls` is given; yields the port."""
    port = free_port()
    controller = Controller(
        _Refuse(),
        hostname="127.0.0.1",
        port=port,
        tls_context=tls,
        ident="test MX",
        auth_exclude_mechanism=["LOGIN", "PLAIN"],
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel does) and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@contextmanager
def silent_udp_port() -> Iterator[int]:
    """A UDP port that receives questions and never answers them."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        yield listener.getsockname()[1]
