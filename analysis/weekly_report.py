"""The weekly report: one self-contained HTML file per policy domain.

The verdict on top (over the 28 days ending with the week), the week's charts, the
comparison with the week before, the top failing senders and MXes, and the policies
senders applied. plotly.js is embedded once per file, so the report works offline. Every
string from a report is escaped (charts: `analysis.charts.escape`; tables: pandas'
`to_html(escape=True)`).

The output depends only on the stored data and the week, so running it again rewrites
the same files (written atomically, so a reader never sees half a report).
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from analysis import charts, queries
from analysis.evidence import collect_evidence
from analysis.verdict import Decision, Thresholds, Verdict, decide
from analysis.window import Window, days_ending
from ingest.durable import write_durably

VERDICT_DAYS = 28
TREND_WEEKS = 8
TOP = 10
REPORTS_DIR = "reports"
PNG_SIZE = (1100, 500)


@dataclass(frozen=True)
class WeekData:
    """Everything the report shows for one policy domain and one week."""

    domain: str
    window: Window
    verdict: Verdict
    daily: pd.DataFrame
    trend: pd.DataFrame
    senders: pd.DataFrame
    previous_senders: pd.DataFrame
    by_sender: pd.DataFrame
    previous_by_sender: pd.DataFrame
    by_mta: pd.DataFrame
    by_mx: pd.DataFrame
    new_types: pd.DataFrame
    silent: pd.DataFrame
    policies: pd.DataFrame
    figures: dict[str, go.Figure] = field(default_factory=dict)

    @property
    def previous(self) -> Window:
        return self.window.previous()


def collect_week(
    data_dir: Path, domain: str, window: Window, *, thresholds: Thresholds | None = None
) -> WeekData:
    """Query the store for one domain and week (and the week before, for comparison)."""
    domains = [domain]
    previous = window.previous()
    verdict_window = days_ending(window.last, VERDICT_DAYS)
    data = WeekData(
        domain=domain,
        window=window,
        verdict=decide(collect_evidence(data_dir, domain, verdict_window), thresholds),
        daily=queries.sessions_per_day(data_dir, domains, window),
        trend=queries.sessions_per_week(
            data_dir, domains, queries.trend_window(window, TREND_WEEKS)
        ),
        senders=queries.sender_rates(data_dir, domains, window),
        previous_senders=queries.sender_rates(data_dir, domains, previous),
        by_sender=queries.failures_by_sender(data_dir, domains, window),
        previous_by_sender=queries.failures_by_sender(data_dir, domains, previous),
        by_mta=queries.failures_by_sending_mta(data_dir, domains, window),
        by_mx=queries.failures_by_mx(data_dir, domains, window),
        new_types=queries.new_result_types(data_dir, domains, window),
        silent=queries.silent_senders(data_dir, domains, window),
        policies=queries.policies_applied(data_dir, domains, window),
    )
    data.figures.update(week_figures(data))
    return data


def week_figures(data: WeekData) -> dict[str, go.Figure]:
    """The report's charts, by file-safe name, in display order."""
    return {
        "daily_sessions": charts.daily_sessions(data.daily, data.domain),
        "failures_by_sender": charts.failures_by_sender(data.by_sender),
        "failures_by_sending_mta": charts.failures_by_sending_mta(data.by_mta),
        "failures_by_mx": charts.failures_by_mx(data.by_mx),
        "sender_heatmap": charts.sender_heatmap(data.by_sender),
        "success_rate_trend": charts.success_rate_trend(data.trend),
    }


def _totals(senders: pd.DataFrame) -> dict[str, float | int | None]:
    ok, bad = int(senders["successful"].sum()), int(senders["failed"].sum())
    return {
        "reports": int(senders["reports"].sum()),
        "senders": len(senders),
        "successful sessions": ok,
        "failed sessions": bad,
        "failure rate": bad / (ok + bad) if ok + bad else None,
        "failing senders": int((senders["failed"] > 0).sum()),
    }


def comparison(data: WeekData) -> pd.DataFrame:
    """This week against the week before: metric, this_week, previous_week, change."""
    now, before = _totals(data.senders), _totals(data.previous_senders)
    rows = []
    for metric, value in now.items():
        old = before[metric]
        change: float | None = None
        if value is not None and old is not None:
            change = value - old
        rows.append({"metric": metric, "this_week": value, "previous_week": old, "change": change})
    return pd.DataFrame(rows)


