"""A real HTTPS server on loopback serving MTA-STS policy files, one response per Host."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

POLICY_PATH = "/.well-known/mta-sts.txt"


@dataclass(frozen=True)
class Page:
    body: bytes
    status: int = 200
    content_type: str = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    server: _Site

    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
        page = self.server.pages.get(host) if self.path == POLICY_PATH else None
        if page is None:
            page = Page(b"not found\n", status=404)
        self.send_response(page.status)
        self.send_header("Content-Type", page.content_type)
        self.send_header("Content-Length", str(len(page.body)))
        for name, value in page.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(page.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Site(ThreadingHTTPServer):
    daemon_threads = True
    pages: dict[str, Page]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that refuse our certificate or hang up are expected here


@contextmanager
def serve_policies(pages: dict[str, Page], tls: ssl.SSLContext) -> Iterator[int]:
    """Serve `pages` (Host name -> Page) over HTTPS on 127.0.0.1; yields the port."""
    server = _Site(("127.0.0.1", 0), _Handler)
    server.pages = pages
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
