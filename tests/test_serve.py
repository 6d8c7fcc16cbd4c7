"""`tlsrpt serve` for real: a subprocess on loopback ports, driven by smtplib, swaks,
httpx and curl, checked in the DuckDB file and the quarantine."""

from __future__ import annotations

import gzip
import json
import smtplib
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest

from tests.conftest import SPEC, run_cli
from tests.support.collector import (
    Collector,
    query,
    report_json,
    running_collector,
    wait_for_rows,
)
from tests.support.dkim_keys import DkimKey
from tests.support.dns_zone import Zone, serve_zone
from tests.support.mail import report_email

MAILBOX = "tlsrpt@example.com"
RFC_EXAMPLE = SPEC / "mail-auth__rfc8460-example__rpt01.json"


@pytest.fixture(scope="module")
def dkim_key() -> DkimKey:
    return DkimKey()


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory, dkim_key: DkimKey) -> Iterator[Collector]:
    zone = Zone({"sel._domainkey.reporter.example": [dkim_key.txt_strings()]})
    with serve_zone(zone) as dns_port:
        data_dir = tmp_path_factory.mktemp("serve") / "data"
        with running_collector(
            data_dir,
            "--domain",
            "example.com",
            "--domain",
            "company-y.example",
            "--mailbox",
            MAILBOX,
            "--max-message-mb",
            "1",
            "--nameserver",
            "127.0.0.1",
            "--dns-port",
            str(dns_port),
        ) as running:
            yield running
            assert running.alive(), running.log()


def rows_for(collector: Collector, report_id: str) -> list[tuple[object, ...]]:
    return wait_for_rows(
        collector.data_dir,
        "SELECT channel, dkim_result, source FROM reports WHERE report_id = ?",
        [report_id],
    )


def quarantine_codes(collector: Collector) -> list[str]:
    folder = collector.data_dir / "quarantine"
    return sorted(json.loads(p.read_text())["code"] for p in folder.glob("*.json"))


# SMTP ---------------------------------------------------------------------------------


def test_smtp_without_tls_stores_the_report(collector: Collector) -> None:
    message = report_email(report_json("smtp-plain"), submitter="reporter.example")
    with smtplib.SMTP(collector.smtp_host, collector.smtp_port, timeout=30) as smtp:
        code, features = smtp.ehlo("sender.example")
        assert code == 250
        assert b"STARTTLS" in features
        assert b"SIZE 1048576" in features
        assert b"AUTH" not in features
        smtp.mail("tlsrpt@reporter.example")
        smtp.rcpt(MAILBOX)
        code, reply = smtp.data(message)
    assert code == 250
    assert reply.startswith(b"2.0.0 queued as ")
    assert rows_for(collector, "smtp-plain") == [("smtp", "none", "smtp:127.0.0.1")]


def test_smtp_with_starttls_and_a_dkim_signature(collector: Collector, dkim_key: DkimKey) -> None:
    message = dkim_key.sign(report_email(report_json("smtp-tls")), "reporter.example")
    with smtplib.SMTP(collector.smtp_host, collector.smtp_port, timeout=30) as smtp:
        smtp.starttls(context=collector.ssl_context())  # verifies the generated certificate
        code, features = smtp.ehlo("sender.example")
        assert code == 250
        assert b"AUTH" not in features
        assert b"STARTTLS" not in features
        refused = smtp.sendmail("tlsrpt@reporter.example", [MAILBOX], message)
    assert refused == {}
    assert rows_for(collector, "smtp-tls")[0][:2] == ("smtp", "pass")


def test_smtp_bad_signature_is_stored_and_flagged(collector: Collector, dkim_key: DkimKey) -> None:
    signed = dkim_key.sign(report_email(report_json("smtp-badsig")), "reporter.example")
    tampered = signed.replace(b"Report Domain:", b"Report domain:")  # the signed Subject
    with smtplib.SMTP(collector.smtp_host, collector.smtp_port, timeout=30) as smtp:
        smtp.sendmail("tlsrpt@reporter.example", [MAILBOX], tampered)
    assert rows_for(collector, "smtp-badsig")[0][:2] == ("smtp", "fail")


