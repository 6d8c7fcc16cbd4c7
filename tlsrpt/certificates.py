"""TLS for the listeners: the operator's certificate, or one made for local use.

Without `--tls-cert`/`--tls-key`, a private CA and a certificate for localhost, the
loopback addresses and this host's name are made once under DATA_DIR/tls/ (with trustme)
and reused. Clients that want to verify it trust DATA_DIR/tls/ca.pem; report senders
may ignore certificate errors on the rua host anyway (RFC 8460 §3).
"""

from __future__ import annotations

import datetime
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

from ingest.durable import write_durably

TLS_DIR = "tls"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert: Path
    key: Path
    ca: Path | None
    """The generated CA, when the certificate was made here."""

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def local_certificate(data_dir: Path, hostname: str) -> TlsFiles:
    """The certificate made for local use, created on first call."""
    folder = data_dir / TLS_DIR
    files = TlsFiles(folder / "cert.pem", folder / "key.pem", folder / "ca.pem")
    if files.cert.exists() and files.key.exists() and files.ca is not None and files.ca.exists():
        return files
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="tlsrpt-collector local CA")
    now = datetime.datetime.now(datetime.UTC)
    names = dict.fromkeys(["localhost", "127.0.0.1", "::1", hostname, socket.gethostname()])
    leaf = ca.issue_cert(
        *(n for n in names if n),
        common_name=hostname or "localhost",
        not_before=now - datetime.timedelta(days=1),
        not_after=now + datetime.timedelta(days=3650),
    )
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    write_durably(files.key, leaf.private_key_pem.bytes())
    files.key.chmod(0o600)
    write_durably(files.cert, chain)
    assert files.ca is not None
    write_durably(files.ca, ca.cert_pem.bytes())
    return files
