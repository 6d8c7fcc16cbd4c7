"""Building report emails for tests."""

from __future__ import annotations

import gzip
from email.message import EmailMessage
from email.policy import SMTP


def report_email(
    report_json: bytes,
    *,
    domain: str = "example.com",
    submitter: str = "reporter.example",
    media_type: str = "application/tlsrpt+gzip",
    compress: bool = True,
    report_id: str = "r1@reporter.example",
) -> bytes:
    """A multipart/report; report-type=tlsrpt message as RFC 8460 §5.3 describes."""
    msg = EmailMessage()
    msg["From"] = f"tlsrpt@{submitter}"
    msg["To"] = f"tlsrpt@{domain}"
    msg["Subject"] = f"Report Domain: {domain} Submitter: {submitter} Report-ID: <{report_id}>"
    msg["TLS-Report-Domain"] = domain
    msg["TLS-Report-Submitter"] = submitter
    msg["Message-ID"] = f"<{report_id}>"
    msg.set_content("This is an aggregate TLS report.")
    payload = gzip.compress(report_json) if compress else report_json
    maintype, subtype = media_type.split("/")
    msg.add_attachment(
        payload,
        maintype=maintype,
        subtype=subtype,
        filename=f"{submitter}!{domain}!1!2!001.json{'.gz' if compress else ''}",
    )
    msg.replace_header("Content-Type", 'multipart/report; report-type="tlsrpt"')
    msg.set_boundary("==tlsrpt-test-boundary==")
    return msg.as_bytes(policy=SMTP)


def forwarded(inner: bytes) -> bytes:
    """The message forwarded as an attachment (message/rfc822) by a mailbox owner."""
    from email import message_from_bytes

    msg = EmailMessage()
    msg["From"] = "owner@example.com"
    msg["To"] = "tlsrpt@example.com"
    msg["Subject"] = "Fwd: TLS report"
    msg.set_content("Forwarding the report.")
    msg.add_attachment(message_from_bytes(inner))
    return msg.as_bytes(policy=SMTP)