def test_smtp_addresses_are_parsed_as_aiosmtpd_does(collector: Collector) -> None:
    with smtplib.SMTP(collector.smtp_host, collector.smtp_port, timeout=30) as smtp:
        smtp.ehlo("sender.example")
        assert smtp.docmd("MAIL FROM:<bad@@sender.example>")[0] == 553  # malformed
        assert smtp.docmd("MAIL FROM:<>")[0] == 250  # the null sender of bounces
        smtp.rset()
        assert smtp.docmd("MAIL FROM:someone@sender.example")[0] == 250  # no brackets
        assert smtp.docmd("RCPT TO:<tlsrpt@example.com> NOTIFY=NEVER")[0] == 555  # rest kept
        assert smtp.docmd(f"RCPT TO:{MAILBOX.upper()}")[0] == 250
        assert smtp.docmd("RCPT TO:<a@b@c>")[0] == 553


def test_smtp_refusals(collector: Collector) -> None:
    with smtplib.SMTP(collector.smtp_host, collector.smtp_port, timeout=30) as smtp:
        smtp.ehlo("sender.example")
        smtp.mail("someone@sender.example")
        code, reply = smtp.rcpt("postmaster@elsewhere.example")
        assert (code, reply[:6]) == (550, b"5.1.1 ")  # no relaying, unknown mailbox
        smtp.rset()

        def send(message: bytes) -> tuple[int, bytes]:
            smtp.mail("someone@sender.example")
            assert smtp.rcpt(MAILBOX)[0] == 250
            return smtp.data(message)

        code, reply = send(b"Subject: hello\r\n\r\nno report here\r\n")
        assert code == 550
        assert reply.startswith(b"5.6.0 ") and b"no TLS report" in reply

        foreign = report_email(
            report_json("smtp-foreign", domain="victim.example"), domain="victim.example"
        )
        code, reply = send(foreign)
        assert code == 550
        assert reply.startswith(b"5.7.1 ") and b"victim.example" in reply

        broken = report_email(b'{"organization-name": "x", "policies": {}}', compress=False)
        code, reply = send(broken)
        assert code == 550
        assert reply.startswith(b"5.6.0 invalid TLS report")

        code, reply = smtp.mail("someone@sender.example", ["SIZE=2000000"])
        assert code == 552  # over the advertised SIZE
        smtp.rset()
        assert smtp.noop()[0] == 250  # the session (and the service) is still fine
    codes = quarantine_codes(collector)
    assert {"no_report", "foreign_domain", "invalid_report"} <= set(codes)
    assert query(
        collector.data_dir,
        "SELECT count(*) FROM reports WHERE report_id = 'smtp-foreign'",
    ) == [(0,)]


