"""Shared fixtures: the corpus beside the checkout, a fresh data directory, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tlsrpt.cli import main

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"
REAL = CORPUS / "real"
SPEC = CORPUS / "spec"
DERIVED = CORPUS / "derived"


def real_files() -> list[Path]:
    return sorted(p for p in REAL.iterdir() if not p.name.endswith((".md", ".jsonl")))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def run_cli(*args: str | Path, expect: int | None = 0) -> Result:
    """Run `tlsrpt ARGS` in-process and check its exit status."""
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    if expect is not None:
        assert result.exit_code == expect, (result.exit_code, result.output)
    return result
