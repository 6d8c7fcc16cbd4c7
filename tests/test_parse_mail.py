"""Report emails: the MIME variants real senders and forwarders produce, and DKIM."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import pytest

from ingest.dkim_check import DkimChecker
from ingest.errors import InvalidReport, NoReportFound
from ingest.model import DkimResult
from ingest.parse_mail import parse_message
from tests.conftest import REAL, SPEC
from tests.support.dkim_keys import DkimKey
from tests.support.dns_zone import Zone, serve_zone
from tests.support.mail import forwarded, report_email

EXAMPLE = (SPEC / "mail-auth__rfc8460-example__rpt01.json").read_bytes()
SYS4 = (
    REAL / "issue-sys4-tlsrpt-reporter-51__sonne.floppy.org__no-policy-domain.json"
).read_bytes()


def test_google_email_json_report_id_wins_over_subject() -> None:
    parsed = parse_message(
        (REAL / "parsedmarc__google.com__google.com_smtp_tls_report.eml").read_bytes()
    )
    assert parsed.report.report_id == "2024-09-03T00:00:00Z_cardinalhealth.ca"
    assert parsed.mail is not None
    assert parsed.mail.tls_report_domain == "cardinalhealth.ca"
    assert parsed.mail.tls_report_submitter == "google.com"
    assert "2024.09.03T00.00.00Z+cardinalhealth.ca@google.com" in (parsed.mail.subject or "")
    (policy,) = parsed.report.policies
    assert policy.policy_type == "no-policy-found"
    assert (policy.total_successful_session_count, policy.total_failure_session_count) == (48, 0)


def test_mailru_email_without_closing_boundary() -> None:
    parsed = parse_message((REAL / "tlsrpt-rs__mail.ru__mail.ru.eml").read_bytes())
    assert parsed.report.report_id == "c96d67df-0440-57f7-6e96-c83824d0fdf2@mail.ru"
    assert parsed.mail is not None and parsed.mail.tls_report_submitter == "mail.ru"


def test_microsoft_email_html_first_part_content_description() -> None:
    parsed = parse_message((REAL / "tlsrpt-rs__microsoft.com__microsoft1.eml").read_bytes())
    assert parsed.report.report_id == "133708152202987951+krvtz.net"
    assert parsed.mail is not None
    assert parsed.mail.attachment_name is not None
    assert parsed.mail.attachment_name.endswith(".json.gz")


def test_forwarded_report_email() -> None:
    inner = report_email(EXAMPLE, domain="company-y.example", submitter="company-x.example")
    parsed = parse_message(forwarded(inner))
    assert parsed.report.organization_name == "Company-X"
    assert parsed.mail is not None
    assert parsed.mail.tls_report_domain == "company-y.example"


@pytest.mark.parametrize(
    ("media_type", "compress"),
    [("application/octet-stream", True), ("application/json", False), ("application/gzip", True)],
)
def test_generic_media_types_are_sniffed(media_type: str, compress: bool) -> None:
    parsed = parse_message(report_email(EXAMPLE, media_type=media_type, compress=compress))
    assert parsed.report.report_id == "5065427c-23d3-47ca-b6e0-946ea0e8c4be"
    assert f"generic_media_type:{media_type}" in parsed.anomalies


def test_plain_json_tlsrpt_part() -> None:
    parsed = parse_message(
        report_email(EXAMPLE, media_type="application/tlsrpt+json", compress=False)
    )
    assert parsed.json_bytes == EXAMPLE


def test_postfix_no_policy_domain_takes_the_header() -> None:
    parsed = parse_message(report_email(SYS4, domain="example.com", submitter="sonne.floppy.org"))
    (policy,) = parsed.report.policies
    assert policy.policy_domain == "example.com"
    assert "domain_inferred" in policy.anomalies
    assert "policy_domain_missing" not in policy.anomalies


def test_email_without_a_report() -> None:
    plain = b"From: a@example.org\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n"
    with pytest.raises(NoReportFound):
        parse_message(plain)


def test_tlsrpt_part_with_corrupt_gzip_is_invalid() -> None:
    broken = report_email(b"{}", compress=False, media_type="application/tlsrpt+gzip")
    with pytest.raises(InvalidReport):
        parse_message(broken)
    bomb = report_email(b" " * (60 * 1024 * 1024))
    with pytest.raises(InvalidReport, match="inflates past"):
        parse_message(bomb)


# DKIM, against a real DNS server on loopback


@pytest.fixture
def key() -> DkimKey:
    return DkimKey()


@pytest.fixture
def dns(key: DkimKey) -> Iterator[DkimChecker]:
    zone = Zone(txt={"sel._domainkey.reporter.example": [key.txt_strings()]})
    with serve_zone(zone) as port:
        yield DkimChecker(nameservers=("127.0.0.1",), port=port, timeout=2)


def _signed(key: DkimKey, domain: str = "reporter.example", **kw: bool) -> bytes:
    report = json.loads(EXAMPLE)
    report["contact-info"] = "tlsrpt@reporter.example"
    return key.sign(report_email(json.dumps(report).encode()), domain, **kw)


def test_dkim_pass_with_tlsrpt_service_type(key: DkimKey, dns: DkimChecker) -> None:
    raw = _signed(key)
    verdict = dns.verify(raw, parse_message(raw))
    assert verdict.result is DkimResult.PASS
    assert verdict.domain == "reporter.example"


def test_dkim_tampered_body_fails(key: DkimKey, dns: DkimChecker) -> None:
    raw = _signed(key).replace(b"aggregate TLS report", b"aggregate TLS rep0rt")
    assert dns.verify(raw, parse_message(raw)).result is DkimResult.FAIL


def test_dkim_unsigned_is_none(dns: DkimChecker) -> None:
    raw = report_email(EXAMPLE)
    assert dns.verify(raw, parse_message(raw)).result is DkimResult.NONE


def test_dkim_length_tag_is_refused(key: DkimKey, dns: DkimChecker) -> None:
    raw = _signed(key, length=True)
    assert b" l=" in raw or b";l=" in raw or b"l=" in raw.split(b"\r\n\r\n")[0]
    assert dns.verify(raw, parse_message(raw)).result is DkimResult.FAIL


def test_dkim_unaligned_domain_fails(key: DkimKey) -> None:
    zone = Zone(txt={"sel._domainkey.elsewhere.example": [key.txt_strings()]})
    raw = _signed(key, domain="elsewhere.example")
    with serve_zone(zone) as port:
        verdict = DkimChecker(("127.0.0.1",), port, 2).verify(raw, parse_message(raw))
    assert verdict.result is DkimResult.FAIL
    assert verdict.detail is not None and "not aligned" in verdict.detail


def test_dkim_key_lookup_failure_is_temperror(key: DkimKey) -> None:
    raw = _signed(key)
    with serve_zone(Zone()) as port:
        pass  # the server is gone: nothing answers on that port
    verdict = DkimChecker(("127.0.0.1",), port, 0.5).verify(raw, parse_message(raw))
    assert verdict.result is DkimResult.TEMPERROR


def test_gzip_attachment_bytes_are_kept() -> None:
    raw = report_email(EXAMPLE)
    assert parse_message(raw).json_bytes == EXAMPLE
    assert gzip.decompress(gzip.compress(EXAMPLE)) == EXAMPLE
