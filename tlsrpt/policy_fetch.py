"""Fetching an MTA-STS policy the way a sender must (RFC 8461 §3.3): HTTPS with a
certificate valid for `mta-sts.DOMAIN`, status 200 only, no redirects, text/plain, within
a size and a time limit."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tlsrpt.sts_policy import POLICY_PATH

MAX_POLICY_BYTES = 64 * 1024


class FetchFailed(Exception):
    """The policy could not be fetched; `webpki` marks certificate failures."""

    def __init__(self, message: str, *, webpki: bool = False) -> None:
        super().__init__(message)
        self.webpki = webpki


@dataclass(frozen=True)
class FetchedPolicy:
    url: str
    address: str
    text: str


class _PinnedHTTPS(http.client.HTTPConnection):
    """HTTPS to a given address, naming `host` for SNI, the certificate check and the
    Host header (the address comes from our own DNS lookup)."""

    default_port = 443

    def __init__(
        self, host: str, address: str, port: int, context: ssl.SSLContext, timeout: float
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address
        self._tls_context = context
        self.tls_socket: ssl.SSLSocket | None = None

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        try:
            self.tls_socket = self._tls_context.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise
        self.sock = self.tls_socket


def fetch_policy(
    domain: str,
    addresses: Sequence[str],
    *,
    context: ssl.SSLContext,
    port: int = 443,
    timeout: float = 60.0,
) -> FetchedPolicy:
    """Try the addresses in turn until one answers; all of it within `timeout` seconds."""
    host = f"mta-sts.{domain}"
    if not addresses:
        raise FetchFailed(f"{host} has no A or AAAA record")
    deadline = time.monotonic() + timeout
    failure = FetchFailed(f"{host}: not tried")
    for address in addresses:
        try:
            return _fetch_one(host, address, port, context, deadline, timeout)
        except FetchFailed as exc:
            failure = exc
            if exc.webpki or time.monotonic() >= deadline:
                break
    raise failure


def _fetch_one(
    host: str, address: str, port: int, context: ssl.SSLContext, deadline: float, limit: float
) -> FetchedPolicy:
    url = f"https://{host}{'' if port == 443 else f':{port}'}{POLICY_PATH}"
    where = f"{url} (at {address})"
    conn = _PinnedHTTPS(host, address, port, context, max(deadline - time.monotonic(), 0.01))
    response: http.client.HTTPResponse | None = None
    try:
        conn.request("GET", POLICY_PATH, headers={"Accept": "text/plain", "Connection": "close"})
        response = conn.getresponse()
        if 300 <= response.status < 400:
            target = response.getheader("Location", "?")
            raise FetchFailed(
                f"{where}: HTTP {response.status} redirect to {target}; senders do not follow "
                "redirects"
            )
        if response.status != 200:
            raise FetchFailed(f"{where}: HTTP {response.status}; only 200 counts")
        media_type = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if media_type != "text/plain":
            raise FetchFailed(f"{where}: Content-Type is {media_type or 'missing'}, not text/plain")
        body = _read_body(conn, response, deadline, where)
    except ssl.SSLCertVerificationError as exc:
        raise FetchFailed(
            f"{where}: certificate not valid for {host}: {exc.verify_message}", webpki=True
        ) from exc
    except TimeoutError as exc:
        raise FetchFailed(f"{where}: no complete answer within {limit:g} s") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise FetchFailed(f"{where}: {type(exc).__name__}: {exc}") from exc
    finally:
        if response is not None:
            response.close()
        conn.close()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FetchFailed(f"{where}: the policy is not UTF-8 text") from exc
    return FetchedPolicy(url, address, text)


def _read_body(
    conn: _PinnedHTTPS, response: http.client.HTTPResponse, deadline: float, where: str
) -> bytes:
    length = response.getheader("Content-Length")
    if length and length.isdigit() and int(length) > MAX_POLICY_BYTES:
        raise FetchFailed(f"{where}: {length} bytes, over the {MAX_POLICY_BYTES} byte limit")
    body = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        if conn.tls_socket is not None:
            conn.tls_socket.settimeout(remaining)
        chunk = response.read1(MAX_POLICY_BYTES + 1 - len(body))
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > MAX_POLICY_BYTES:
            raise FetchFailed(f"{where}: more than the {MAX_POLICY_BYTES} byte limit")
