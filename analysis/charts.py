"""Plotly figures from the query frames (no I/O).

One colour per result type, the same in every chart. Every string that comes from a
report (organization names, hostnames, IPs as sent, result types) is HTML-escaped before
it becomes a label, trace name or hover text: plotly renders a subset of HTML in them, so
an organization called `<script>...` must arrive as `&lt;script&gt;...` and show as text.
Hover templates hold no report text; they refer to escaped values only.
"""

from __future__ import annotations

import html
import zlib
from collections.abc import Iterable, Sequence

import pandas as pd
import plotly.graph_objects as go

RESULT_COLOURS: dict[str, str] = {
    "starttls-not-supported": "#d62728",
    "certificate-host-mismatch": "#ff7f0e",
    "certificate-expired": "#8c564b",
    "certificate-not-trusted": "#e377c2",
    "validation-failure": "#9467bd",
    "sts-policy-fetch-error": "#1f77b4",
    "sts-policy-invalid": "#17becf",
    "sts-webpki-invalid": "#aec7e8",
    "tlsa-invalid": "#bcbd22",
    "dnssec-invalid": "#dbdb8d",
    "dane-required": "#c49c94",
}
"""The registered result types (RFC 8460 §4.3); unknown ones get a grey."""
SUCCESS_COLOUR = "#2ca02c"
FAILED_COLOUR = "#7f1d1d"
_UNKNOWN_GREYS = ("#7f7f7f", "#a0a0a0", "#5f5f5f", "#c0c0c0", "#404040")
_DOMAIN_LINES = ("#2ca02c", "#1f77b4", "#9467bd", "#8c564b", "#17becf", "#7f7f7f")
_TEMPLATE = "plotly_white"
NOT_REPORTED = "(not reported)"


def escape(value: object) -> str:
    """Report text made safe for plotly labels and HTML."""
    return html.escape(str(value), quote=False)


def result_colour(result_type: str) -> str:
    """The colour of a result type in every chart (a stable grey for unknown ones)."""
    if result_type in RESULT_COLOURS:
        return RESULT_COLOURS[result_type]
    return _UNKNOWN_GREYS[zlib.crc32(result_type.encode()) % len(_UNKNOWN_GREYS)]


def _ordered_types(values: Iterable[str]) -> list[str]:
    """Registered result types in registry order, then unknown ones sorted."""
    present = set(values)
    known = [t for t in RESULT_COLOURS if t in present]
    return known + sorted(present - set(RESULT_COLOURS))


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str, **extra: object) -> go.Figure:
    fig.update_layout(
        title={"text": title},
        xaxis_title=x_title,
        yaxis_title=y_title,
        template=_TEMPLATE,
        legend_title_text="result type",
        margin={"t": 60, "b": 40},
        **extra,
    )
    return fig


def _empty(title: str, note: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(
        title={"text": title},
        template=_TEMPLATE,
        xaxis={"visible": False},
        yaxis={"visible": False},
    )
    return fig


def _sender_label(org: object, submitter: object) -> str:
    org_s, sub_s = str(org), str(submitter)
    return escape(org_s if org_s.lower() == sub_s.lower() else f"{org_s} ({sub_s})")


def daily_sessions(frame: pd.DataFrame, domain: str) -> go.Figure:
    """Successful and failed sessions per UTC day (stacked), from `sessions_per_day`."""
    title = f"Sessions per day for {escape(domain)}"
    if frame.empty:
        return _empty(title, "No reports in this period")
    days = [d.isoformat() for d in frame["day"]]
    rate = frame["failure_rate"].fillna(0).astype(float).tolist()
    fig = go.Figure()
    for column, name, colour in (
        ("successful", "successful", SUCCESS_COLOUR),
        ("failed", "failed", FAILED_COLOUR),
    ):
        fig.add_bar(
            x=days,
            y=frame[column].astype(int).tolist(),
            name=name,
            marker_color=colour,
            customdata=rate,
            hovertemplate=(
                "%{x}<br>%{fullData.name}: %{y} sessions"
                "<br>failure rate that day: %{customdata:.2%}<extra></extra>"
            ),
        )
    fig = _layout(fig, title, "UTC day", "sessions", barmode="stack")
    fig.update_layout(legend_title_text="sessions")
    return fig


def _stacked_by_type(
    frame: pd.DataFrame,
    label: pd.Series,
    customdata: Sequence[Sequence[object]],
    hover: str,
    order: list[str],
) -> go.Figure:
    fig = go.Figure()
    work = frame.assign(_label=label, _custom=customdata)
    for result_type in _ordered_types(work["result_type"].astype(str)):
        part = work[work["result_type"] == result_type].set_index("_label")
        part = part.reindex([x for x in order if x in part.index])
        fig.add_bar(
            x=part.index.tolist(),
            y=part["sessions"].astype(int).tolist(),
            name=escape(result_type),
            marker_color=result_colour(result_type),
            customdata=part["_custom"].tolist(),
            hovertemplate=hover,
        )
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=order)
    return fig


