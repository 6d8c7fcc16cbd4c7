"""Schema versioning: migrations apply on open, a newer database is refused clearly."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from ingest.intake import IntakeRules, intake
from ingest.model import Channel
from ingest.schema import MIGRATIONS, SCHEMA_VERSION
from ingest.store import Store
from tests.conftest import SPEC, run_cli

COLUMNS = (
    "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
    "WHERE table_name = 'reports' ORDER BY ordinal_position"
)


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


def test_a_first_version_database_keeps_its_reports_and_loses_the_key_constraint(
    data_dir: Path,
) -> None:
    example = SPEC / "mail-auth__rfc8460-example__rpt01.json"
    data_dir.mkdir()
    con = duckdb.connect(str(data_dir / "tlsrpt.duckdb"))
    con.execute(MIGRATIONS[0]).fetchall()
    con.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
    con.execute("INSERT INTO schema_version VALUES (1, now())").fetchall()
    Store(con).add([intake(example.read_bytes(), Channel.IMPORT, IntakeRules())])
    columns = con.execute(COLUMNS).fetchall()
    con.close()

    summary = json.loads(run_cli("import", "--json", "--data-dir", data_dir, example).output)

    assert (summary["imported"], summary["duplicates"]) == (0, 1)
    con = duckdb.connect(str(data_dir / "tlsrpt.duckdb"), read_only=True)
    ((reports,),) = con.execute("SELECT count(*) FROM reports").fetchall()
    keys = con.execute(
        "SELECT constraint_type FROM duckdb_constraints() WHERE table_name = 'reports' "
        "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
    ).fetchall()
    ((version,),) = con.execute("SELECT max(version) FROM schema_version").fetchall()
    assert con.execute(COLUMNS).fetchall() == columns  # the same names, types and NOT NULLs
    con.close()
    assert (reports, keys, version) == (1, [], SCHEMA_VERSION)
