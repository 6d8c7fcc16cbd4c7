"""`tlsrpt import`, the store and the quarantine, on real files and a real DuckDB file."""

from __future__ import annotations

import gzip
import json
import mailbox
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import DERIVED, REAL, SPEC, real_files, run_cli
from tests.support.mail import report_email


def query(data_dir: Path, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(data_dir / "tlsrpt.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def table_counts(data_dir: Path) -> tuple[object, ...]:
    return tuple(
        query(data_dir, f"SELECT count(*) FROM {t}")[0][0]
        for t in ("reports", "policies", "failure_details", "raw_reports")
    )


def index() -> list[dict[str, object]]:
    return [json.loads(line) for line in (REAL / "index.jsonl").read_text().splitlines()]


def test_every_real_file_imports_and_matches_the_index(data_dir: Path) -> None:
    for path in real_files():
        result = run_cli("import", "--no-dkim", "--data-dir", data_dir, "--json", path)
        summary = json.loads(result.output)
        assert summary["rejected"] == 0, (path.name, summary)
        assert summary["imported"] + summary["duplicates"] == 1, path.name

    expected = {(e["organization"], e["report_id"]): e for e in index()}
    rows = query(
        data_dir,
        "SELECT organization_name, report_id, "
        "list(policy_type ORDER BY policy_index), "
        "list(total_successful_session_count ORDER BY policy_index), "
        "list(total_failure_session_count ORDER BY policy_index) "
        "FROM reports JOIN policies USING (report_key) GROUP BY ALL",
    )
    assert len(rows) == len(expected) == 31
    for org, report_id, types, ok, failed in rows:
        entry = expected[(org, report_id)]
        policies = entry["policies"]
        assert isinstance(policies, list)
        assert types == [p["policy_type"] for p in policies]
        assert ok == [p["total_successful_session_count"] for p in policies]
        assert failed == [p["total_failure_session_count"] for p in policies]
    details = query(data_dir, "SELECT count(*) FROM failure_details")[0][0]
    assert details == sum(p["failure_details"] for e in expected.values() for p in e["policies"])  # type: ignore[index, union-attr]


def test_importing_twice_changes_nothing(data_dir: Path) -> None:
    first = json.loads(
        run_cli("import", "--no-dkim", "--data-dir", data_dir, "--json", REAL).output
    )
    assert first["imported"] == 31
    assert first["duplicates"] == 45 - 31
    before = table_counts(data_dir)
    digest = query(data_dir, "SELECT sum(hash(report_key, json_sha256)) FROM reports")
    second = json.loads(
        run_cli("import", "--no-dkim", "--data-dir", data_dir, "--json", REAL).output
    )
    assert (second["imported"], second["duplicates"], second["rejected"]) == (0, 45, 0)
    assert table_counts(data_dir) == before
    assert query(data_dir, "SELECT sum(hash(report_key, json_sha256)) FROM reports") == digest


def test_rfc_example_rows(data_dir: Path) -> None:
    run_cli("import", "--data-dir", data_dir, SPEC / "mail-auth__rfc8460-example__rpt01.json")
    (report,) = query(
        data_dir,
        "SELECT organization_name, report_id, report_date::VARCHAR, channel, dkim_result, "
        "contact_info FROM reports",
    )
    assert report == ("Company-X", "5065427c-23d3-47ca-b6e0-946ea0e8c4be", "2016-04-01",
                      "import", None, "sts-reporting@company-x.example")  # fmt: skip
    (policy,) = query(
        data_dir,
        "SELECT policy_type, policy_domain, mx_host, policy_mode, "
        "total_successful_session_count, total_failure_session_count FROM policies",
    )
    assert policy == (
        "sts",
        "company-y.example",
        ["*.mail.company-y.example"],
        "testing",
        5326,
        303,
    )
    details = query(
        data_dir,
        "SELECT result_type, sending_mta_ip, receiving_ip, failed_session_count, "
        "failure_reason_code, result_category FROM failure_details ORDER BY detail_index",
    )
    assert details == [
        ("certificate-expired", "2001:db8:abcd:12::1", None, 100, None, "negotiation"),
        ("starttls-not-supported", "2001:db8:abcd:13::1", "203.0.113.56", 200, None, "negotiation"),
        ("validation-failure", "198.51.100.62", "203.0.113.58", 3,
         "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED", "negotiation"),
    ]  # fmt: skip
    (raw,) = query(data_dir, "SELECT raw FROM raw_reports")
    assert raw[0] == (SPEC / "mail-auth__rfc8460-example__rpt01.json").read_bytes()


def test_same_report_by_file_and_by_mail_is_stored_once(data_dir: Path, tmp_path: Path) -> None:
    example = (SPEC / "mail-auth__rfc8460-example__rpt01.json").read_bytes()
    gz = tmp_path / "a.json.gz"
    gz.write_bytes(gzip.compress(example))
    eml = tmp_path / "a.eml"
    eml.write_bytes(
        report_email(example, domain="company-y.example", submitter="company-x.example")
    )
    summary = json.loads(
        run_cli("import", "--no-dkim", "--json", "--data-dir", data_dir, gz, eml).output
    )
    assert (summary["imported"], summary["duplicates"]) == (1, 1)
    assert table_counts(data_dir) == (1, 1, 3, 1)


def test_malformed_inputs_are_quarantined_and_nothing_is_stored(
    data_dir: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "truncated.json").write_bytes(b'{"organization-name": "x", "report-id"')
    (bad / "bomb.json.gz").write_bytes(gzip.compress(b" " * (60 * 1024 * 1024)))
    (bad / "negative.json").write_text(
        (SPEC / "mail-auth__rfc8460-example__rpt01.json").read_text().replace("5326", "-1")
    )
    (bad / "no-report.eml").write_bytes(b"From: a@b.example\r\nSubject: hi\r\n\r\nhello\r\n")
    result = run_cli("import", "--data-dir", data_dir, bad, expect=1)
    assert "4 refused" in result.output
    assert "too_large" in result.output and "negative count -1" in result.output
    assert "4 input(s) refused" in result.output
    assert table_counts(data_dir) == (0, 0, 0, 0)

    listed = json.loads(run_cli("quarantine", "--data-dir", data_dir, "--json").output)
    assert sorted(e["code"] for e in listed) == [
        "invalid_report", "invalid_report", "no_report", "too_large"]  # fmt: skip
    for entry in listed:
        raw = (data_dir / "quarantine" / f"{entry['id']}.raw").read_bytes()
        assert raw == (bad / Path(entry["source"]).name).read_bytes()
    assert "negative count" in run_cli("quarantine", "--data-dir", data_dir).output

    # refusing the same inputs again keeps one quarantine entry each
    run_cli("import", "--data-dir", data_dir, bad, expect=1)
    assert len(json.loads(run_cli("quarantine", "--data-dir", data_dir, "--json").output)) == 4


def test_foreign_domains_are_refused(data_dir: Path) -> None:
    result = run_cli(
        "import", "--data-dir", data_dir, "--domain", "example.com",
        SPEC / "mail-auth__rfc8460-example__rpt01.json", expect=1,
    )  # fmt: skip
    assert "foreign_domain" in result.output and "company-y.example" in result.output


def test_mbox_and_maildir(data_dir: Path, tmp_path: Path) -> None:
    emails = sorted(REAL.glob("*.eml"))[:5]
    box = mailbox.mbox(tmp_path / "reports.mbox")
    for path in emails:
        box.add(path.read_bytes())
    box.close()
    maildir = mailbox.Maildir(tmp_path / "Maildir")
    for path in emails:
        maildir.add(path.read_bytes())
    maildir.close()
    summary = json.loads(
        run_cli(
            "import",
            "--no-dkim",
            "--json",
            "--data-dir",
            data_dir,
            tmp_path / "reports.mbox",
            tmp_path / "Maildir",
        ).output
    )
    assert (summary["inputs"], summary["imported"], summary["duplicates"]) == (10, 5, 5)
    assert summary["rejected"] == 0


def test_summary(data_dir: Path) -> None:
    run_cli("import", "--no-dkim", "--data-dir", data_dir, REAL)
    rows = json.loads(run_cli("summary", "--data-dir", data_dir, "--json").output)
    krvtz = next(r for r in rows if r["policy_domain"] == "krvtz.net")
    assert krvtz == {
        "policy_domain": "krvtz.net", "reports": 4, "senders": 3, "successful_sessions": 7,
        "failed_sessions": 1, "first_day": "2023-01-25", "last_day": "2024-09-18",
    }  # fmt: skip
    text = run_cli("summary", "--data-dir", data_dir).output
    assert "krvtz.net" in text and "2023-01-25" in text


def test_summary_without_database_is_one_line(data_dir: Path) -> None:
    result = run_cli("summary", "--data-dir", data_dir, expect=1)
    assert result.output.startswith("Error: no database at")
    assert "Traceback" not in result.output


def test_reprocess_rebuilds_from_raw(data_dir: Path) -> None:
    run_cli("import", "--no-dkim", "--data-dir", data_dir, REAL, SPEC)
    before = query(data_dir, "SELECT * FROM failure_details ORDER BY ALL")
    counts = table_counts(data_dir)
    con = duckdb.connect(str(data_dir / "tlsrpt.duckdb"))
    con.execute("DELETE FROM failure_details").fetchall()
    con.execute("UPDATE policies SET policy_mode = NULL").fetchall()
    con.close()
    result = json.loads(run_cli("reprocess", "--data-dir", data_dir, "--json").output)
    assert result == {"reprocessed": counts[0], "merged": 0, "failed": 0}
    assert table_counts(data_dir) == counts
    assert query(data_dir, "SELECT * FROM failure_details ORDER BY ALL") == before
    assert query(data_dir, "SELECT count(*) FROM policies WHERE policy_mode = 'testing'")[0][0] > 0


def test_derived_files_import_or_refuse_cleanly(data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "derived"
    shutil.copytree(DERIVED, folder)
    result = run_cli("import", "--no-dkim", "--json", "--data-dir", data_dir, folder, expect=None)
    assert result.exit_code in (0, 1)
    assert json.loads(result.output)["inputs"] == 6


@pytest.mark.parametrize(
    "name", ["help", "import", "summary", "quarantine", "reprocess", "samples"]
)
def test_help_texts(name: str) -> None:
    args = ["--help"] if name == "help" else [name, "--help"]
    output = run_cli(*args).output
    assert "Usage:" in output
    if name != "help":
        assert "--help" in output


def test_samples_first_run(data_dir: Path, tmp_path: Path) -> None:
    run_cli("samples", tmp_path / "samples", "--days", "10")
    summary = json.loads(
        run_cli("import", "--json", "--data-dir", data_dir, tmp_path / "samples").output
    )
    assert summary["imported"] == 40 and summary["rejected"] == 0
    rows = json.loads(run_cli("summary", "--data-dir", data_dir, "--json").output)
    assert [r["policy_domain"] for r in rows] == ["example.com"]
    assert rows[0]["senders"] == 4 and rows[0]["failed_sessions"] > 0


def test_synthetic_corpus_parallel_import_matches_manifest(data_dir: Path, tmp_path: Path) -> None:
    """1,200 generated reports (parsed by worker processes) plus their emails: stored
    exactly once each, with the manifest's totals."""
    import subprocess
    import sys

    from tests.conftest import CORPUS

    corpus = tmp_path / "synthetic"
    subprocess.run(
        [sys.executable, str(CORPUS / "make_synthetic.py"), str(corpus), "-n", "1200", "--eml"],
        check=True,
        capture_output=True,
    )
    manifest = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines()]
    summary = json.loads(
        run_cli("import", "--no-dkim", "--json", "--data-dir", data_dir, corpus).output
    )
    assert (summary["inputs"], summary["imported"], summary["duplicates"]) == (2400, 1200, 1200)
    (reports, ok, failed, details) = query(
        data_dir,
        "SELECT (SELECT count(*) FROM reports), sum(total_successful_session_count), "
        "sum(total_failure_session_count), (SELECT count(*) FROM failure_details) FROM policies",
    )[0]
    assert reports == len(manifest)
    assert ok == sum(m["total_successful_session_count"] for m in manifest)
    assert failed == sum(m["total_failure_session_count"] for m in manifest)
    assert details == sum(p["failure_details"] for m in manifest for p in m["policies"])
    by_id = dict(query(data_dir, "SELECT report_id, tls_report_domain FROM reports"))
    assert {m["report_id"] for m in manifest} == set(by_id)
