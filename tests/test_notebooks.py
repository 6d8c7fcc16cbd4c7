"""Both notebooks, executed by a real kernel of this virtualenv against a store built
from generated reports, with their parameters injected through the environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from analysis.window import iso_week
from tests.conftest import REPO
from tests.support.reports import Failure, Sender, build_store, days_back

W48 = iso_week("2026-W48")
NOTEBOOKS = REPO / "notebooks"
PLOTLY = "application/vnd.plotly.v1+json"

SENDERS = (
    Sender("Big Mail Example", "bigmail.example", 900),
    Sender(
        "Office Cloud Example",
        "officecloud.example",
        400,
        failures=(Failure("certificate-host-mismatch", 30, mx="mx2.example.com"),),
    ),
    Sender("Regional Post Example", "regionalpost.example", 60),
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("notebooks") / "data"
    build_store(data_dir, SENDERS, days_back(W48.last, 28))
    return data_dir


def execute(name: str, env: dict[str, str], workdir: Path, monkeypatch: Any) -> Any:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert all(
        not c.get("outputs") and c.get("execution_count") is None
        for c in nb.cells
        if c.cell_type == "code"
    ), "notebooks are committed without outputs"
    assert "parameters" in nb.cells[1].metadata.get("tags", [])
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    client = NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    client.execute()
    return nb


def outputs(nb: Any) -> tuple[str, list[dict[str, Any]]]:
    """All printed text, and every rich output's data."""
    text, data = [], []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.output_type != "error", out
            if out.output_type == "stream":
                text.append(out.text)
            elif "data" in out:
                data.append(out.data)
                text.append(out.data.get("text/plain", ""))
    return "\n".join(text), data


def test_weekly_review_notebook(store: Path, tmp_path: Path, monkeypatch: Any) -> None:
    nb = execute(
        "weekly_review",
        {"TLSRPT_DATA_DIR": str(store), "TLSRPT_DOMAIN": "", "TLSRPT_WEEK": "2026-W48"},
        tmp_path,
        monkeypatch,
    )
    text, data = outputs(nb)
    assert "example.com, week 2026-W48 (2026-11-23 to 2026-11-29, UTC)" in text
    assert "example.com: NOT ready to enforce [not_ready]" in text
    figures = [
        json.loads(d[PLOTLY]) if isinstance(d[PLOTLY], str) else d[PLOTLY]
        for d in data
        if PLOTLY in d
    ]
    assert len(figures) == 6
    titles = [f["layout"]["title"]["text"] for f in figures]
    assert "Failed sessions by receiving MX" in titles
    by_sender = next(f for f in figures if f["layout"]["title"]["text"].endswith("organization"))
    assert by_sender["data"][0]["name"] == "certificate-host-mismatch"
    assert list(by_sender["data"][0]["y"]) == [210]
    tables = [d["text/html"] for d in data if "text/html" in d]
    assert any("Office Cloud Example" in t for t in tables)


def test_enforce_decision_notebook(store: Path, tmp_path: Path, monkeypatch: Any) -> None:
    nb = execute(
        "enforce_decision",
        {
            "TLSRPT_DATA_DIR": str(store),
            "TLSRPT_DOMAIN": "example.com",
            "TLSRPT_END": "2026-11-29",
            "TLSRPT_DAYS": "28",
        },
        tmp_path,
        monkeypatch,
    )
    text, data = outputs(nb)
    assert "example.com: NOT ready to enforce [not_ready], 2026-11-02 to 2026-11-29" in text
    assert "certificate-host-mismatch on mx2.example.com" in text
    assert "- After each fix" in text
    assert sum(PLOTLY in d for d in data) == 4
    tables = [d["text/html"] for d in data if "text/html" in d]
    assert any("sender_failures" in t for t in tables)
