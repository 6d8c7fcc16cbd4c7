"""The store at a glance: per policy domain, what was received."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.reader import read_frame

SUMMARY_SQL = """
SELECT
    p.policy_domain,
    count(DISTINCT r.report_key)          AS reports,
    count(DISTINCT r.submitter)           AS senders,
    sum(p.total_successful_session_count)::BIGINT AS successful_sessions,
    sum(p.total_failure_session_count)::BIGINT AS failed_sessions,
    min(r.report_date)                    AS first_day,
    max(r.report_date)                    AS last_day
FROM policies p
JOIN reports r USING (report_key)
GROUP BY p.policy_domain
ORDER BY reports DESC, p.policy_domain
"""


def domain_summary(data_dir: Path) -> pd.DataFrame:
    """One row per policy domain: reports, senders, sessions ok and failed, first and
    last UTC day."""
    return read_frame(data_dir, SUMMARY_SQL)
