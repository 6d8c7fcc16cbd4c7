"""The JSON parser on the RFC example, real senders' reports and malformed input."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pytest

from ingest.errors import InvalidReport, TooLarge
from ingest.limits import Limits
from ingest.model import PolicyMode, ResultCategory
from ingest.parse_json import parse_report
from ingest.parse_mail import parse_input, parse_payload
from tests.conftest import REAL, SPEC

APPENDIX_B = (SPEC / "mail-auth__rfc8460-example__rpt01.json").read_bytes()


def test_rfc8460_appendix_b_field_exact() -> None:
    report = parse_report(APPENDIX_B)
    assert report.organization_name == "Company-X"
    assert report.report_id == "5065427c-23d3-47ca-b6e0-946ea0e8c4be"
    assert report.contact_info == "sts-reporting@company-x.example"
    assert report.submitter == "company-x.example"
    assert report.start_datetime == datetime(2016, 4, 1, tzinfo=UTC)
    assert report.end_datetime == datetime(2016, 4, 1, 23, 59, 59, tzinfo=UTC)
    (policy,) = report.policies
    assert policy.policy_type == "sts"
    assert policy.policy_domain == "company-y.example"
    assert policy.mx_host == ("*.mail.company-y.example",)
    assert policy.policy_mode is PolicyMode.TESTING
    assert policy.total_successful_session_count == 5326
    assert policy.total_failure_session_count == 303
    assert policy.anomalies == ()
    expired, starttls, validation = policy.failure_details
    assert (expired.result_type, expired.failed_session_count) == ("certificate-expired", 100)
    assert expired.sending_mta_ip == "2001:db8:abcd:12::1"  # RFC 5952 form
    assert expired.receiving_ip is None
    assert starttls.additional_information == (
        "https://reports.company-x.example/report_info ? id = 5065427 c - 23 d3# "
        "StarttlsNotSupported "
    )
    assert starttls.receiving_ip == "203.0.113.56"
    assert starttls.result_category is ResultCategory.NEGOTIATION
    assert validation.failure_reason_code == "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"
    assert validation.receiving_mx_hostname == "mx-backup.mail.company-y.example"
    assert sum(d.failed_session_count for d in policy.failure_details) == 303


def test_rfc_example_with_mx_host_as_string() -> None:
    report = parse_report((SPEC / "parsedmarc__rfc8460-example__rfc8460.json").read_bytes())
    (policy,) = report.policies
    assert policy.mx_host == ("*.mail.company-y.example",)
    assert "policy.mx-host:not_a_list" in policy.anomalies


def test_google_no_policy_found() -> None:
    name = "parsedmarc__google.com!cardinalhealth.ca!1725321600!1725407999!001.json.gz"
    report, _ = parse_payload((REAL / name).read_bytes())
    assert report.organization_name == "Google Inc."
    assert report.report_id == "2024-09-03T00:00:00Z_cardinalhealth.ca"
    assert report.report_date.isoformat() == "2024-09-03"
    (policy,) = report.policies
    assert policy.policy_type == "no-policy-found"
    assert policy.policy_domain == "cardinalhealth.ca"
    assert policy.policy_string == ()
    assert policy.policy_mode is None
    assert policy.policy_id is None
    assert (policy.total_successful_session_count, policy.total_failure_session_count) == (48, 0)
    assert policy.failure_details == ()


def test_google_policy_string_with_carriage_returns() -> None:
    name = "internet-message-parser__google.com!digilicious.com!1641686400!1641772799!001.json.gz"
    report, _ = parse_payload((REAL / name).read_bytes())
    (policy,) = report.policies
    assert all(not line.endswith("\r") for line in policy.policy_string)
    assert "policy_string_whitespace" in policy.anomalies
    assert policy.policy_mode is not None


def test_microsoft_tlsa_json_in_string_and_sts() -> None:
    name = "tlsrpt-rs__microsoft.com!krvtz.net!1726185600!1726271999!133708152202987951.json.gz"
    report, _ = parse_payload((REAL / name).read_bytes())
    assert report.submitter == "microsoft.com"
    sts, tlsa = report.policies
    assert sts.policy_type == "sts" and sts.policy_mode is PolicyMode.ENFORCE
    assert sts.mx_host == ()
    assert tlsa.policy_type == "tlsa"
    assert len(tlsa.policy_string) == 13
    assert tlsa.policy_string[0].startswith("2 1 1 0254908")
    assert "policy_string_json_encoded" in tlsa.anomalies
    assert tlsa.policy_mode is None


def test_microsoft_without_time_zone_is_utc_and_flagged() -> None:
    name = "mox__microsoft.com!test.xmox.nl!1673308800!1673395199!133198585438131172.json.gz"
    report, _ = parse_payload((REAL / name).read_bytes())
    assert report.start_datetime == datetime(2023, 1, 10, tzinfo=UTC)
    assert "date-range.start-datetime:no_time_zone" in report.anomalies


def test_microsoft_fetch_error_without_addresses() -> None:
    data = REAL / "issue-cry-inc-dmarc-report-viewer-57__microsoft.com__no-sending-mta-ip.json"
    report = parse_report(data.read_bytes())
    (policy,) = report.policies
    assert policy.policy_mode is None and policy.policy_string == ()
    (detail,) = policy.failure_details
    assert detail.result_type == "sts-policy-fetch-error"
    assert detail.result_category is ResultCategory.POLICY
    assert detail.sending_mta_ip is None and detail.receiving_mx_hostname is None


def test_mailru_details_exceed_total_next_midnight() -> None:
    report = parse_report((REAL / "parsedmarc__mail.ru__mail.ru.json").read_bytes())
    assert report.report_date.isoformat() == "2024-02-22"
    assert report.end_datetime == datetime(2024, 2, 23, tzinfo=UTC)
    (policy,) = report.policies
    assert policy.total_failure_session_count == 1
    assert [d.failure_reason_code for d in policy.failure_details] == [
        "bad https response code: 404",
        "bad https response code: 500",
    ]
    assert all(d.sending_mta_ip is None for d in policy.failure_details)
    assert "details_exceed_total" in policy.anomalies


def test_postfix_sys4_no_policy_domain() -> None:
    data = REAL / "issue-sys4-tlsrpt-reporter-51__sonne.floppy.org__no-policy-domain.json"
    report = parse_report(data.read_bytes())
    assert report.organization_name == "sonne.floppy.org"
    assert report.report_id == "2025-09-20T00:00:00Z_idx1_mpi-klsb.mpg.de"
    (policy,) = report.policies
    assert policy.policy_type == "no-policy-found"
    assert policy.policy_domain is None
    assert "policy_domain_missing" in policy.anomalies
    assert policy.failure_details == ()


def test_contact_info_null_and_empty_fields() -> None:
    data = REAL / "issue-cry-inc-dmarc-report-viewer-71__refluxstop.de__contact-info-null.json"
    report = parse_report(data.read_bytes())
    assert report.contact_info is None
    assert report.submitter == report.organization_name.lower()
    empty = parse_report(
        (REAL / "parsedmarc__unknown-sender__empty_failure_detail_fields.json").read_bytes()
    )
    (detail,) = empty.policies[0].failure_details
    assert detail.sending_mta_ip is None
    assert detail.receiving_mx_hostname is None
    assert detail.additional_information is None
    assert detail.failure_reason_code == "no-policy-served"


def _report(**changes: object) -> dict[str, object]:
    doc: dict[str, object] = json.loads(APPENDIX_B)
    doc.update(changes)
    return doc


def _bytes(doc: object) -> bytes:
    return json.dumps(doc).encode()


def test_offset_datetime_normalised_and_unknown_values_kept() -> None:
    doc = _report(**{"date-range": {"start-datetime": "2024-09-03T02:00:00+02:00",
                                    "end-datetime": "2024-09-04T01:59:59+02:00"}})  # fmt: skip
    policies = doc["policies"]
    assert isinstance(policies, list)
    policies[0]["failure-details"][0]["result-type"] = "foo-bar"
    policies[0]["policy"]["policy-type"] = "future-type"
    policies[0]["policy"]["x-extension"] = {"nested": [1, 2]}
    report = parse_report(_bytes(doc))
    assert report.start_datetime == datetime(2024, 9, 3, tzinfo=UTC)
    assert report.report_date.isoformat() == "2024-09-03"
    policy = report.policies[0]
    assert policy.policy_type == "future-type"
    assert policy.failure_details[0].result_type == "foo-bar"
    assert policy.failure_details[0].result_category is ResultCategory.UNKNOWN
    assert "unknown_result_type:foo-bar" in policy.anomalies
    assert "unknown_policy_type:future-type" in policy.anomalies


def test_first_mode_line_wins() -> None:
    doc = _report()
    policies = doc["policies"]
    assert isinstance(policies, list)
    policies[0]["policy"]["policy-string"] = ["version: STSv1", "mode: enforce", "mode: testing"]
    assert parse_report(_bytes(doc)).policies[0].policy_mode is PolicyMode.ENFORCE


def _with_count(value: object) -> bytes:
    doc = _report()
    policies = doc["policies"]
    assert isinstance(policies, list)
    policies[0]["failure-details"][0]["failed-session-count"] = value
    return _bytes(doc)


MALFORMED = {
    "truncated": (APPENDIX_B[: len(APPENDIX_B) // 2], "not JSON"),
    "not json": (b"hello", "not JSON"),
    "invalid utf-8": (APPENDIX_B.replace(b"Company-X", b"Company-\xff"), "invalid UTF-8"),
    "policies object": (_bytes(_report(policies={"a": 1})), "policies: must be a list"),
    "policies missing": (
        _bytes({k: v for k, v in _report().items() if k != "policies"}),
        "policies: missing",
    ),
    "no report-id": (
        _bytes({k: v for k, v in _report().items() if k != "report-id"}),
        "report-id: missing",
    ),
    "empty organization": (_bytes(_report(**{"organization-name": " "})), "organization-name"),
    "negative count": (_with_count(-5), "negative count -5"),
    "string count": (_with_count("abc"), "expected a non-negative integer, got a string"),
    "float count": (_with_count(1.5), "expected a non-negative integer, got float"),
    "bool count": (_with_count(True), "expected a non-negative integer"),
    "duplicate member": (
        b'{"report-id": "a", "report-id": "b"}',
        "duplicate member name 'report-id'",
    ),
    "top-level list": (b"[1, 2]", "expected an object, got a list"),
    "NaN": (APPENDIX_B.replace(b"5326", b"NaN"), "NaN is not valid JSON"),
    "bad date": (
        _bytes(_report(**{"date-range": {"start-datetime": "yesterday", "end-datetime": "x"}})),
        "not an RFC 3339 date-time",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_reports_are_refused_with_the_reason(case: str) -> None:
    data, reason = MALFORMED[case]
    with pytest.raises(InvalidReport) as caught:
        parse_input(data)
    assert reason in str(caught.value)


def test_failed_session_count_error_names_the_field() -> None:
    with pytest.raises(InvalidReport) as caught:
        parse_report(_with_count(-1))
    assert caught.value.field == "policies[0].failure-details[0].failed-session-count"


def test_caps_on_strings_and_arrays() -> None:
    long_name = _bytes(_report(**{"organization-name": "x" * 20_000}))
    with pytest.raises(InvalidReport, match="longer than"):
        parse_report(long_name)
    with pytest.raises(InvalidReport, match="more than 1 policies"):
        parse_report(_bytes(_report(policies=[{}, {}])), Limits(max_policies=1))


def test_gzip_bomb_and_truncated_gzip() -> None:
    bomb = gzip.compress(b" " * (60 * 1024 * 1024))
    assert len(bomb) < 200_000
    with pytest.raises(TooLarge):
        parse_input(bomb)
    with pytest.raises(InvalidReport, match="truncated gzip"):
        parse_input(gzip.compress(APPENDIX_B)[:-20])
    corrupt = bytearray(gzip.compress(APPENDIX_B))
    corrupt[-6] ^= 0xFF  # break the CRC
    with pytest.raises(InvalidReport, match="corrupt gzip"):
        parse_input(bytes(corrupt))


def test_multi_member_gzip() -> None:
    half = len(APPENDIX_B) // 2
    data = gzip.compress(APPENDIX_B[:half]) + gzip.compress(APPENDIX_B[half:])
    assert parse_input(data).report.report_id == "5065427c-23d3-47ca-b6e0-946ea0e8c4be"