def test_swaks_with_an_attachment_over_starttls(collector: Collector, tmp_path: Path) -> None:
    attachment = tmp_path / "reporter.example!example.com!1!2!swaks.json.gz"
    attachment.write_bytes(gzip.compress(report_json("swaks-1")))
    result = subprocess.run(
        [
            "swaks",
            "--server",
            f"{collector.smtp_host}:{collector.smtp_port}",
            "--from",
            "tlsrpt@reporter.example",
            "--to",
            MAILBOX,
            "--tls",
            "--tls-verify",
            "--tls-ca-path",
            str(collector.ca),
            "--tls-sni",
            "localhost",
            "--header",
            "Subject: Report Domain: example.com Submitter: reporter.example Report-ID: <swaks-1>",
            "--add-header",
            "TLS-Report-Domain: example.com",
            "--add-header",
            "TLS-Report-Submitter: reporter.example",
            "--attach-type",
            "application/tlsrpt+gzip",
            "--attach-name",
            attachment.name,
            "--attach",
            f"@{attachment}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "250 2.0.0 queued as" in result.stdout
    assert rows_for(collector, "swaks-1")[0][:2] == ("smtp", "none")


def test_many_concurrent_smtp_sessions(collector: Collector) -> None:
    sessions = [
        smtplib.SMTP(collector.smtp_host, collector.smtp_port, timeout=60) for _ in range(100)
    ]
    try:
        for smtp in sessions:
            assert smtp.ehlo("sender.example")[0] == 250  # all 100 are open at once

        def deliver(n: int) -> dict[str, tuple[int, bytes]]:
            message = report_email(report_json(f"many-{n}"), report_id=f"many-{n}@x")
            return sessions[n].sendmail("tlsrpt@reporter.example", [MAILBOX], message)

        with ThreadPoolExecutor(20) as pool:
            assert list(pool.map(deliver, range(100))) == [{}] * 100
    finally:
        for smtp in sessions:
            smtp.close()
    rows = wait_for_rows(
        collector.data_dir,
        "SELECT report_id FROM reports WHERE report_id LIKE 'many-%'",
        expect=100,
    )
    assert len(rows) == 100


# HTTPS --------------------------------------------------------------------------------


def test_https_gzip_json_and_duplicate(collector: Collector) -> None:
    gz_headers = {"Content-Type": "application/tlsrpt+gzip"}
    with collector.client() as client:
        first = client.post(
            collector.url, content=gzip.compress(report_json("https-gz")), headers=gz_headers
        )
        assert first.status_code == 201
        assert first.json()["status"] == "accepted"
        plain = client.post(
            collector.url,
            content=RFC_EXAMPLE.read_bytes(),
            headers={"Content-Type": "application/tlsrpt+json"},
        )
        assert plain.status_code == 201
        again = client.post(
            collector.url, content=gzip.compress(report_json("https-gz")), headers=gz_headers
        )
        assert again.status_code == 200
        assert again.json()["status"] == "duplicate"
        # labelled +json but gzip inside: the body is sniffed
        sniffed = client.post(
            collector.url,
            content=gzip.compress(report_json("https-sniffed")),
            headers={"Content-Type": "application/tlsrpt+json; charset=utf-8"},
        )
        assert sniffed.status_code == 201
    assert rows_for(collector, "https-gz")[0][:2] == ("https", None)
    assert rows_for(collector, "https-sniffed")[0][0] == "https"
    rows = wait_for_rows(
        collector.data_dir,
        "SELECT count(*) FROM failure_details JOIN reports USING (report_key) "
        "WHERE report_id = '5065427c-23d3-47ca-b6e0-946ea0e8c4be'",
    )
    assert rows == [(3,)]
    assert query(
        collector.data_dir, "SELECT count(*) FROM reports WHERE report_id = 'https-gz'"
    ) == [(1,)]


def test_https_errors_each_with_a_reason(collector: Collector) -> None:
    json_type = {"Content-Type": "application/tlsrpt+json"}
    with collector.client() as client:
        wrong_type = client.post(
            collector.url, content=report_json("t1"), headers={"Content-Type": "text/plain"}
        )
        assert wrong_type.status_code == 415
        assert wrong_type.json()["error"] == "unsupported_media_type"

        too_big = client.post(collector.url, content=b" " * (2 * 1024 * 1024), headers=json_type)
        assert too_big.status_code == 413
        assert too_big.json()["error"] == "too_large"

        for method in ("GET", "PUT", "DELETE"):
            response = client.request(method, collector.url)
            assert response.status_code == 405, method
            assert response.json()["error"] == "method_not_allowed"
            assert "POST" in response.headers["allow"]

        foreign = client.post(
            collector.url, content=report_json("t2", domain="victim.example"), headers=json_type
        )
        assert foreign.status_code == 403
        assert "victim.example" in foreign.json()["reason"]

        invalid = client.post(
            collector.url, content=b'{"report-id": "x", "policies": []', headers=json_type
        )
        assert invalid.status_code == 400
        assert invalid.json()["error"] == "invalid_report"
        assert invalid.json()["reason"]

        bomb = gzip.compress(b" " * (60 * 1024 * 1024))
        inflated = client.post(
            collector.url, content=bomb, headers={"Content-Type": "application/tlsrpt+gzip"}
        )
        assert inflated.status_code == 413

        assert client.get(collector.base + "/healthz").status_code == 200
        assert client.get(collector.base + "/elsewhere").status_code == 404
    assert query(
        collector.data_dir, "SELECT count(*) FROM reports WHERE report_id IN ('t1', 't2')"
    ) == [(0,)]
    assert "foreign_domain" in quarantine_codes(collector)


def test_curl_data_binary(collector: Collector, tmp_path: Path) -> None:
    body = tmp_path / "report.json.gz"
    body.write_bytes(gzip.compress(report_json("curl-1")))
    result = subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--cacert",
            str(collector.ca),
            "--header",
            "Content-Type: application/tlsrpt+gzip",
            "--data-binary",
            f"@{body}",
            "--write-out",
            "\n%{http_code}",
            collector.url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    payload, status = result.stdout.rsplit("\n", 1)
    assert status == "201"
    assert json.loads(payload)["status"] == "accepted"
    assert rows_for(collector, "curl-1")[0][0] == "https"


def test_slow_upload_times_out(tmp_path: Path) -> None:
    with running_collector(
        tmp_path / "data", "--upload-timeout", "1", "--idle-timeout", "1"
    ) as collector:
        context = collector.ssl_context()
        port = int(collector.url.split(":")[2].split("/")[0])
        with (
            socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(
                b"POST /tlsrpt HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/tlsrpt+json\r\nContent-Length: 1000\r\n\r\n{"
            )
            answer = tls.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408 ")
        with socket.create_connection(
            (collector.smtp_host, collector.smtp_port), timeout=30
        ) as smtp:
            banner = smtp.recv(1024)
            assert banner.startswith(b"220 ") and b"tlsrpt-collector" in banner
            time.sleep(2)  # say nothing: the idle limit closes the session
            rest = smtp.recv(1024)
        assert rest == b"" or rest.startswith(b"421")
        with collector.client() as client:
            assert client.get(collector.base + "/healthz").status_code == 200


def test_the_session_limit_waits_for_the_reply_to_a_message_being_checked(
    tmp_path: Path, dkim_key: DkimKey
) -> None:
    """Hanging up while a message is checked would leave it stored but unacknowledged,
    and the sender would send it again."""
    zone = Zone({"sel._domainkey.reporter.example": [dkim_key.txt_strings()]}, delay=2.0)
    with (
        serve_zone(zone) as dns_port,
        running_collector(
            tmp_path / "data",
            "--max-session",
            "1",
            "--nameserver",
            "127.0.0.1",
            "--dns-port",
            str(dns_port),
        ) as collector,
    ):
        message = dkim_key.sign(report_email(report_json("slow-dkim")), "reporter.example")
        with smtplib.SMTP(collector.smtp_host, collector.smtp_port, timeout=30) as smtp:
            start = time.monotonic()
            assert smtp.sendmail("tlsrpt@reporter.example", [MAILBOX], message) == {}
            assert time.monotonic() - start > 1.5  # answered after the session limit
        assert rows_for(collector, "slow-dkim")[0][:2] == ("smtp", "pass")


def test_connections_over_the_limit_are_turned_away_and_served_later(tmp_path: Path) -> None:
    with running_collector(tmp_path / "data", "--max-connections", "3") as collector:
        sessions = [smtplib.SMTP(collector.smtp_host, collector.smtp_port) for _ in range(3)]
        try:
            assert all(smtp.noop()[0] == 250 for smtp in sessions)
            with pytest.raises(smtplib.SMTPConnectError) as refused:
                smtplib.SMTP(collector.smtp_host, collector.smtp_port, timeout=30)
            assert refused.value.smtp_code == 421
        finally:
            sessions.pop().quit()
        with smtplib.SMTP(collector.smtp_host, collector.smtp_port, timeout=30) as smtp:
            smtp.sendmail(
                "tlsrpt@reporter.example",
                ["any@example.com"],
                report_email(report_json("after-the-limit"), report_id="after-the-limit@x"),
            )
        for smtp in sessions:
            smtp.quit()

        clients = [collector.client() for _ in range(4)]
        try:
            answers = [c.get(collector.base + "/healthz").status_code for c in clients[:3]]
            assert answers == [200, 200, 200]  # three kept alive
            assert clients[3].get(collector.base + "/healthz").status_code == 503
            clients[0].close()
            time.sleep(0.5)
            response = clients[3].post(
                collector.url,
                content=report_json("https-after-the-limit"),
                headers={"Content-Type": "application/tlsrpt+json"},
            )
            assert response.status_code == 201
        finally:
            for client in clients:
                client.close()
        assert "refusing more (421)" in collector.log()
        wait_for_rows(
            collector.data_dir,
            "SELECT 1 FROM reports WHERE report_id IN ('after-the-limit', 'https-after-the-limit')",
            expect=2,
        )


# Readers and other writers ------------------------------------------------------------


def test_a_reader_holding_the_database_delays_storage_but_loses_nothing(
    collector: Collector,
) -> None:
    wait_for_rows(collector.data_dir, "SELECT 1 FROM reports LIMIT 1")
    path = collector.data_dir / "tlsrpt.duckdb"
    reader = duckdb.connect(str(path), read_only=True)
    try:
        with collector.client() as client:
            response = client.post(
                collector.url,
                content=report_json("while-reading"),
                headers={"Content-Type": "application/tlsrpt+json"},
            )
        assert response.status_code == 201  # the reader does not make the collector refuse
        time.sleep(1.5)
        spooled = list((collector.data_dir / "spool").glob("*.spool"))
        assert spooled, "the report waits in the spool while the reader holds the file"
        assert reader.execute(
            "SELECT count(*) FROM reports WHERE report_id = 'while-reading'"
        ).fetchall() == [(0,)]
    finally:
        reader.close()
    assert rows_for(collector, "while-reading")[0][0] == "https"
    deadline = time.monotonic() + 30
    while list((collector.data_dir / "spool").glob("*.spool")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not list((collector.data_dir / "spool").glob("*.spool"))


def test_import_refuses_while_the_collector_runs(collector: Collector) -> None:
    result = run_cli("import", "--data-dir", collector.data_dir, RFC_EXAMPLE, expect=1)
    assert "tlsrpt serve" in result.output
    assert "Traceback" not in result.output


def test_summary_reads_while_the_collector_runs(collector: Collector) -> None:
    rows_for(collector, "https-gz")
    result = run_cli("summary", "--data-dir", collector.data_dir, "--json")
    domains = {row["policy_domain"] for row in json.loads(result.output)}
    assert "example.com" in domains


def test_require_dkim_refuses_unsigned_mail(tmp_path: Path) -> None:
    with running_collector(
        tmp_path / "data", "--require-dkim", "--nameserver", "127.0.0.1", "--dns-port", "9"
    ) as collector:
        message = report_email(report_json("unsigned"))
        with (
            smtplib.SMTP(collector.smtp_host, collector.smtp_port, timeout=30) as smtp,
            pytest.raises(smtplib.SMTPDataError) as refused,
        ):
            smtp.sendmail("tlsrpt@reporter.example", [MAILBOX], message)
        assert refused.value.smtp_code == 550
        assert refused.value.smtp_error.startswith(b"5.7.20 no passing DKIM signature (DKIM none)")
        # HTTPS has no DKIM: it is not affected
        with collector.client() as client:
            response = client.post(
                collector.url,
                content=report_json("https-ok"),
                headers={"Content-Type": "application/tlsrpt+json"},
            )
        assert response.status_code == 201
        assert wait_for_rows(collector.data_dir, "SELECT report_id FROM reports") == [("https-ok",)]
    assert quarantine_codes(collector) == ["unauthenticated"]


def test_starttls_context_is_checked(collector: Collector) -> None:
    """A client that does not trust our CA fails the handshake (the certificate is real)."""
    with (
        smtplib.SMTP(collector.smtp_host, collector.smtp_port, timeout=30) as smtp,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        smtp.starttls(context=ssl.create_default_context())
