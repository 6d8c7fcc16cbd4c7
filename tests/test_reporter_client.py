"""A real, independent sender: sys4's tlsrpt-reporter (what Postfix sites run) delivers
reports it built to our SMTP listener (through its `sendmail_script`) and to our HTTPS
endpoint (through its `http_script`, curl).

Its collectd gets libtlsrpt datagrams on a Unix socket (the rua comes from the TLS-RPT
record inside each datagram, so no DNS is needed), SIGUSR2 makes it relabel today's data
as yesterday's, and its reportd then builds yesterday's reports and delivers them.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.collector import running_collector, wait_for_rows

BIN = Path(sys.executable).parent
SENDMAIL = Path(__file__).parent / "support" / "sendmail.py"
STS_LINES = ["version: STSv1", "mode: testing", "mx: mx.example.com", "max_age: 86400"]


def datagram(domain: str, record: str, failure: dict[str, object] | None) -> bytes:
    """One delivery attempt as libtlsrpt reports it (see libtlsrpt.c)."""
    policy: dict[str, object] = {
        "policy-type": 2,  # sts
        "policy-domain": domain,
        "policy-string": STS_LINES,
        "mx-host": ["mx." + domain],
        "t": 0,
        "f": 0,
    }
    if failure is not None:
        policy.update({"failure-details": [failure], "t": 1, "f": 1})
    return json.dumps({"d": domain, "pr": record, "policies": [policy], "dpv": "1"}).encode()


def spawn(program: str, config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [str(BIN / program), "--config_file", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )


def wait_for(condition, timeout: float = 60) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def sent(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return int(
            con.execute("SELECT count(*) FROM destinations WHERE status = 'sent'").fetchone()[0]
        )
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def sessions_in(db: Path) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(db)
    try:
        return int(
            con.execute("SELECT coalesce(sum(cntrtotal), 0) FROM finalresults").fetchone()[0]
        )
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def test_tlsrpt_reporter_delivers_by_mail_and_https(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with running_collector(
        data_dir,
        "--domain",
        "example.com",
        "--domain",
        "example.net",
        "--domain",
        "example.org",
        "--mailbox",
        "tlsrpt@example.com",
    ) as collector:
        work = tmp_path / "reporter"
        work.mkdir()
        collectd_db = work / "collectd.sqlite"
        sock_path = work / "collectd.sock"
        config = work / "tlsrpt.cfg"
        http_script = (
            f"curl --silent --fail --cacert {collector.ca} "
            "--header 'Content-Type: application/tlsrpt+gzip' --data-binary @-"
        )
        smtp_at = f"{collector.smtp_host} {collector.smtp_port}"
        sendmail_script = f"{sys.executable} {SENDMAIL} {smtp_at} {collector.ca}"
        config.write_text(
            f"""[tlsrpt_collectd]
storage = sqlite://{collectd_db}
socketname = {sock_path}
max_uncommited_datagrams = 1
sockettimeout = 1
log_level = info

[tlsrpt_fetcher]
storage = sqlite://{collectd_db}
log_level = warn

[tlsrpt_reportd]
organization_name = Sender Example Inc
contact_info = tlsrpt-noreply@sender.example
sender_address = tlsrpt-noreply@sender.example
dbname = {work / "reportd.sqlite"}
fetchers = {BIN / "tlsrpt-fetcher"} --config_file {config}
sendmail_script = {sendmail_script}
http_script = {http_script}
spread_out_delivery = 1
interval_main_loop = 1
max_retries_domainlist = 5
min_wait_domainlist = 0
max_wait_domainlist = 1
max_retries_domaindetails = 5
min_wait_domaindetails = 0
max_wait_domaindetails = 1
min_wait_delivery = 0
max_wait_delivery = 1
log_level = info
"""
        )
        collectd = spawn("tlsrpt-collectd", config, work / "collectd.log")
        reportd: subprocess.Popen[bytes] | None = None
        try:
            assert wait_for(sock_path.exists), (work / "collectd.log").read_text()
            mail_record = "v=TLSRPTv1;rua=mailto:tlsrpt@example.com"
            https_record = f"v=TLSRPTv1; rua={collector.url}"
            both_record = f"v=TLSRPTv1; rua=mailto:tlsrpt@example.com,{collector.url}"
            expired = {"c": 204, "s": "192.0.2.10", "n": "mx.example.com", "r": "198.51.100.7"}
            fetch_error = {"c": 301, "s": "192.0.2.11", "f": "bad https response code: 404"}
            grams = (
                [datagram("example.com", mail_record, None)] * 5
                + [datagram("example.com", mail_record, expired)] * 2
                + [datagram("example.net", https_record, None)] * 3
                + [datagram("example.net", https_record, fetch_error)]
                + [datagram("example.org", both_record, None)] * 2
            )
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
                for gram in grams:
                    sender.sendto(gram, str(sock_path))
            assert wait_for(lambda: sessions_in(collectd_db) == len(grams))
            collectd.send_signal(signal.SIGUSR2)  # today's data becomes yesterday's
            assert wait_for(lambda: sessions_in(Path(f"{collectd_db}.yesterday")) == len(grams))

            reportd = spawn("tlsrpt-reportd", config, work / "reportd.log")
            rows = wait_for_rows(
                data_dir,
                "SELECT report_id, organization_name, contact_info, channel, dkim_result, "
                "tls_report_domain, tls_report_submitter, report_date, "
                "policy_type, policy_domain, policy_mode, mx_host, "
                "total_successful_session_count, total_failure_session_count "
                "FROM reports JOIN policies USING (report_key) ORDER BY policy_domain",
                expect=3,
            )
            assert len(rows) == 3, (work / "reportd.log").read_text()
            # example.org asked for both transports: wait until reportd delivered all four
            assert wait_for(lambda: sent(work / "reportd.sqlite") == 4)
        finally:
            for process in (reportd, collectd):
                if process is not None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(timeout=30)

        yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
        by_mail, by_https, by_both = rows
        assert by_mail == (
            f"{yesterday.isoformat()}T00:00:00Z_idx1_example.com",
            "Sender Example Inc",
            "tlsrpt-noreply@sender.example",
            "smtp",
            "none",  # reportd does not sign its mail
            "example.com",
            "sender.example",
            yesterday,
            "sts",
            "example.com",
            "testing",
            ["mx.example.com"],
            5,
            2,
        )
        assert by_https[0] == f"{yesterday.isoformat()}T00:00:00Z_idx1_example.net"
        assert by_https[3:5] == ("https", None)
        assert by_https[8:] == ("sts", "example.net", "testing", ["mx.example.net"], 3, 1)

        assert by_both[8:] == ("sts", "example.org", "testing", ["mx.example.org"], 2, 0)
        stored = wait_for_rows(data_dir, "SELECT count(*) FROM reports")
        assert stored == [(3,)]  # the report sent by mail and by HTTPS is stored once

        details = wait_for_rows(
            data_dir,
            "SELECT policy_domain, result_type, sending_mta_ip, receiving_mx_hostname, "
            "receiving_ip, failed_session_count, failure_reason_code "
            "FROM failure_details JOIN policies USING (report_key, policy_index) "
            "ORDER BY policy_domain",
            expect=2,
        )
        assert details == [
            (
                "example.com",
                "certificate-expired",
                "192.0.2.10",
                "mx.example.com",
                "198.51.100.7",
                2,
                None,
            ),
            (
                "example.net",
                "sts-policy-fetch-error",
                "192.0.2.11",
                None,
                None,
                1,
                "bad https response code: 404",
            ),
        ]
        assert not list((data_dir / "quarantine").glob("*.json"))
