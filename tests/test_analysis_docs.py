"""The analysis docs stay true to the code: thresholds, commands, scheduling files."""

from __future__ import annotations

import configparser
import dataclasses

from analysis.verdict import Thresholds
from tests.conftest import REPO, run_cli


def test_every_threshold_is_documented_with_its_default() -> None:
    doc = (REPO / "docs" / "verdict.md").read_text()
    for field in dataclasses.fields(Thresholds):
        assert f"| `{field.name}` | {field.default} |" in doc, field.name


def test_readme_documents_the_commands() -> None:
    readme = (REPO / "README.md").read_text()
    for command in ("report", "verdict"):
        assert f"`tlsrpt {command} " in readme
        assert "Usage: main " + command in run_cli(command, "--help").output
    assert "docs/verdict.md" in readme


def test_systemd_units() -> None:
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.read(REPO / "deploy" / "tlsrpt-report.service")
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["ExecStart"].endswith("/tlsrpt report")
    assert "TLSRPT_DATA_DIR=" in service["Service"]["Environment"]
    timer = configparser.ConfigParser(strict=False, interpolation=None)
    timer.read(REPO / "deploy" / "tlsrpt-report.timer")
    assert timer["Timer"]["OnCalendar"] == "Tue *-*-* 06:00:00 UTC"
    readme = (REPO / "README.md").read_text()
    assert "0 6 * * 2  TLSRPT_DATA_DIR=" in readme  # the cron line: the same schedule
