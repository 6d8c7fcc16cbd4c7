"""STARTTLS on an MX the way an MTA-STS sender checks it (RFC 8461 §4.2): the certificate
must be PKIX-trusted, unexpired and name the MX host (SNI = the MX name)."""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509

# OpenSSL verify codes mapped to the TLS-RPT result types (RFC 8460 §4.3).
_EXPIRED = 10
_HOST_MISMATCH = 62
_UNTRUSTED = {2, 18, 19, 20, 21, 27}


@dataclass(frozen=True)
class TlsProbe:
    """One address of one MX. `result_type` is the RFC 8460 name of the failure a sender
    would report (or `no-connection`), None when all is well."""

    host: str
    address: str
    result_type: str | None
    detail: str
    tls_version: str | None = None
    not_after: datetime | None = None
    names: tuple[str, ...] = ()

    def days_left(self, now: datetime) -> int | None:
        return None if self.not_after is None else (self.not_after - now).days


class _PinnedSMTP(smtplib.SMTP):
    """Connects to a given address while naming the MX host, so STARTTLS sends it as SNI
    and checks the certificate against it."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        self._address = address
        super().__init__(host, port, local_hostname=socket.gethostname(), timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self._address, port), timeout)


def probe_mx(
    host: str, address: str, *, context: ssl.SSLContext, port: int = 25, timeout: float = 30.0
) -> TlsProbe:
    """Connect, EHLO, STARTTLS with certificate verification, QUIT."""
    smtp: _PinnedSMTP | None = None
    try:
        smtp = _PinnedSMTP(host, address, port, timeout)
        smtp.ehlo()
        if not smtp.has_extn("starttls"):
            return TlsProbe(host, address, "starttls-not-supported", "EHLO lists no STARTTLS")
        smtp.starttls(context=context)
        tls = smtp.sock
        assert isinstance(tls, ssl.SSLSocket)
        version = tls.version()
        probe = _with_certificate(TlsProbe(host, address, None, "", version), tls)
        smtp.quit()
    except ssl.SSLCertVerificationError as exc:
        return _certificate_failure(host, address, exc, context, port, timeout)
    except smtplib.SMTPConnectError as exc:
        return TlsProbe(
            host, address, "no-connection", f"greeting {exc.smtp_code} {_text(exc.smtp_error)}"
        )
    except smtplib.SMTPResponseException as exc:
        return TlsProbe(
            host, address, "starttls-not-supported", f"{exc.smtp_code} {_text(exc.smtp_error)}"
        )
    except ssl.SSLError as exc:
        return TlsProbe(host, address, "validation-failure", f"TLS handshake failed: {exc}")
    except (OSError, smtplib.SMTPException) as exc:
        # smtplib reports a read timeout as SMTPServerDisconnected, the timeout as context
        if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
            return TlsProbe(host, address, "no-connection", f"no answer within {timeout:g} s")
        return TlsProbe(host, address, "no-connection", f"{type(exc).__name__}: {exc}")
    finally:
        if smtp is not None:
            smtp.close()
    return probe


def _certificate_failure(
    host: str,
    address: str,
    exc: ssl.SSLCertVerificationError,
    context: ssl.SSLContext,
    port: int,
    timeout: float,
) -> TlsProbe:
    code = exc.verify_code
    if code == _EXPIRED:
        result_type = "certificate-expired"
    elif code == _HOST_MISMATCH:
        result_type = "certificate-host-mismatch"
    elif code in _UNTRUSTED:
        result_type = "certificate-not-trusted"
    else:
        result_type = "validation-failure"
    failed = TlsProbe(host, address, result_type, str(exc.verify_message))
    return _look_again(failed, context, port, timeout)


def _look_again(failed: TlsProbe, context: ssl.SSLContext, port: int, timeout: float) -> TlsProbe:
    """Fetch the refused certificate without verifying it, to show its names and dates."""
    lenient = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    lenient.check_hostname = False
    lenient.verify_mode = ssl.CERT_NONE
    lenient.minimum_version = context.minimum_version
    smtp: _PinnedSMTP | None = None
    try:
        smtp = _PinnedSMTP(failed.host, failed.address, port, timeout)
        smtp.starttls(context=lenient)
        tls = smtp.sock
        assert isinstance(tls, ssl.SSLSocket)
        seen = _with_certificate(failed, tls)
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        return failed
    finally:
        if smtp is not None:
            smtp.close()
    return seen


def _with_certificate(probe: TlsProbe, tls: ssl.SSLSocket) -> TlsProbe:
    der = tls.getpeercert(binary_form=True)
    if not der:
        return probe
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = tuple(san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    return TlsProbe(
        probe.host,
        probe.address,
        probe.result_type,
        probe.detail,
        probe.tls_version or tls.version(),
        cert.not_valid_after_utc.astimezone(UTC),
        names,
    )


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
