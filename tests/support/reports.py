"""Build TLS report JSON for given senders, days and failures, and import it into a real
store (through `ingest.importer.import_inputs`, as `tlsrpt import` does)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ingest.importer import import_inputs
from ingest.intake import IntakeRules
from ingest.sources import find_inputs

DOMAIN = "example.com"
MX_IPS = {"mx1.example.com": "192.0.2.25", "mx2.example.com": "192.0.2.26"}


@dataclass(frozen=True)
class Failure:
    """Failed sessions per day of one result type."""

    result_type: str
    sessions: int
    mx: str | None = "mx1.example.com"
    sending_ip: str | None = "198.51.100.7"
    reason_code: str | None = None


@dataclass(frozen=True)
class Sender:
    org: str
    contact_domain: str
    sessions_per_day: int
    failures: tuple[Failure, ...] = ()
    mode: str | None = "testing"
    """The `mode:` line of the sts policy it applied; None: no policy string at all."""
    policy_type: str = "sts"
    tlsa_failures: tuple[Failure, ...] = ()
    """Failures under a second, `tlsa` policy (policy domain: the MX host)."""
    days: Sequence[date] | None = None
    """Only these days (default: every day of the store)."""
    policy_lines: tuple[str, ...] = field(default=())
    summary_failed: int | None = None
    """The summary's failure count when it should differ from the details' sum (they
    may overlap, RFC 8460 §4)."""


def policy_lines(mode: str) -> list[str]:
    return [
        "version: STSv1",
        f"mode: {mode}",
        "mx: mx1.example.com",
        "mx: mx2.example.com",
        "max_age: 604800",
    ]


def _details(failures: Iterable[Failure]) -> list[dict[str, Any]]:
    details = []
    for f in failures:
        detail: dict[str, Any] = {"result-type": f.result_type, "failed-session-count": f.sessions}
        if f.sending_ip:
            detail["sending-mta-ip"] = f.sending_ip
        if f.mx:
            detail["receiving-mx-hostname"] = f.mx
            detail["receiving-ip"] = MX_IPS.get(f.mx, "192.0.2.99")
        if f.reason_code:
            detail["failure-reason-code"] = f.reason_code
        details.append(detail)
    return details


def report_json(sender: Sender, day: date, domain: str = DOMAIN) -> dict[str, Any]:
    failed = sum(f.sessions for f in sender.failures)
    if sender.summary_failed is not None:
        failed = sender.summary_failed
    policy: dict[str, Any] = {"policy-type": sender.policy_type, "policy-domain": domain}
    if sender.policy_type == "sts" and (sender.mode or sender.policy_lines):
        policy["policy-string"] = list(sender.policy_lines) or policy_lines(sender.mode or "")
        policy["mx-host"] = ["mx1.example.com", "mx2.example.com"]
    policies: list[dict[str, Any]] = [
        {
            "policy": policy,
            "summary": {
                "total-successful-session-count": sender.sessions_per_day - failed,
                "total-failure-session-count": failed,
            },
            "failure-details": _details(sender.failures),
        }
    ]
    for mx in sorted({f.mx for f in sender.tlsa_failures if f.mx}):
        mine = [f for f in sender.tlsa_failures if f.mx == mx]
        policies.append(
            {
                "policy": {
                    "policy-type": "tlsa",
                    "policy-domain": mx,
                    "policy-string": ["3 1 1 " + "AB" * 32],
                },
                "summary": {
                    "total-successful-session-count": sender.sessions_per_day,
                    "total-failure-session-count": sum(f.sessions for f in mine),
                },
                "failure-details": _details(mine),
            }
        )
    return {
        "organization-name": sender.org,
        "date-range": {
            "start-datetime": f"{day.isoformat()}T00:00:00Z",
            "end-datetime": f"{day.isoformat()}T23:59:59Z",
        },
        "contact-info": f"tlsrpt@{sender.contact_domain}",
        "report-id": f"{day.isoformat()}_{domain}_{sender.contact_domain}",
        "policies": policies,
    }


def days_back(last: date, count: int) -> list[date]:
    """`count` days ending with `last`."""
    return [last - timedelta(days=i) for i in range(count - 1, -1, -1)]


def write_reports(
    folder: Path, senders: Iterable[Sender], days: Iterable[date], domain: str = DOMAIN
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    all_days = list(days)
    for sender in senders:
        for day in sender.days if sender.days is not None else all_days:
            path = folder / f"{sender.contact_domain}!{domain}!{day.isoformat()}.json.gz"
            path.write_bytes(gzip.compress(json.dumps(report_json(sender, day, domain)).encode()))
            written.append(path)
    return written


def build_store(
    data_dir: Path,
    senders: Iterable[Sender],
    days: Iterable[date],
    domain: str = DOMAIN,
) -> int:
    """Write the reports beside `data_dir` and import them; returns how many were stored."""
    folder = data_dir.parent / f"reports-{domain}"
    paths = write_reports(folder, senders, days, domain)
    summary = import_inputs(find_inputs(paths), data_dir, IntakeRules())
    assert summary.rejected == 0, summary.as_dict()
    return summary.imported