def failures_by_sender(frame: pd.DataFrame, *, top: int = 15) -> go.Figure:
    """Failed sessions per sending organization, stacked by result type
    (from `queries.failures_by_sender`); the `top` senders with most failures."""
    title = "Failed sessions by sending organization"
    if frame.empty:
        return _empty(title, "No failures reported")
    labels = pd.Series(
        [
            _sender_label(o, s)
            for o, s in zip(frame["organization_name"], frame["submitter"], strict=True)
        ],
        index=frame.index,
    )
    totals = frame.groupby(labels)["sessions"].sum().sort_values(ascending=False)
    order = totals.index[:top].tolist()
    keep = labels.isin(order)
    sender_sessions = (frame["sender_successful"] + frame["sender_failed"]).astype(int)
    rate = frame["sessions"] / sender_sessions.where(sender_sessions > 0)
    custom = [
        [float(r) if pd.notna(r) else 0.0, int(n)]
        for r, n in zip(rate, sender_sessions, strict=True)
    ]
    fig = _stacked_by_type(
        frame[keep],
        labels[keep],
        [c for c, k in zip(custom, keep, strict=True) if k],
        "%{x}<br>%{fullData.name}: %{y} failed sessions"
        "<br>%{customdata[0]:.2%} of its %{customdata[1]} sessions<extra></extra>",
        order,
    )
    return _layout(fig, title, "sending organization", "failed sessions", barmode="stack")


def failures_by_sending_mta(frame: pd.DataFrame) -> go.Figure:
    """Failed sessions per sending MTA IP, stacked by result type
    (from `queries.failures_by_sending_mta`)."""
    title = "Failed sessions by sending MTA"
    if frame.empty:
        return _empty(title, "No failures reported")
    labels = frame["sending_mta_ip"].map(escape)
    order = list(dict.fromkeys(labels))
    custom = [[escape(o)] for o in frame["organization_name"]]
    fig = _stacked_by_type(
        frame,
        labels,
        custom,
        "%{x} (%{customdata[0]})<br>%{fullData.name}: %{y} failed sessions<extra></extra>",
        order,
    )
    return _layout(fig, title, "sending MTA IP", "failed sessions", barmode="stack")


def failures_by_mx(frame: pd.DataFrame) -> go.Figure:
    """Failed sessions per receiving MX (hostname and IP), stacked by result type
    (from `queries.failures_by_mx`)."""
    title = "Failed sessions by receiving MX"
    if frame.empty:
        return _empty(title, "No failures reported")
    labels = pd.Series(
        [
            escape(h if ip in (h, NOT_REPORTED) else f"{h} ({ip})")
            for h, ip in zip(frame["receiving_mx_hostname"], frame["receiving_ip"], strict=True)
        ],
        index=frame.index,
    )
    totals = frame.groupby(labels)["sessions"].sum().sort_values(ascending=False)
    order = totals.index.tolist()
    custom = [[int(n)] for n in frame["senders"]]
    fig = _stacked_by_type(
        frame,
        labels,
        custom,
        "%{x}<br>%{fullData.name}: %{y} failed sessions"
        "<br>from %{customdata[0]} sending organization(s)<extra></extra>",
        order,
    )
    return _layout(fig, title, "receiving MX (IP)", "failed sessions", barmode="stack")


def sender_heatmap(frame: pd.DataFrame, *, top: int = 20) -> go.Figure:
    """Senders x result types: failed sessions, with the share of the sender's sessions in
    the hover (from `queries.failures_by_sender`)."""
    title = "Failed sessions by sender and result type"
    if frame.empty:
        return _empty(title, "No failures reported")
    labels = pd.Series(
        [
            _sender_label(o, s)
            for o, s in zip(frame["organization_name"], frame["submitter"], strict=True)
        ],
        index=frame.index,
    )
    work = frame.assign(_label=labels)
    sender_sessions = (work["sender_successful"] + work["sender_failed"]).astype(float)
    work["_rate"] = (work["sessions"] / sender_sessions.where(sender_sessions > 0)).fillna(0.0)
    order = work.groupby("_label")["sessions"].sum().sort_values(ascending=False).index[:top]
    types = _ordered_types(work["result_type"].astype(str))
    counts = work.pivot_table(
        index="_label", columns="result_type", values="sessions", aggfunc="sum", fill_value=0
    ).reindex(index=order, columns=types, fill_value=0)
    rates = work.pivot_table(
        index="_label", columns="result_type", values="_rate", aggfunc="sum", fill_value=0.0
    ).reindex(index=order, columns=types, fill_value=0.0)
    fig = go.Figure(
        go.Heatmap(
            z=counts.to_numpy().tolist(),
            x=[escape(t) for t in types],
            y=counts.index.tolist(),
            customdata=rates.to_numpy().tolist(),
            colorscale="Reds",
            colorbar={"title": {"text": "failed sessions"}},
            hovertemplate="%{y}<br>%{x}: %{z} failed sessions"
            "<br>%{customdata:.2%} of its sessions<extra></extra>",
        )
    )
    fig = _layout(fig, title, "result type", "sending organization")
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    return fig


def success_rate_trend(frame: pd.DataFrame) -> go.Figure:
    """Weekly share of successful sessions per policy domain (from
    `queries.sessions_per_week`)."""
    title = "Weekly TLS success rate"
    if frame.empty:
        return _empty(title, "No reports in this period")
    fig = go.Figure()
    for i, (domain, part) in enumerate(frame.groupby("policy_domain", sort=True)):
        fig.add_scatter(
            x=part["week"].tolist(),
            y=(100 * part["success_rate"].astype(float)).round(3).tolist(),
            name=escape(domain),
            mode="lines+markers",
            line={"color": _DOMAIN_LINES[i % len(_DOMAIN_LINES)]},
            customdata=[
                [int(ok), int(bad)]
                for ok, bad in zip(part["successful"], part["failed"], strict=True)
            ],
            hovertemplate="%{fullData.name}, %{x}<br>success rate %{y:.2f} %"
            "<br>%{customdata[0]} successful, %{customdata[1]} failed sessions<extra></extra>",
        )
    fig = _layout(fig, title, "ISO week", "successful sessions (%)")
    fig.update_layout(legend_title_text="policy domain")
    fig.update_xaxes(type="category")
    return fig
