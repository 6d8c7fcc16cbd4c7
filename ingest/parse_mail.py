"""Report emails (RFC 8460 §5.3, RFC 6522) and the sniffing entry point `parse_input`.

Pure: bytes in, `ParsedReport` out. DKIM needs DNS and lives in `ingest.dkim_check`.
"""

from __future__ import annotations

import email
import email.message
from collections.abc import Iterator
from email import policy as email_policy

import msgspec

from ingest.decode import gunzip, is_gzip
from ingest.errors import InvalidReport, NoReportFound, TooLarge
from ingest.limits import DEFAULT_LIMITS, Limits
from ingest.model import MailInfo, ParsedReport, PolicyType, Report
from ingest.parse_json import normalise_host, parse_report

TLSRPT_TYPES = ("application/tlsrpt+gzip", "application/tlsrpt+json")
# Generic media types real senders and forwarders use for the attachment.
GENERIC_TYPES = frozenset(
    {
        "application/gzip",
        "application/x-gzip",
        "application/x-gzip-compressed",
        "application/octet-stream",
        "application/json",
        "text/json",
        "application/x-json",
    }
)
_REPORT_SUFFIXES = (".json", ".json.gz", ".gz")


def parse_payload(data: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[Report, bytes]:
    """A report as sent over HTTPS or saved to a file: gzip or plain JSON.

    Returns the report and the JSON bytes it was parsed from.
    """
    if len(data) > limits.max_compressed:
        raise TooLarge(f"input larger than {limits.max_compressed} bytes")
    json_bytes = gunzip(data, limits.max_decompressed) if is_gzip(data) else data
    return parse_report(json_bytes, limits), json_bytes


def looks_like_json(data: bytes) -> bool:
    return data.lstrip(b" \t\r\n")[:1] in (b"{", b"[")


def parse_input(data: bytes, limits: Limits = DEFAULT_LIMITS) -> ParsedReport:
    """Any input: gzip or JSON by its first bytes, else an email."""
    if is_gzip(data) or looks_like_json(data):
        report, json_bytes = parse_payload(data, limits)
        return ParsedReport(report=report, json_bytes=json_bytes)
    return parse_message(data, limits)


def parse_message(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> ParsedReport:
    """Find the TLS report in an email and parse it.

    Walks every MIME part, forwarded `message/rfc822` included; picks parts by media
    type (`application/tlsrpt+gzip`/`+json` first), then by magic bytes.
    """
    if len(raw) > limits.max_compressed:
        raise TooLarge(f"message larger than {limits.max_compressed} bytes")
    msg = email.message_from_bytes(raw, policy=email_policy.compat32)
    if not msg.keys():
        raise NoReportFound("not JSON, gzip or an email message")

    typed: list[tuple[email.message.Message, email.message.Message]] = []
    generic: list[tuple[email.message.Message, email.message.Message]] = []
    for count, (part, owner) in enumerate(_leaves(msg, msg)):
        if count >= limits.max_mime_parts:
            raise TooLarge(f"more than {limits.max_mime_parts} MIME parts")
        ctype = part.get_content_type()
        if ctype in TLSRPT_TYPES:
            typed.append((part, owner))
        elif ctype in GENERIC_TYPES or _has_report_filename(part):
            generic.append((part, owner))

    for part, owner in typed:
        return _from_part(part, owner, limits, strict=True)  # the first typed part decides
    for part, owner in generic:
        try:
            return _from_part(part, owner, limits, strict=False)
        except NoReportFound:
            continue
    raise NoReportFound("the message carries no TLS report (no application/tlsrpt part)")


def _leaves(
    msg: email.message.Message, owner: email.message.Message
) -> Iterator[tuple[email.message.Message, email.message.Message]]:
    """Non-multipart parts, each with the (possibly forwarded) message that holds it."""
    if not msg.is_multipart():
        yield msg, owner
        return
    forwarded = msg.get_content_type() == "message/rfc822"
    for sub in msg.get_payload():
        if isinstance(sub, email.message.Message):
            yield from _leaves(sub, _owner_of(sub, owner) if forwarded else owner)


def _owner_of(part: email.message.Message, owner: email.message.Message) -> email.message.Message:
    """A forwarded message that carries TLS-Report headers owns its parts."""
    return part if part.get("TLS-Report-Domain") or part.get("TLS-Report-Submitter") else owner


def _has_report_filename(part: email.message.Message) -> bool:
    name = (part.get_filename() or part.get("Content-Description") or "").lower()
    return name.endswith(_REPORT_SUFFIXES)


def _from_part(
    part: email.message.Message, owner: email.message.Message, limits: Limits, *, strict: bool
) -> ParsedReport:
    body = part.get_payload(decode=True)
    if not isinstance(body, bytes) or not body:
        if strict:
            raise InvalidReport("the report attachment is empty", "attachment")
        raise NoReportFound("empty attachment")
    if not strict and not (is_gzip(body) or looks_like_json(body)):
        raise NoReportFound("attachment is neither gzip nor JSON")
    anomalies: tuple[str, ...] = ()
    ctype = part.get_content_type()
    if not strict:
        anomalies = (f"generic_media_type:{ctype}",)
    elif is_gzip(body) != (ctype == "application/tlsrpt+gzip"):
        anomalies = (f"media_type_mismatch:{ctype}",)
    report, json_bytes = parse_payload(body, limits)
    info = _mail_info(owner, part)
    report = _infer_policy_domain(report, info.tls_report_domain)
    return ParsedReport(report=report, json_bytes=json_bytes, mail=info, anomalies=anomalies)


def _header(msg: email.message.Message, name: str) -> str | None:
    value = msg.get(name)
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text[:1024] or None


def _mail_info(owner: email.message.Message, part: email.message.Message) -> MailInfo:
    domain = _header(owner, "TLS-Report-Domain")
    submitter = _header(owner, "TLS-Report-Submitter")
    return MailInfo(
        tls_report_domain=normalise_host(domain) if domain else None,
        tls_report_submitter=normalise_host(submitter) if submitter else None,
        subject=_header(owner, "Subject"),
        message_id=_header(owner, "Message-ID"),
        attachment_name=(part.get_filename() or _header(part, "Content-Description")),
    )


def _infer_policy_domain(report: Report, header_domain: str | None) -> Report:
    """A no-policy-found policy without policy-domain (Postfix/sys4 before 2025) takes
    the TLS-Report-Domain header."""
    if not header_domain:
        return report
    policies = tuple(
        msgspec.structs.replace(
            p,
            policy_domain=header_domain,
            anomalies=(
                *(a for a in p.anomalies if a != "policy_domain_missing"),
                "domain_inferred",
            ),
        )
        if p.policy_domain is None and p.policy_type == PolicyType.NO_POLICY_FOUND
        else p
        for p in report.policies
    )
    return msgspec.structs.replace(report, policies=policies)