def result_type_comparison(data: WeekData) -> pd.DataFrame:
    """Failed sessions per result type this week and the week before."""
    now = data.by_sender.groupby("result_type")["sessions"].sum()
    before = data.previous_by_sender.groupby("result_type")["sessions"].sum()
    frame = pd.DataFrame({"this_week": now, "previous_week": before}).fillna(0).astype(int)
    frame["change"] = frame["this_week"] - frame["previous_week"]
    return (
        frame.sort_values(["this_week", "previous_week"], ascending=False)
        .rename_axis("result_type")
        .reset_index()
    )


def top_failing_senders(data: WeekData, top: int = TOP) -> pd.DataFrame:
    frame = data.senders[data.senders["failed"] > 0].head(top)
    return frame[
        ["organization_name", "submitter", "reports", "successful", "failed", "failure_rate"]
    ]


def top_failing_mx(data: WeekData, top: int = TOP) -> pd.DataFrame:
    if data.by_mx.empty:
        return data.by_mx
    grouped = data.by_mx.groupby(["receiving_mx_hostname", "receiving_ip"], as_index=False).agg(
        sessions=("sessions", "sum"),
        senders=("senders", "max"),
        result_types=("result_type", lambda s: ", ".join(sorted(set(s)))),
    )
    return grouped.sort_values("sessions", ascending=False).head(top)


