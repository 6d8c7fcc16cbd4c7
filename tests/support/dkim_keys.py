"""Signing test report emails with a fresh DKIM key."""

from __future__ import annotations

import base64

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


class DkimKey:
    def __init__(self, service: str = "tlsrpt") -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.record = f"v=DKIM1; k=rsa; s={service}; p={base64.b64encode(public).decode()}"

    def txt_strings(self) -> list[bytes]:
        """The record split into 255-byte character-strings, as DNS carries it."""
        raw = self.record.encode()
        return [raw[i : i + 255] for i in range(0, len(raw), 255)]

    def sign(
        self, message: bytes, domain: str, selector: str = "sel", length: bool = False
    ) -> bytes:
        headers = [b"from", b"to", b"subject", b"tls-report-domain", b"tls-report-submitter"]
        signature = dkim.sign(
            message,
            selector.encode(),
            domain.encode(),
            self.private_pem,
            include_headers=headers,
            length=length,
        )
        return bytes(signature) + message
