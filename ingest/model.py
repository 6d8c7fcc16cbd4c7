"""The typed model of an RFC 8460 report, as the parser returns it.

Field names are the report's JSON keys in snake_case. Values the RFC does not know
(result types, policy types) are kept verbatim as strings; `ResultType` and `PolicyType`
name the registered ones.

The classes are frozen msgspec Structs: a bulk import builds several per report, and a
Struct is built about 20 times faster than a frozen dataclass. They hold no reference
cycles, so they are left out of the garbage collector (`gc=False`).
"""

from __future__ import annotations

import enum
from datetime import date, datetime

import msgspec


class PolicyType(enum.StrEnum):
    STS = "sts"
    TLSA = "tlsa"
    NO_POLICY_FOUND = "no-policy-found"


class PolicyMode(enum.StrEnum):
    """The `mode:` line of an MTA-STS policy string (RFC 8461 §3.2)."""

    ENFORCE = "enforce"
    TESTING = "testing"
    NONE = "none"


class ResultCategory(enum.StrEnum):
    NEGOTIATION = "negotiation"
    POLICY = "policy"
    UNKNOWN = "unknown"


class ResultType(enum.StrEnum):
    """The IANA "Result Types" registry of RFC 8460 §4.3."""

    STARTTLS_NOT_SUPPORTED = "starttls-not-supported"
    CERTIFICATE_HOST_MISMATCH = "certificate-host-mismatch"
    CERTIFICATE_EXPIRED = "certificate-expired"
    CERTIFICATE_NOT_TRUSTED = "certificate-not-trusted"
    VALIDATION_FAILURE = "validation-failure"
    TLSA_INVALID = "tlsa-invalid"
    DNSSEC_INVALID = "dnssec-invalid"
    DANE_REQUIRED = "dane-required"
    STS_POLICY_FETCH_ERROR = "sts-policy-fetch-error"
    STS_POLICY_INVALID = "sts-policy-invalid"
    STS_WEBPKI_INVALID = "sts-webpki-invalid"

    @property
    def category(self) -> ResultCategory:
        return _NEGOTIATION if self in _NEGOTIATION_TYPES else _POLICY


_NEGOTIATION = ResultCategory.NEGOTIATION
_POLICY = ResultCategory.POLICY
_NEGOTIATION_TYPES = frozenset(
    {
        ResultType.STARTTLS_NOT_SUPPORTED,
        ResultType.CERTIFICATE_HOST_MISMATCH,
        ResultType.CERTIFICATE_EXPIRED,
        ResultType.CERTIFICATE_NOT_TRUSTED,
        ResultType.VALIDATION_FAILURE,
    }
)
_RESULT_TYPES = {r.value: r for r in ResultType}


def result_category(result_type: str) -> ResultCategory:
    """The class of a result type; unregistered names are `unknown`."""
    known = _RESULT_TYPES.get(result_type)
    return known.category if known else ResultCategory.UNKNOWN


class DkimResult(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NONE = "none"
    TEMPERROR = "temperror"


class Channel(enum.StrEnum):
    SMTP = "smtp"
    HTTPS = "https"
    IMPORT = "import"


class FailureDetail(msgspec.Struct, frozen=True, gc=False):
    result_type: str
    failed_session_count: int
    sending_mta_ip: str | None = None
    receiving_mx_hostname: str | None = None
    receiving_mx_helo: str | None = None
    receiving_ip: str | None = None
    additional_information: str | None = None
    failure_reason_code: str | None = None

    @property
    def result_category(self) -> ResultCategory:
        return result_category(self.result_type)


class Policy(msgspec.Struct, frozen=True, gc=False):
    policy_type: str
    policy_domain: str | None
    policy_string: tuple[str, ...]
    mx_host: tuple[str, ...]
    total_successful_session_count: int
    total_failure_session_count: int
    failure_details: tuple[FailureDetail, ...]
    policy_mode: PolicyMode | None
    policy_id: str | None
    anomalies: tuple[str, ...] = ()


class Report(msgspec.Struct, frozen=True, gc=False):
    organization_name: str
    contact_info: str | None
    report_id: str
    start_datetime: datetime
    end_datetime: datetime
    policies: tuple[Policy, ...]
    anomalies: tuple[str, ...] = ()

    @property
    def report_date(self) -> date:
        """The UTC day the report covers: the date of its start (spec digest §6)."""
        return self.start_datetime.date()

    @property
    def submitter(self) -> str:
        """Who sent it, as far as the JSON tells: the contact-info domain, else the
        organization name. Both transports carry the same JSON, so a report that
        arrives by mail and by HTTPS gets the same value (the deduplication scope)."""
        if self.contact_info and "@" in self.contact_info:
            return self.contact_info.rsplit("@", 1)[1].strip().lower().rstrip(".")
        return self.organization_name.strip().lower()


class MailInfo(msgspec.Struct, frozen=True, gc=False):
    """What a report email tells beyond the report itself."""

    tls_report_domain: str | None
    tls_report_submitter: str | None
    subject: str | None
    message_id: str | None
    attachment_name: str | None


class ParsedReport(msgspec.Struct, frozen=True, gc=False):
    """The parser's result: the report, the JSON bytes it came from, and the mail it
    arrived in, if any."""

    report: Report
    json_bytes: bytes
    mail: MailInfo | None = None
    anomalies: tuple[str, ...] = ()

    @property
    def all_anomalies(self) -> tuple[str, ...]:
        per_policy = tuple(
            f"policies[{i}]:{a}" for i, p in enumerate(self.report.policies) for a in p.anomalies
        )
        return self.anomalies + self.report.anomalies + per_policy


class DkimVerdict(msgspec.Struct, frozen=True, gc=False):
    result: DkimResult
    domain: str | None = None
    """The d= of the signature that decided the result."""
    detail: str | None = None


class Envelope(msgspec.Struct, frozen=True, gc=False):
    """A parsed report with how it arrived: what the store writes."""

    parsed: ParsedReport
    raw: bytes
    channel: Channel
    received_at: datetime
    source: str | None = None
    dkim: DkimVerdict | None = None
