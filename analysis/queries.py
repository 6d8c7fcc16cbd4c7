"""Parameterised queries: the store -> pandas DataFrames, for policy domains and a window.

Every function opens the database read-only for one query and closes it (see
`analysis.reader`). Session counts and rates come from the policy summaries
(`total_*_session_count`); failure details only break failures down, because the details
of one policy may overlap (RFC 8460 §4).

The domain tables cover the policies whose `policy_domain` is the domain: `sts` and
`no-policy-found` entries. `tlsa` entries name an MX host as their policy domain and
describe the same sessions again, so they are left out of the domain's totals (the verdict
lists them separately, see `analysis.evidence`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pandas as pd

from analysis.reader import read_frame
from analysis.window import Window

# The policies of the given domains (?1) reported for days ?2..?3, tlsa left out.
_POLICIES = """
domain_policies AS (
    SELECT r.report_key, r.report_date AS day, r.submitter, r.organization_name,
           p.policy_index, p.policy_type, p.policy_domain, p.policy_mode, p.policy_id,
           p.total_successful_session_count AS successful,
           p.total_failure_session_count AS failed
    FROM policies p JOIN reports r USING (report_key)
    WHERE list_contains($domains::VARCHAR[], p.policy_domain)
      AND r.report_date BETWEEN $first AND $last
      AND p.policy_type <> 'tlsa'
)"""

_DETAILS = """
domain_details AS (
    SELECT d.*, f.result_type, f.result_category, f.sending_mta_ip,
           f.receiving_mx_hostname, f.receiving_ip, f.failure_reason_code,
           f.failed_session_count
    FROM domain_policies d JOIN failure_details f USING (report_key, policy_index)
)"""

_SENDERS = """
sender_totals AS (
    SELECT policy_domain, submitter,
           any_value(organization_name ORDER BY day DESC) AS organization_name,
           sum(successful)::BIGINT AS successful, sum(failed)::BIGINT AS failed
    FROM domain_policies GROUP BY ALL
)"""


def _params(domains: Sequence[str], window: Window) -> dict[str, object]:
    return {
        "domains": [d.lower().rstrip(".") for d in domains],
        "first": window.first,
        "last": window.last,
    }


def _query(data_dir: Path, sql: str, domains: Sequence[str], window: Window) -> pd.DataFrame:
    frame = read_frame(data_dir, sql, _params(domains, window))
    for column in ("day", "first_day", "last_day", "week_start"):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column]).dt.date
    return frame


def policy_domains(data_dir: Path, window: Window) -> list[str]:
    """The policy domains (not TLSA MX hosts) with reports in the window, busiest first."""
    frame = read_frame(
        data_dir,
        """
        SELECT p.policy_domain, sum(p.total_successful_session_count
                                    + p.total_failure_session_count) AS sessions
        FROM policies p JOIN reports r USING (report_key)
        WHERE r.report_date BETWEEN $first AND $last
          AND p.policy_type <> 'tlsa' AND p.policy_domain IS NOT NULL
        GROUP BY ALL ORDER BY sessions DESC, p.policy_domain
        """,
        {"first": window.first, "last": window.last},
    )
    return [str(d) for d in frame["policy_domain"]]


def sessions_per_day(data_dir: Path, domains: Sequence[str], window: Window) -> pd.DataFrame:
    """policy_domain, day, successful, failed, failure_rate, reports, senders."""
    sql = f"""
    WITH {_POLICIES}
    SELECT policy_domain, day,
           sum(successful)::BIGINT AS successful, sum(failed)::BIGINT AS failed,
           sum(failed) / nullif(sum(successful + failed), 0) AS failure_rate,
           count(DISTINCT report_key) AS reports, count(DISTINCT submitter) AS senders
    FROM domain_policies GROUP BY ALL ORDER BY policy_domain, day
    """
    return _query(data_dir, sql, domains, window)


def sessions_per_week(data_dir: Path, domains: Sequence[str], window: Window) -> pd.DataFrame:
    """policy_domain, week (`2026-W48`), week_start, successful, failed, success_rate,
    failure_rate, reports, senders."""
    sql = f"""
    WITH {_POLICIES}
    SELECT policy_domain, strftime(day, '%G-W%V') AS week,
           min(day - (isodow(day) - 1)::INTEGER) AS week_start,
           sum(successful)::BIGINT AS successful, sum(failed)::BIGINT AS failed,
           sum(successful) / nullif(sum(successful + failed), 0) AS success_rate,
           sum(failed) / nullif(sum(successful + failed), 0) AS failure_rate,
           count(DISTINCT report_key) AS reports, count(DISTINCT submitter) AS senders
    FROM domain_policies GROUP BY ALL ORDER BY policy_domain, week
    """
    return _query(data_dir, sql, domains, window)


def sender_rates(data_dir: Path, domains: Sequence[str], window: Window) -> pd.DataFrame:
    """Per sender: submitter, organization_name, reports, days, successful, failed,
    failure_rate; most failed sessions first."""
    sql = f"""
    WITH {_POLICIES}
    SELECT submitter, any_value(organization_name ORDER BY day DESC) AS organization_name,
           count(DISTINCT report_key) AS reports, count(DISTINCT day) AS days,
           sum(successful)::BIGINT AS successful, sum(failed)::BIGINT AS failed,
           sum(failed) / nullif(sum(successful + failed), 0) AS failure_rate
    FROM domain_policies GROUP BY ALL
    ORDER BY failed DESC, successful DESC, submitter
    """
    return _query(data_dir, sql, domains, window)


def failures_by_sender(data_dir: Path, domains: Sequence[str], window: Window) -> pd.DataFrame:
    """Failed sessions by sending organization and result type: submitter,
    organization_name, result_type, result_category, sessions, plus the sender's summary
    totals (sender_successful, sender_failed) for rates."""
    sql = f"""
    WITH {_POLICIES}, {_DETAILS}, {_SENDERS}
    SELECT d.submitter, s.organization_name, d.result_type,
           any_value(d.result_category) AS result_category,
           sum(d.failed_session_count)::BIGINT AS sessions,
           any_value(s.successful) AS sender_successful,
           any_value(s.failed) AS sender_failed
    FROM domain_details d JOIN sender_totals s USING (policy_domain, submitter)
    GROUP BY d.submitter, s.organization_name, d.result_type
    ORDER BY sessions DESC, d.submitter, d.result_type
    """
    return _query(data_dir, sql, domains, window)


def failures_by_sending_mta(
    data_dir: Path, domains: Sequence[str], window: Window, *, limit: int = 30
) -> pd.DataFrame:
    """Failed sessions by sending MTA IP and result type for the `limit` IPs with the most
    failures: sending_mta_ip ('(not reported)' when missing), organization_name,
    result_type, sessions."""
    sql = f"""
    WITH {_POLICIES}, {_DETAILS},
    per_ip AS (
        SELECT coalesce(sending_mta_ip, '(not reported)') AS sending_mta_ip,
               any_value(organization_name) AS organization_name,
               result_type, sum(failed_session_count)::BIGINT AS sessions
        FROM domain_details GROUP BY ALL
    ),
    top AS (
        SELECT sending_mta_ip, sum(sessions) AS ip_sessions FROM per_ip
        GROUP BY ALL ORDER BY ip_sessions DESC, sending_mta_ip LIMIT {int(limit)}
    )
    SELECT p.* FROM per_ip p JOIN top USING (sending_mta_ip)
    ORDER BY top.ip_sessions DESC, p.sending_mta_ip, p.sessions DESC
    """
    return _query(data_dir, sql, domains, window)


def failures_by_mx(data_dir: Path, domains: Sequence[str], window: Window) -> pd.DataFrame:
    """Failed sessions by receiving MX: receiving_mx_hostname and receiving_ip
    ('(not reported)' when missing), result_type, sessions, senders (how many
    sending organizations failed there)."""
    sql = f"""
    WITH {_POLICIES}, {_DETAILS}
    SELECT coalesce(receiving_mx_hostname, '(not reported)') AS receiving_mx_hostname,
           coalesce(receiving_ip, '(not reported)') AS receiving_ip,
           result_type, sum(failed_session_count)::BIGINT AS sessions,
           count(DISTINCT submitter) AS senders
    FROM domain_details GROUP BY ALL
    ORDER BY sessions DESC, receiving_mx_hostname, receiving_ip, result_type
    """
    return _query(data_dir, sql, domains, window)


def new_result_types(
    data_dir: Path, domains: Sequence[str], window: Window, *, lookback_days: int = 28
) -> pd.DataFrame:
    """Result types reported in the window but in none of the `lookback_days` before it:
    result_type, sessions, senders."""
    wide = window.extended_back(lookback_days)
    sql = f"""
    WITH {_POLICIES}, {_DETAILS}
    SELECT result_type, sum(failed_session_count)::BIGINT AS sessions,
           count(DISTINCT submitter) AS senders
    FROM domain_details GROUP BY ALL
    HAVING min(day) >= $window_first
    ORDER BY sessions DESC, result_type
    """
    params = _params(domains, wide) | {"window_first": window.first}
    return read_frame(data_dir, sql, params)


def silent_senders(
    data_dir: Path, domains: Sequence[str], window: Window, *, lookback_days: int = 28
) -> pd.DataFrame:
    """Senders that reported in the `lookback_days` before the window but not in it:
    submitter, organization_name, last_day, reports."""
    wide = window.extended_back(lookback_days)
    sql = f"""
    WITH {_POLICIES}
    SELECT submitter, any_value(organization_name ORDER BY day DESC) AS organization_name,
           max(day) AS last_day, count(DISTINCT report_key) AS reports
    FROM domain_policies GROUP BY ALL
    HAVING max(day) < $window_first
    ORDER BY reports DESC, submitter
    """
    params = _params(domains, wide) | {"window_first": window.first}
    frame = read_frame(data_dir, sql, params)
    frame["last_day"] = pd.to_datetime(frame["last_day"]).dt.date
    return frame


def policies_applied(data_dir: Path, domains: Sequence[str], window: Window) -> pd.DataFrame:
    """Which policy each sender reports having applied, and when: submitter,
    organization_name, policy_type, policy_mode, policy_id, first_day, last_day, reports,
    sessions. A new policy_id or mode shows when a sender picked up a new policy."""
    sql = f"""
    WITH {_POLICIES}
    SELECT submitter, any_value(organization_name ORDER BY day DESC) AS organization_name,
           policy_type, policy_mode, policy_id,
           min(day) AS first_day, max(day) AS last_day,
           count(DISTINCT report_key) AS reports,
           sum(successful + failed)::BIGINT AS sessions
    FROM domain_policies GROUP BY submitter, policy_type, policy_mode, policy_id
    ORDER BY submitter, first_day, policy_type
    """
    return _query(data_dir, sql, domains, window)


def trend_window(window: Window, weeks: int = 8) -> Window:
    """The `weeks` weeks ending with `window` (for trend charts)."""
    return Window(window.last - timedelta(days=7 * weeks - 1), window.last)
