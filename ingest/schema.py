"""The DuckDB schema: ordered migrations, applied when a writer opens the database.

The tables and columns here are a public contract (docs/schema.md); change them only by
appending a migration.
"""

from __future__ import annotations

import duckdb

from ingest.database import run

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema
    """
    CREATE TABLE reports (
        report_key            BIGINT PRIMARY KEY,
        submitter             VARCHAR NOT NULL,
        report_id             VARCHAR NOT NULL,
        organization_name     VARCHAR NOT NULL,
        contact_info          VARCHAR,
        start_datetime        TIMESTAMPTZ NOT NULL,
        end_datetime          TIMESTAMPTZ NOT NULL,
        report_date           DATE NOT NULL,
        channel               VARCHAR NOT NULL,
        received_at           TIMESTAMPTZ NOT NULL,
        source                VARCHAR,
        tls_report_domain     VARCHAR,
        tls_report_submitter  VARCHAR,
        dkim_result           VARCHAR,
        dkim_domain           VARCHAR,
        json_sha256           VARCHAR NOT NULL,
        anomalies             VARCHAR[] NOT NULL
    );
    CREATE TABLE policies (
        report_key                      BIGINT NOT NULL,
        policy_index                    INTEGER NOT NULL,
        policy_type                     VARCHAR NOT NULL,
        policy_domain                   VARCHAR,
        policy_string                   VARCHAR[] NOT NULL,
        mx_host                         VARCHAR[] NOT NULL,
        policy_mode                     VARCHAR,
        policy_id                       VARCHAR,
        total_successful_session_count  BIGINT NOT NULL,
        total_failure_session_count     BIGINT NOT NULL,
        anomalies                       VARCHAR[] NOT NULL
    );
    CREATE TABLE failure_details (
        report_key              BIGINT NOT NULL,
        policy_index            INTEGER NOT NULL,
        detail_index            INTEGER NOT NULL,
        result_type             VARCHAR NOT NULL,
        result_category         VARCHAR NOT NULL,
        sending_mta_ip          VARCHAR,
        receiving_mx_hostname   VARCHAR,
        receiving_mx_helo       VARCHAR,
        receiving_ip            VARCHAR,
        failed_session_count    BIGINT NOT NULL,
        additional_information  VARCHAR,
        failure_reason_code     VARCHAR
    );
    CREATE TABLE raw_reports (
        report_key  BIGINT NOT NULL,
        raw         BLOB NOT NULL
    );
    """,
    # 2: reports.report_key without a PRIMARY KEY constraint. Checking it loads the whole
    # index into memory at every insert (about 50 bytes a stored report, and the time to
    # load it); the one writer already stores each key once (`ingest.store.Store`).
    # DuckDB cannot drop a constraint, so the table is copied (which keeps the column
    # types but no constraint) and its NOT NULL constraints are set again.
    """
    CREATE TABLE reports_v2 AS FROM reports;
    DROP TABLE reports;
    ALTER TABLE reports_v2 RENAME TO reports;
    """
    + "".join(
        f"ALTER TABLE reports ALTER COLUMN {column} SET NOT NULL;\n"
        for column in [
            "report_key",
            "submitter",
            "report_id",
            "organization_name",
            "start_datetime",
            "end_datetime",
            "report_date",
            "channel",
            "received_at",
            "json_sha256",
            "anomalies",
        ]
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(Exception):
    """The database was written by a newer version of this tool."""


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    ((exists,),) = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchall()
    if not exists:
        return 0
    ((version,),) = con.execute("SELECT max(version) FROM schema_version").fetchall()
    return int(version) if version is not None else 0


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply the migrations this database lacks, each in its own transaction."""
    run(
        con,
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    version = current_version(con)
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"the database has schema version {version}; this tool knows up to {SCHEMA_VERSION}"
        )
    for number, sql in enumerate(MIGRATIONS[version:], start=version + 1):
        run(con, "BEGIN TRANSACTION")
        run(con, sql)
        run(con, "INSERT INTO schema_version (version) VALUES (?)", [number])
        run(con, "COMMIT")
    return SCHEMA_VERSION
