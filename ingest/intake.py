"""From the raw bytes of one delivery to an `Envelope` the store can write, or a refusal.

This is where the operator's rules apply: size caps, the policy domains we accept
reports for, and whether report emails must pass DKIM.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ingest.dkim_check import DkimChecker
from ingest.errors import ForeignDomain, Unauthenticated
from ingest.limits import DEFAULT_LIMITS, Limits
from ingest.model import Channel, DkimResult, Envelope, ParsedReport, Report
from ingest.parse_mail import parse_input, parse_message, parse_payload


@dataclass(frozen=True)
class IntakeRules:
    limits: Limits = DEFAULT_LIMITS
    domains: frozenset[str] = frozenset()
    """Policy domains we accept reports for (and their subdomains); empty: all."""
    require_dkim: bool = False
    dkim: DkimChecker | None = field(default=None, compare=False)
    """None: do not verify DKIM (the result is stored as NULL)."""


def _parse_https(raw: bytes, limits: Limits) -> ParsedReport:
    report, json_bytes = parse_payload(raw, limits)
    return ParsedReport(report=report, json_bytes=json_bytes)


_PARSERS: dict[Channel, Callable[[bytes, Limits], ParsedReport]] = {
    Channel.SMTP: parse_message,
    Channel.HTTPS: _parse_https,
    Channel.IMPORT: parse_input,
}


def intake(
    raw: bytes,
    channel: Channel,
    rules: IntakeRules,
    *,
    source: str | None = None,
    received_at: datetime | None = None,
) -> Envelope:
    """Parse and check one delivery. Raises `InvalidReport` (or a subclass) to refuse it."""
    parsed = _PARSERS[channel](raw, rules.limits)
    check_domains(parsed.report, rules.domains, parsed)
    dkim = None
    if parsed.mail is not None and rules.dkim is not None:
        dkim = rules.dkim.verify(raw, parsed)
        if rules.require_dkim and dkim.result is not DkimResult.PASS:
            detail = f": {dkim.detail}" if dkim.detail else ""
            raise Unauthenticated(f"DKIM {dkim.result.value}{detail}", "DKIM-Signature")
    return Envelope(
        parsed=parsed,
        raw=raw,
        channel=channel,
        received_at=received_at or datetime.now(UTC),
        source=source,
        dkim=dkim,
    )


def domain_matches(name: str, domains: frozenset[str]) -> bool:
    return name in domains or any(name.endswith("." + d) for d in domains)


def check_domains(report: Report, domains: frozenset[str], parsed: ParsedReport) -> None:
    """Accept a report when one of its policy domains (or the TLS-Report-Domain header)
    is a configured domain or below one (TLSA policy domains are MX hosts)."""
    if not domains:
        return
    names = [p.policy_domain for p in report.policies if p.policy_domain]
    if parsed.mail and parsed.mail.tls_report_domain:
        names.append(parsed.mail.tls_report_domain)
    if any(domain_matches(n, domains) for n in names):
        return
    shown = ", ".join(sorted(set(names))[:5]) or "none"
    raise ForeignDomain(f"report is about {shown}, not a configured domain", "policy-domain")
