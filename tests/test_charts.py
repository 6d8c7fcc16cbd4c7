"""Charts: traces, values, labels, colours and escaping, on frames from a real store."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import pytest

from analysis import charts, queries
from analysis.window import Window, iso_week
from tests.support.reports import Failure, Sender, build_store, days_back

W48 = iso_week("2026-W48")
EVIL = '<script>alert("x")</script> & Co'
DOMAINS = ["example.com"]

SENDERS = (
    Sender(
        "Alpha Mail",
        "alpha.example",
        100,
        failures=(
            Failure("certificate-expired", 2, mx="mx1.example.com", sending_ip="198.51.100.7"),
            Failure("starttls-not-supported", 1, mx="mx2.example.com", sending_ip="198.51.100.8"),
        ),
    ),
    Sender(
        EVIL,
        "evil.example",
        10,
        failures=(
            Failure("certificate-expired", 5, mx="<b>mx</b>.example.com", sending_ip=None),
            Failure("foo-<i>bar</i>", 1, mx="mx1.example.com", sending_ip="203.0.113.5"),
        ),
    ),
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("charts") / "data"
    build_store(data_dir, SENDERS, days_back(W48.last, 14))
    return data_dir


def bars(fig: go.Figure) -> dict[str, dict[str, int]]:
    return {t.name: dict(zip(t.x, t.y, strict=True)) for t in fig.data}


def all_text(fig: go.Figure) -> str:
    """Every string plotly would render: titles, names, labels, ticks, hover."""
    return fig.to_json()


def test_failures_by_sender(store: Path) -> None:
    fig = charts.failures_by_sender(queries.failures_by_sender(store, DOMAINS, W48))
    evil = '&lt;script&gt;alert("x")&lt;/script&gt; &amp; Co (evil.example)'
    assert bars(fig) == {
        "certificate-expired": {evil: 35, "Alpha Mail (alpha.example)": 14},
        "starttls-not-supported": {"Alpha Mail (alpha.example)": 7},
        "foo-&lt;i&gt;bar&lt;/i&gt;": {evil: 7},
    }
    assert fig.layout.barmode == "stack"
    assert fig.layout.title.text == "Failed sessions by sending organization"
    assert fig.layout.xaxis.title.text == "sending organization"
    assert fig.layout.yaxis.title.text == "failed sessions"
    # Hover: count, and the share of the sender's sessions (from the summary).
    trace = next(t for t in fig.data if t.name == "certificate-expired")
    assert "%{y} failed sessions" in trace.hovertemplate
    shares = dict(zip(trace.x, (c[0] for c in trace.customdata), strict=True))
    assert shares[evil] == pytest.approx(35 / 70)
    assert shares["Alpha Mail (alpha.example)"] == pytest.approx(14 / 700)


def test_report_text_never_reaches_a_chart_unescaped(store: Path) -> None:
    frames = {
        "sender": queries.failures_by_sender(store, DOMAINS, W48),
        "mta": queries.failures_by_sending_mta(store, DOMAINS, W48),
        "mx": queries.failures_by_mx(store, DOMAINS, W48),
    }
    figures = [
        charts.failures_by_sender(frames["sender"]),
        charts.failures_by_sending_mta(frames["mta"]),
        charts.failures_by_mx(frames["mx"]),
        charts.sender_heatmap(frames["sender"]),
    ]
    for fig in figures:
        text = fig.to_plotly_json()
        flat = repr(text)
        assert "<script>" not in flat and "<b>mx" not in flat and "<i>bar" not in flat
        for trace in fig.data:
            # Templates refer to values only; no report text is spliced into them.
            assert "evil" not in (trace.hovertemplate or "")
    mta = charts.failures_by_sending_mta(frames["mta"])
    assert "(not reported)" in {x for t in mta.data for x in t.x}
    mx = charts.failures_by_mx(frames["mx"])
    assert "&lt;b&gt;mx&lt;/b&gt;.example.com (192.0.2.99)" in {x for t in mx.data for x in t.x}


def test_one_colour_per_result_type_in_every_chart(store: Path) -> None:
    sender = queries.failures_by_sender(store, DOMAINS, W48)
    figures = [
        charts.failures_by_sender(sender),
        charts.failures_by_sending_mta(queries.failures_by_sending_mta(store, DOMAINS, W48)),
        charts.failures_by_mx(queries.failures_by_mx(store, DOMAINS, W48)),
    ]
    seen: dict[str, set[str]] = {}
    for fig in figures:
        for trace in fig.data:
            seen.setdefault(trace.name, set()).add(trace.marker.color)
    assert seen["certificate-expired"] == {"#8c564b"}
    assert seen["starttls-not-supported"] == {"#d62728"}
    assert all(len(colours) == 1 for colours in seen.values())
    assert charts.result_colour("foo-bar") == charts.result_colour("foo-bar")
    assert charts.result_colour("foo-bar") not in charts.RESULT_COLOURS.values()
    assert len(set(charts.RESULT_COLOURS.values())) == len(charts.RESULT_COLOURS)


def test_sending_mta_and_mx_values(store: Path) -> None:
    mta = charts.failures_by_sending_mta(queries.failures_by_sending_mta(store, DOMAINS, W48))
    assert bars(mta)["certificate-expired"] == {"(not reported)": 35, "198.51.100.7": 14}
    assert mta.layout.xaxis.type == "category"
    hover_orgs = {c[0] for t in mta.data for c in t.customdata}
    assert '&lt;script&gt;alert("x")&lt;/script&gt; &amp; Co' in hover_orgs

    mx = charts.failures_by_mx(queries.failures_by_mx(store, DOMAINS, W48))
    assert bars(mx)["starttls-not-supported"] == {"mx2.example.com (192.0.2.26)": 7}
    assert (
        next(iter(mx.layout.xaxis.categoryarray))
        == "&lt;b&gt;mx&lt;/b&gt;.example.com (192.0.2.99)"
    )
    assert "sending organization(s)" in mx.data[0].hovertemplate


def test_heatmap(store: Path) -> None:
    fig = charts.sender_heatmap(queries.failures_by_sender(store, DOMAINS, W48))
    (heat,) = fig.data
    # Registered result types in registry order, then unknown ones.
    assert list(heat.x) == [
        "starttls-not-supported",
        "certificate-expired",
        "foo-&lt;i&gt;bar&lt;/i&gt;",
    ]
    assert next(iter(heat.y)).startswith("&lt;script&gt;")
    assert [list(row) for row in heat.z] == [[0, 35, 7], [7, 14, 0]]
    assert heat.customdata[0][1] == pytest.approx(0.5)
    assert "of its sessions" in heat.hovertemplate


def test_daily_and_trend(store: Path) -> None:
    daily = charts.daily_sessions(queries.sessions_per_day(store, DOMAINS, W48), "example.com")
    assert [t.name for t in daily.data] == ["successful", "failed"]
    assert set(daily.data[0].y) == {97 + 4}
    assert set(daily.data[1].y) == {3 + 6}
    assert daily.data[0].marker.color == charts.SUCCESS_COLOUR
    assert "failure rate" in daily.data[0].hovertemplate

    weeks = queries.sessions_per_week(store, DOMAINS, Window(iso_week("2026-W47").first, W48.last))
    trend = charts.success_rate_trend(weeks)
    (line,) = trend.data
    assert list(line.x) == ["2026-W47", "2026-W48"]
    assert list(line.y) == pytest.approx([100 * 707 / 770, 100 * 707 / 770], abs=1e-3)
    assert trend.layout.yaxis.title.text == "successful sessions (%)"


def test_empty_frames_give_a_note(store: Path) -> None:
    empty = queries.failures_by_sender(store, DOMAINS, iso_week("2025-W01"))
    for fig in (charts.failures_by_sender(empty), charts.sender_heatmap(empty)):
        assert not fig.data
        assert fig.layout.annotations[0].text == "No failures reported"