# ---------------------------------------------------------------- HTML


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
.verdict{border-radius:8px;padding:1rem 1.5rem;margin:1rem 0}
.ready{background:#e6f4ea;border:2px solid #2ca02c}
.not_ready{background:#fdecea;border:2px solid #d62728}
.insufficient_data{background:#fff8e1;border:2px solid #f0ad00}
.decision{font-size:1.4rem;font-weight:bold}
table.data{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.9rem}
table.data th,table.data td{border-bottom:1px solid #ddd;padding:.25rem .6rem;text-align:left}
.chart{margin:1rem 0}
"""

_DECISION_TEXT = {
    Decision.READY: "Ready to enforce",
    Decision.NOT_READY: "Not ready to enforce",
    Decision.INSUFFICIENT_DATA: "Not enough data to judge",
}


def _format(value: Any, rate: bool) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if rate and isinstance(value, int | float):
        return f"{100 * value:.2f} %"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table_html(frame: pd.DataFrame, empty: str = "None.") -> str:
    """A DataFrame as an HTML table with every cell escaped; rates shown as percent."""
    if frame.empty:
        return f"<p>{html.escape(empty)}</p>"
    rate_rows = (
        frame["metric"].eq("failure rate").tolist() if "metric" in frame else [False] * len(frame)
    )
    shown = pd.DataFrame(
        {
            column: [
                _format(v, column == "failure_rate" or (row_rate and column != "metric"))
                for v, row_rate in zip(frame[column].tolist(), rate_rows, strict=True)
            ]
            for column in frame.columns
        }
    )
    return str(shown.to_html(index=False, escape=True, border=0, classes="data"))


def _verdict_html(verdict: Verdict) -> str:
    decision = verdict.decision
    enforced = " (already in enforce mode)" if verdict.already_enforced else ""
    reasons = "".join(
        f"<li><strong>{html.escape(r.code)}</strong>: {html.escape(r.message)}</li>"
        for r in verdict.reasons
    )
    steps = "".join(f"<li>{html.escape(s)}</li>" for s in verdict.next_steps)
    ev = verdict.evidence
    return (
        f'<section class="verdict {decision.value}" id="verdict">'
        f'<div class="decision">{_DECISION_TEXT[decision]}{enforced}</div>'
        f"<p>Verdict <code>{decision.value}</code> over {ev['first_day']} to "
        f"{ev['last_day']}: {ev['sts_sessions']} STS sessions from {ev['senders']} senders "
        f"on {ev['days_with_reports']} days; {ev['would_fail_sessions']} would have failed "
        f"under enforce, {ev['policy_error_sessions']} could not get the policy.</p>"
        f"<h3>Reasons</h3><ul>{reasons}</ul>"
        f"<h3>Next steps</h3><ol>{steps}</ol></section>"
    )


_PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def render_html(data: WeekData) -> str:
    """The report as one HTML page with plotly.js embedded once."""
    domain = html.escape(data.domain)
    parts = []
    for i, (name, fig) in enumerate(data.figures.items()):
        parts.append(
            '<div class="chart">'
            + fig.to_html(
                full_html=False,
                include_plotlyjs=i == 0,
                div_id=f"chart-{name}",
                config=_PLOT_CONFIG,
            )
            + "</div>"
        )
    charts_html = "\n".join(parts)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>TLS report for {domain}, {data.window.label}</title>
<style>{_CSS}</style></head><body>
<h1>SMTP TLS report for {domain}</h1>
<p class="sub">Week {data.window.label}: {data.window.first} to {data.window.last} (UTC),
compared with {data.previous.label}.</p>
{_verdict_html(data.verdict)}
<h2>This week against the week before</h2>
{table_html(comparison(data))}
<h3>Failed sessions by result type</h3>
{table_html(result_type_comparison(data), "No failures in either week.")}
<h2>Charts</h2>
<p>Session counts and rates come from the report summaries; the breakdowns by sender, MTA
and MX come from the failure details, which may overlap.</p>
{charts_html}
<h2>Top failing senders</h2>
{table_html(top_failing_senders(data), "No sender reported failures this week.")}
<h2>Top failing MXes</h2>
{table_html(top_failing_mx(data), "No MX failed this week.")}
<h2>Result types new this week</h2>
{table_html(data.new_types, "No new result types.")}
<h2>Senders that stopped reporting</h2>
{table_html(data.silent, "Every sender of the previous four weeks reported this week.")}
<h2>Policies applied by senders</h2>
<p>A new policy_id or mode shows when a sender picked up a changed policy.</p>
{table_html(data.policies, "No policies reported.")}
</body></html>
"""


# ---------------------------------------------------------------- files

_UNSAFE = re.compile(r"[^a-z0-9._-]")


def file_stem(domain: str) -> str:
    """A file name for a policy domain from a report (never a path)."""
    stem = _UNSAFE.sub("_", domain.lower()).lstrip(".")
    return stem or "_"


@dataclass(frozen=True)
class WrittenReport:
    domain: str
    html: Path
    png: tuple[Path, ...]
    decision: Decision

    def as_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "html": str(self.html),
            "png": [str(p) for p in self.png],
            "decision": self.decision.value,
        }


def report_folder(data_dir: Path, window: Window) -> Path:
    return data_dir / REPORTS_DIR / window.label


def write_report(
    data_dir: Path, domain: str, window: Window, *, png: bool = False
) -> WrittenReport:
    """Write DATA_DIR/reports/<week>/<domain>.html (and, with `png`, one PNG per chart in
    DATA_DIR/reports/<week>/<domain>/)."""
    data = collect_week(data_dir, domain, window)
    folder = report_folder(data_dir, window)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{file_stem(domain)}.html"
    write_durably(target, render_html(data).encode())
    images: tuple[Path, ...] = ()
    if png:
        images = export_png(data.figures, folder / file_stem(domain))
    return WrittenReport(domain, target, images, data.verdict.decision)


def export_png(figures: dict[str, go.Figure], folder: Path) -> tuple[Path, ...]:
    """One PNG per chart, rendered by kaleido with the system's Chromium (one browser
    for all charts)."""
    import kaleido

    for name in ("kaleido", "choreographer"):
        logging.getLogger(name).setLevel(logging.WARNING)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    kaleido.start_sync_server(silence_warnings=True)
    try:
        for name, fig in figures.items():
            opts = {"format": "png", "width": PNG_SIZE[0], "height": PNG_SIZE[1], "scale": 1}
            data = kaleido.calc_fig_sync(fig.to_dict(), opts=opts)
            path = folder / f"{name}.png"
            write_durably(path, bytes(data))
            written.append(path)
    finally:
        kaleido.stop_sync_server(silence_warnings=True)
    return tuple(written)


def write_reports(
    data_dir: Path, window: Window, domains: Sequence[str] = (), *, png: bool = False
) -> list[WrittenReport]:
    """One report per domain (default: every policy domain with reports that week)."""
    names = [d.lower().rstrip(".") for d in domains] or queries.policy_domains(data_dir, window)
    return [write_report(data_dir, d, window, png=png) for d in names]
