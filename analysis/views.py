"""What the notebooks and the CLI show: parameters resolved to a domain and window, the
verdict as text and as tables.

The notebooks call these and display the results; they hold no logic of their own.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from analysis import charts, queries
from analysis.verdict import Decision, Thresholds, Verdict, domain_verdict
from analysis.weekly_report import WeekData, collect_week
from analysis.window import Window, days_ending, iso_week, last_complete_week


class NoData(LookupError):
    """Nothing stored for the requested window (so no domain to show)."""


def resolve_week(week: str = "") -> Window:
    """`2026-W48`, or the last complete ISO week when empty."""
    return iso_week(week) if week else last_complete_week()


def resolve_domain(data_dir: Path | str, window: Window, domain: str = "") -> str:
    """The given domain (normalised), or the busiest policy domain of the window."""
    if domain:
        return domain.lower().rstrip(".")
    found = queries.policy_domains(Path(data_dir), window)
    if not found:
        raise NoData(f"no reports stored for {window.label}")
    return found[0]


def weekly_review(data_dir: Path | str, domain: str = "", week: str = "") -> WeekData:
    """The weekly report's data and charts for the notebook."""
    window = resolve_week(week)
    name = resolve_domain(data_dir, window, domain)
    return collect_week(Path(data_dir), name, window)


@dataclass(frozen=True)
class EnforceView:
    domain: str
    window: Window
    verdict: Verdict
    figures: dict[str, go.Figure] = field(default_factory=dict)


def enforce_decision(
    data_dir: Path | str,
    domain: str = "",
    end: str | date | None = None,
    days: int = 28,
    thresholds: Thresholds | None = None,
) -> EnforceView:
    """The verdict over `days` UTC days ending with `end` (default yesterday), with the
    charts of the failures behind it."""
    last = date.fromisoformat(end) if isinstance(end, str) and end else end or None
    window = days_ending(last, days)
    path = Path(data_dir)
    name = resolve_domain(path, window, domain)
    verdict = domain_verdict(path, name, end=window.last, days=days, thresholds=thresholds)
    by_sender = queries.failures_by_sender(path, [name], window)
    figures = {
        "failures_by_mx": charts.failures_by_mx(queries.failures_by_mx(path, [name], window)),
        "failures_by_sender": charts.failures_by_sender(by_sender),
        "sender_heatmap": charts.sender_heatmap(by_sender),
        "daily_sessions": charts.daily_sessions(
            queries.sessions_per_day(path, [name], window), name
        ),
    }
    return EnforceView(name, window, verdict, figures)


def reasons_table(verdict: Verdict) -> pd.DataFrame:
    """One row per reason: code, blocking, message."""
    return pd.DataFrame(
        [{"code": r.code, "blocking": r.blocking, "message": r.message} for r in verdict.reasons],
        columns=["code", "blocking", "message"],
    )


def failures_table(verdict: Verdict) -> pd.DataFrame:
    """The failure groups behind the reasons: reason code, sender, mode, result type, MX,
    sessions."""
    rows = [
        {"reason": r.code, **row} for r in verdict.reasons for row in r.evidence.get("failures", [])
    ]
    return pd.DataFrame(rows)


_HEADLINE = {
    Decision.READY: "ready to enforce",
    Decision.NOT_READY: "NOT ready to enforce",
    Decision.INSUFFICIENT_DATA: "not enough data to judge",
}


def _wrap(text: str, first: str, rest: str) -> str:
    return textwrap.fill(
        text, width=100, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False
    )


def format_verdict(verdict: Verdict) -> str:
    """The verdict as text: headline, evidence, reasons (x = blocking), next steps."""
    ev = verdict.evidence
    enforced = " (already in enforce mode)" if verdict.already_enforced else ""
    lines = [
        f"{ev['policy_domain']}: {_HEADLINE[verdict.decision]}{enforced} "
        f"[{verdict.decision.value}], {ev['first_day']} to {ev['last_day']}",
        f"  {ev['sts_sessions']} STS sessions from {ev['senders']} senders on "
        f"{ev['days_with_reports']} days; {ev['would_fail_sessions']} would fail under "
        f"enforce; {ev['policy_error_sessions']} could not get the policy.",
        "Reasons:",
    ]
    for reason in verdict.reasons:
        mark = "x" if reason.blocking else "-"
        lines.append(_wrap(f"[{reason.code}] {reason.message}", f"  {mark} ", "      "))
    if verdict.next_steps:
        lines.append("Next steps:")
        lines.extend(
            _wrap(step, f"  {i}. ", "     ") for i, step in enumerate(verdict.next_steps, 1)
        )
    return "\n".join(lines)
