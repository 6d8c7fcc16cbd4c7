"""Schema versioning: migrations apply on open, a newer database is refused clearly."""

from __future__ import annotations

from pathlib import Path

import duckdb

from ingest.schema import SCHEMA_VERSION
from tests.conftest import SPEC, run_cli


def test_migrations_apply_once_and_record_the_version(data_dir: Path) -> None:
    example = SPEC / "mail-auth__rfc8460-example__rpt01.json"
    run_cli("import", "--data-dir", data_dir, example)
    run_cli("import", "--data-dir", data_dir, example)
    con = duckdb.connect(str(data_dir / "tlsrpt.duckdb"), read_only=True)
    versions = con.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    tables = {
        name
        for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    con.close()
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    assert {"reports", "policies", "failure_details", "raw_reports"} <= tables


def test_database_from_a_newer_version_is_refused(data_dir: Path) -> None:
    run_cli("import", "--data-dir", data_dir, SPEC / "mail-auth__rfc8460-example__rpt01.json")
    con = duckdb.connect(str(data_dir / "tlsrpt.duckdb"))
    con.execute("INSERT INTO schema_version (version) VALUES (?)", [SCHEMA_VERSION + 1]).fetchall()
    con.close()
    result = run_cli("import", "--data-dir", data_dir, SPEC, expect=1)
    assert f"schema version {SCHEMA_VERSION + 1}" in result.output
    assert "Traceback" not in result.output
