"""The evidence behind the enforce verdict: aggregates for one policy domain and window.

`collect_evidence` reads the store (one short read-only connection per query); the
dataclasses are plain values so that `analysis.verdict.decide` stays a pure function and
tests can build evidence by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.reader import read_frame
from analysis.window import Window

POLICY_ERRORS = frozenset({"sts-policy-fetch-error", "sts-webpki-invalid", "sts-policy-invalid"})
"""Result types meaning the sender could not get the MTA-STS policy."""


@dataclass(frozen=True, slots=True)
class SenderSessions:
    """One sender's `sts` sessions for the domain under one applied policy mode
    (`testing`, `enforce`, `none`, or None when its reports carry no policy string)."""

    submitter: str
    organization_name: str
    policy_mode: str | None
    days: int
    successful: int
    failed: int

    @property
    def sessions(self) -> int:
        return self.successful + self.failed


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Failed sessions of one sender, of one result type, at one receiving MX."""

    submitter: str
    organization_name: str
    policy_mode: str | None
    result_type: str
    receiving_mx_hostname: str | None
    receiving_ip: str | None
    sessions: int
    reason_codes: tuple[str, ...] = ()

    @property
    def mx(self) -> str:
        """The MX as people name it: hostname, else IP, else '(not reported)'."""
        return self.receiving_mx_hostname or self.receiving_ip or "(not reported)"


@dataclass(frozen=True, slots=True)
class Evidence:
    policy_domain: str
    window: Window
    days_with_reports: int
    """UTC days on which at least one sender reported `sts` sessions for the domain."""
    sts_sessions: tuple[SenderSessions, ...]
    sts_failures: tuple[FailureGroup, ...]
    tlsa_failures: tuple[FailureGroup, ...] = ()
    """Failures under DANE (`tlsa`) policies of the domain's MX hosts: reported apart,
    they say nothing about MTA-STS enforce."""
    no_policy_sessions: int = 0
    """Sessions of senders that found no policy (`no-policy-found`)."""


_STS_SESSIONS = """
SELECT r.submitter, any_value(r.organization_name ORDER BY r.report_date DESC) AS org,
       p.policy_mode, count(DISTINCT r.report_date) AS days,
       sum(p.total_successful_session_count)::BIGINT AS successful,
       sum(p.total_failure_session_count)::BIGINT AS failed
FROM policies p JOIN reports r USING (report_key)
WHERE p.policy_domain = $domain AND p.policy_type = 'sts'
  AND r.report_date BETWEEN $first AND $last
GROUP BY r.submitter, p.policy_mode
ORDER BY successful + failed DESC, r.submitter
"""

_STS_DAYS = """
SELECT count(DISTINCT r.report_date) AS days
FROM policies p JOIN reports r USING (report_key)
WHERE p.policy_domain = $domain AND p.policy_type = 'sts'
  AND r.report_date BETWEEN $first AND $last
"""

_FAILURES = """
SELECT r.submitter, any_value(r.organization_name ORDER BY r.report_date DESC) AS org,
       p.policy_mode, f.result_type, f.receiving_mx_hostname, f.receiving_ip,
       sum(f.failed_session_count)::BIGINT AS sessions,
       list_sort(list_distinct(list(f.failure_reason_code)))[1:5] AS reason_codes
FROM policies p JOIN reports r USING (report_key)
JOIN failure_details f USING (report_key, policy_index)
WHERE {where} AND r.report_date BETWEEN $first AND $last
GROUP BY r.submitter, p.policy_mode, f.result_type, f.receiving_mx_hostname, f.receiving_ip
ORDER BY sessions DESC, r.submitter, f.result_type
"""

_STS_WHERE = "p.policy_domain = $domain AND p.policy_type = 'sts'"
# TLSA policy domains are the MX hosts; Microsoft sends the recipient domain instead.
_TLSA_WHERE = """p.policy_type = 'tlsa' AND (
    p.policy_domain = $domain OR p.policy_domain LIKE '%.' || $domain
    OR r.report_key IN (SELECT report_key FROM policies WHERE policy_domain = $domain))"""

_NO_POLICY = """
SELECT coalesce(sum(p.total_successful_session_count + p.total_failure_session_count), 0)::BIGINT
       AS sessions
FROM policies p JOIN reports r USING (report_key)
WHERE p.policy_domain = $domain AND p.policy_type = 'no-policy-found'
  AND r.report_date BETWEEN $first AND $last
"""


def _text(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _codes(value: Any) -> tuple[str, ...]:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ()
    return tuple(str(c) for c in value if c is not None)


def _failures(frame: pd.DataFrame) -> tuple[FailureGroup, ...]:
    return tuple(
        FailureGroup(
            submitter=str(row.submitter),
            organization_name=str(row.org),
            policy_mode=_text(row.policy_mode),
            result_type=str(row.result_type),
            receiving_mx_hostname=_text(row.receiving_mx_hostname),
            receiving_ip=_text(row.receiving_ip),
            sessions=int(row.sessions),
            reason_codes=_codes(row.reason_codes),
        )
        for row in frame.itertuples()
    )


def collect_evidence(data_dir: Path, policy_domain: str, window: Window) -> Evidence:
    """Aggregate what the store holds about `policy_domain` over `window`."""
    domain = policy_domain.lower().rstrip(".")
    params = {"domain": domain, "first": window.first, "last": window.last}
    sessions = read_frame(data_dir, _STS_SESSIONS, params)
    days = read_frame(data_dir, _STS_DAYS, params)
    sts_failures = read_frame(data_dir, _FAILURES.format(where=_STS_WHERE), params)
    tlsa_failures = read_frame(data_dir, _FAILURES.format(where=_TLSA_WHERE), params)
    no_policy = read_frame(data_dir, _NO_POLICY, params)
    return Evidence(
        policy_domain=domain,
        window=window,
        days_with_reports=int(days["days"].iloc[0]),
        sts_sessions=tuple(
            SenderSessions(
                submitter=str(row.submitter),
                organization_name=str(row.org),
                policy_mode=_text(row.policy_mode),
                days=int(row.days),
                successful=int(row.successful),
                failed=int(row.failed),
            )
            for row in sessions.itertuples()
        ),
        sts_failures=_failures(sts_failures),
        tlsa_failures=_failures(tlsa_failures),
        no_policy_sessions=int(no_policy["sessions"].iloc[0]),
    )
