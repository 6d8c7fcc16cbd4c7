"""`tlsrpt report`: the HTML written, its escaping, offline rendering in real Chromium,
PNG export, idempotence, and that it only reads the store."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from analysis.weekly_report import collect_week, file_stem, render_html
from analysis.window import iso_week, last_complete_week
from tests.conftest import run_cli
from tests.support.browser import render
from tests.support.reports import Failure, Sender, build_store, days_back

W48 = iso_week("2026-W48")
EVIL = '<script>alert("x")</script> Mail'
SENDERS = (
    Sender("Big Mail Example", "bigmail.example", 900),
    Sender(
        "Office Cloud Example",
        "officecloud.example",
        400,
        failures=(
            Failure(
                "certificate-host-mismatch", 30, mx="mx2.example.com", sending_ip="203.0.113.9"
            ),
        ),
    ),
    Sender(
        EVIL,
        "evil.example",
        50,
        failures=(Failure("certificate-not-trusted", 2, mx="mx1.example.com"),),
    ),
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("weekly") / "data"
    build_store(data_dir, SENDERS, days_back(W48.last, 28))
    # A sender that reported only the week before, with a new policy domain.
    build_store(
        data_dir,
        [replace(SENDERS[0], org="Quiet Relay", contact_domain="quiet.example")],
        days_back(W48.first, 3)[:-1],
    )
    return data_dir


@pytest.fixture(scope="module")
def report(store: Path) -> Path:
    out = run_cli("report", "--week", "2026-W48", "--data-dir", store).output
    path = store / "reports" / "2026-W48" / "example.com.html"
    assert out == f"example.com: not_ready -> {path}\n"
    return path


def test_report_content_and_escaping(report: Path) -> None:
    page = report.read_text()
    # Verdict first, then the charts.
    assert page.index('id="verdict"') < page.index("Plotly.newPlot")
    assert "Not ready to enforce" in page
    assert "certificate-host-mismatch on mx2.example.com" in page
    assert "Week 2026-W48: 2026-11-23 to 2026-11-29 (UTC)" in page
    # Six charts, plotly.js embedded once, nothing fetched from the network.
    assert page.count("Plotly.newPlot(") == 6
    assert len(re.findall(r"\* plotly\.js v\d", page)) == 1
    assert not re.search(r"<script[^>]+src=", page)
    markup = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.DOTALL)
    assert not re.search(r"""(src|href)=["']?https?:""", markup)
    # The organization name from a report is text, everywhere.
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert" in page  # in the tables
    assert "\\u003cscript\\u003e" not in page  # not even JSON-escaped raw in the charts
    assert '"x":["&lt;script&gt;alert(' in page  # chart data: escaped labels


def test_report_tables(report: Path) -> None:
    page = report.read_text()
    comparison = page[page.index("This week against the week before") :]
    comparison = comparison[: comparison.index("</table>")]
    cells = re.findall(r"<td>([^<]*)</td>", comparison)
    rows = dict(zip(cells[0::4], zip(cells[1::4], cells[2::4], strict=True), strict=True))
    assert rows["reports"] == ("21", "23")
    assert rows["senders"] == ("3", "4")
    assert rows["failed sessions"] == ("224", "224")
    assert rows["failure rate"] == ("2.37 %", "1.99 %")  # 224 / 9450, 224 / 11250
    top = page[page.index("Top failing senders") :]
    assert top.index("Office Cloud Example") < top.index("&lt;script&gt;alert")
    assert "Senders that stopped reporting" in page
    stopped = page[page.index("Senders that stopped reporting") :]
    assert "quiet.example" in stopped[: stopped.index("</table>")]


def test_report_renders_in_chromium(report: Path, tmp_path: Path) -> None:
    rendered = render(report, tmp_path)
    dom = rendered.dom
    assert dom.count('class="plot-container plotly"') == 6
    assert len(re.findall(r'<svg class="main-svg"', dom)) >= 6
    titles = re.findall(r'class="gtitle"[^>]*>([^<]+)<', dom)
    assert "Failed sessions by sending organization" in titles
    assert "Failed sessions by receiving MX" in titles
    # Rendered as text in the SVG axis labels, never as an element.
    assert '&lt;script&gt;alert("x")&lt;/script&gt; Mail (evil.example)' in dom
    assert not re.search(r"<script>alert", dom)
    with Image.open(rendered.screenshot) as shot:
        assert shot.size == (1280, 3000)
        colours = shot.convert("RGB").getcolors(maxcolors=1 << 20) or []
    counts = {rgb: n for n, rgb in colours}
    assert counts.get((0xFF, 0x7F, 0x0E), 0) > 500  # certificate-host-mismatch bars
    assert counts.get((0x2C, 0xA0, 0x2C), 0) > 500  # successful sessions


def test_report_is_idempotent_and_only_reads(store: Path, report: Path) -> None:
    before = report.read_bytes()
    db = store / "tlsrpt.duckdb"
    db_mtime = db.stat().st_mtime_ns
    run_cli("report", "--week", "2026-W48", "--domain", "Example.COM.", "--data-dir", store)
    assert report.read_bytes() == before
    assert db.stat().st_mtime_ns == db_mtime
    assert sorted(p.name for p in report.parent.iterdir()) == ["example.com.html"]
    # Nothing holds the database: a writer gets in at once.
    assert build_store(store, [SENDERS[0]], [W48.last.replace(day=1)]) == 1


def test_report_png(store: Path) -> None:
    out = run_cli(
        "report", "--week", "2026-W47", "--domain", "example.com", "--png", "--data-dir", store
    ).output
    folder = store / "reports" / "2026-W47" / "example.com"
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "daily_sessions.png",
        "failures_by_mx.png",
        "failures_by_sender.png",
        "failures_by_sending_mta.png",
        "sender_heatmap.png",
        "success_rate_trend.png",
    ]
    assert str(folder / "failures_by_sender.png") in out
    with Image.open(folder / "failures_by_sender.png") as image:
        assert image.size == (1100, 500)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    assert {rgb for _, rgb in colours} >= {(0xFF, 0x7F, 0x0E), (0xE3, 0x77, 0xC2)}


def test_report_json_default_week_and_errors(store: Path, tmp_path: Path) -> None:
    out = run_cli("report", "--data-dir", store).output
    assert last_complete_week().label in out
    empty = run_cli("report", "--week", "2025-W01", "--data-dir", store, "--json").output
    assert '"reports": []' in empty
    bad = run_cli("report", "--week", "2026-W60", "--data-dir", store, expect=1)
    assert "2026 has no week 60" in bad.output
    missing = run_cli("report", "--data-dir", tmp_path / "none", expect=1)
    assert "no database" in missing.output


def test_week_data_for_notebooks(store: Path) -> None:
    data = collect_week(store, "example.com", W48)
    assert list(data.figures) == [
        "daily_sessions",
        "failures_by_sender",
        "failures_by_sending_mta",
        "failures_by_mx",
        "sender_heatmap",
        "success_rate_trend",
    ]
    assert data.verdict.decision.value == "not_ready"
    assert render_html(data) == render_html(data)


@pytest.mark.parametrize(
    ("domain", "stem"),
    [
        ("example.com", "example.com"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("EXAMPLE.org", "example.org"),
        ("..", "_"),
        ("a b/c", "a_b_c"),
    ],
)
def test_file_names_never_leave_the_folder(domain: str, stem: str) -> None:
    assert file_stem(domain) == stem
