"""Faults: kill -9 in the middle of a burst, graceful stop, bad settings."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import smtplib
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import run_cli
from tests.support.collector import (
    Collector,
    child_processes,
    is_running,
    query,
    report_json,
    running_collector,
    start_collector,
    stop_collector,
)
from tests.support.mail import report_email


class Burst:
    """Client threads delivering unique reports until told to stop or refused."""

    def __init__(self, collector: Collector, smtp_clients: int, https_clients: int) -> None:
        self.collector = collector
        self.acked: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._guard, args=(self._smtp, f"s{n}"), daemon=True)
            for n in range(smtp_clients)
        ] + [
            threading.Thread(target=self._guard, args=(self._https, f"h{n}"), daemon=True)
            for n in range(https_clients)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def count(self) -> int:
        with self._lock:
            return len(self.acked)

    def _ack(self, report_id: str) -> None:
        with self._lock:
            self.acked.append(report_id)

    def _guard(self, body: Callable[[str], None], name: str) -> None:
        # the service going away ends the burst: what was acknowledged is what counts
        with contextlib.suppress(OSError, smtplib.SMTPException, httpx.HTTPError):
            body(name)

    def _smtp(self, name: str) -> None:
        c = self.collector
        with smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=30) as smtp:
            n = 0
            while not self._stop.is_set():
                report_id = f"burst-{name}-{n}"
                n += 1
                message = report_email(report_json(report_id), report_id=f"{report_id}@x")
                refused = smtp.sendmail("a@reporter.example", ["tlsrpt@example.com"], message)
                if not refused:  # sendmail raises unless the reply was 250
                    self._ack(report_id)

    def _https(self, name: str) -> None:
        with self.collector.client() as client:
            n = 0
            while not self._stop.is_set():
                report_id = f"burst-{name}-{n}"
                n += 1
                response = client.post(
                    self.collector.url,
                    content=gzip.compress(report_json(report_id)),
                    headers={"Content-Type": "application/tlsrpt+gzip"},
                )
                if response.status_code == 201:
                    self._ack(report_id)


def wait_until(condition: Callable[[], bool], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def counts_by_id(data_dir: Path) -> dict[str, int]:
    rows = query(data_dir, "SELECT report_id, count(*) FROM reports GROUP BY report_id")
    return {str(r): int(str(n)) for r, n in rows}


def spool_files(data_dir: Path) -> list[Path]:
    return list((data_dir / "spool").iterdir())


def test_kill_9_in_a_burst_loses_no_acknowledged_report(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    collector = start_collector(data_dir, "--no-dkim")
    burst = Burst(collector, smtp_clients=4, https_clients=4)
    burst.start()
    assert wait_until(lambda: burst.count() >= 150), collector.log()
    os.kill(collector.process.pid, signal.SIGKILL)
    collector.process.wait(timeout=30)
    burst.stop()
    acked = list(burst.acked)
    assert len(acked) >= 150

    with running_collector(data_dir, "--no-dkim") as restarted:
        assert wait_until(lambda: set(acked) <= set(counts_by_id(data_dir)))
        assert wait_until(lambda: not spool_files(data_dir)), spool_files(data_dir)
        stored = counts_by_id(data_dir)
        assert all(stored[report_id] == 1 for report_id in acked)
        assert all(n == 1 for n in stored.values())
        assert "spool from an earlier run" in restarted.log() or set(acked) <= set(stored)


def intake_process(collector: Collector) -> int:
    """The collector's intake process (not multiprocessing's resource tracker)."""
    (pid,) = [
        pid
        for pid, cmdline in child_processes(collector.process.pid).items()
        if "spawn_main" in cmdline
    ]
    return pid


def test_the_intake_process_ends_with_a_killed_collector(tmp_path: Path) -> None:
    collector = start_collector(tmp_path / "data", "--no-dkim")
    children = child_processes(collector.process.pid)
    assert intake_process(collector) in children
    os.kill(collector.process.pid, signal.SIGKILL)
    collector.process.wait(timeout=30)
    # it must not hold the database or the spool when the collector is started again
    assert wait_until(lambda: not any(is_running(pid) for pid in children), timeout=10)


def test_a_failed_intake_process_stops_the_collector_and_loses_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    collector = start_collector(data_dir, "--no-dkim")
    burst = Burst(collector, smtp_clients=2, https_clients=4)
    burst.start()
    assert wait_until(lambda: burst.count() >= 60), collector.log()
    os.kill(intake_process(collector), signal.SIGKILL)
    code = collector.process.wait(timeout=60)
    burst.stop()
    assert code == 1, collector.log()
    log = collector.log()
    assert "the intake process ended unexpectedly" in log
    assert log.rstrip().endswith("Error: the intake process ended unexpectedly (see the log above)")
    acked = list(burst.acked)
    with running_collector(data_dir, "--no-dkim"):
        assert wait_until(lambda: set(acked) <= set(counts_by_id(data_dir)))
        assert all(n == 1 for n in counts_by_id(data_dir).values())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_whole_process_group_stops_gracefully(tmp_path: Path, sig: int) -> None:
    """Ctrl-C in a terminal, or systemd stopping the service: every process of the
    group gets the signal; the receiving process leads the shutdown."""
    data_dir = tmp_path / "data"
    collector = start_collector(data_dir, "--no-dkim", own_session=True)
    burst = Burst(collector, smtp_clients=2, https_clients=4)
    burst.start()
    assert wait_until(lambda: burst.count() >= 60), collector.log()
    os.killpg(collector.process.pid, sig)
    code = collector.process.wait(timeout=60)
    burst.stop()
    assert code == 0, collector.log()
    assert "stopped:" in collector.log()
    assert set(burst.acked) <= set(counts_by_id(data_dir))
    assert not spool_files(data_dir)


def test_sigterm_finishes_deliveries_in_flight(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    collector = start_collector(data_dir, "--no-dkim")
    burst = Burst(collector, smtp_clients=2, https_clients=6)
    burst.start()
    assert wait_until(lambda: burst.count() >= 60), collector.log()
    code = stop_collector(collector, signal.SIGTERM)
    burst.stop()
    assert code == 0, collector.log()
    assert "stopped:" in collector.log()
    acked = set(burst.acked)
    stored = counts_by_id(data_dir)  # the service is gone: the file is ours to read
    assert acked <= set(stored)
    assert not spool_files(data_dir)
    assert not (data_dir / "collector.lock").read_text()


def test_settings_from_a_toml_file_and_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "collector.toml"
    config.write_text(
        '[serve]\ndomain = ["example.com"]\nhttps-path = "/from-file"\n'
        'mailbox = ["tlsrpt@example.com"]\nquarantine_days = 7\n'
    )
    env = {"TLSRPT_HTTPS_PATH": "/from-env", "TLSRPT_CONFIG": str(config)}
    with running_collector(tmp_path / "data", "--no-dkim", env=env) as collector:
        assert collector.url.endswith("/from-env")  # the environment wins over the file
        with collector.client() as client:
            ok = client.post(
                collector.url,
                content=report_json("cfg-1"),
                headers={"Content-Type": "application/tlsrpt+json"},
            )
            foreign = client.post(
                collector.url,
                content=report_json("cfg-2", domain="other.example"),
                headers={"Content-Type": "application/tlsrpt+json"},
            )
        assert (ok.status_code, foreign.status_code) == (201, 403)  # domain from the file
        log = collector.log()
        assert '_smtp._tls.example.com. IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@example.com,' in log
        assert "self-signed certificate" in log


def test_bad_settings_are_one_line_errors(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('smtp-lisen = "127.0.0.1:25"\n')
    result = run_cli("serve", "--config", config, expect=2)
    assert "unknown setting 'smtp-lisen'" in result.output
    result = run_cli("serve", "--data-dir", tmp_path / "d", "--smtp-listen", "nowhere", expect=1)
    assert result.output.strip().endswith("expected HOST:PORT")
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    result = run_cli("serve", "--data-dir", tmp_path / "d", "--tls-cert", cert, expect=1)
    assert "both --tls-cert and --tls-key" in result.output


def test_a_second_collector_on_the_same_data_dir_refuses(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with running_collector(data_dir, "--no-dkim") as first:
        result = run_cli("serve", "--data-dir", data_dir, "--smtp-listen", "127.0.0.1:0", expect=1)
        assert f"pid {first.process.pid}" in result.output
        assert first.alive()


def test_every_serve_option_is_documented() -> None:
    from tests.conftest import REPO
    from tlsrpt.commands.serve import serve_command

    readme = (REPO / "README.md").read_text()
    assert "tlsrpt serve" in readme.split("## Tests")[0]  # the first-run command
    help_text = run_cli("serve", "--help").output
    for param in serve_command.params:
        if getattr(param, "hidden", False):
            continue
        names = [*param.opts, *param.secondary_opts]
        assert any(f"`{name}" in readme for name in names), names
        assert any(name in help_text for name in names), names


def test_start_recovers_what_an_earlier_run_left_in_the_spool(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from ingest.model import Channel
    from ingest.spool import Spool, SpoolEntry

    data_dir = tmp_path / "data"
    spool = Spool(data_dir)
    now = datetime.now(UTC)

    def spool_file(name: str, records: list[tuple[SpoolEntry, bytes]], tail: bytes = b"") -> None:
        data = b"".join(entry.header(len(raw)) + raw for entry, raw in records)
        (spool.dir / f"{name}.spool").write_bytes(data + tail)

    records = [
        (SpoolEntry(f"g1-{i}", Channel.HTTPS, now, "https:192.0.2.9"), report_json(f"left-{i}"))
        for i in range(3)
    ]
    records.append((SpoolEntry("g1-3", Channel.HTTPS, now, None), b'{"not": "a report"}'))
    spool_file("g1", records)
    mail = report_email(report_json("left-mail"), report_id="left-mail@x")
    spool_file("g2", [(SpoolEntry("g2-0", Channel.SMTP, now, "smtp:192.0.2.9"), mail)])
    (spool.dir / "g3.spool").write_bytes(b'{"id": "g3-0", "size": 5}\n{"a"')  # damaged
    (spool.dir / ".g4.spool.tmp").write_bytes(b"never acknowledged")
    # a whole record, then one cut short by a crash in the middle of a write
    whole = (SpoolEntry("g5-0", Channel.HTTPS, now, None), report_json("left-whole"))
    body = report_json("left-cut")
    cut = SpoolEntry("g5-1", Channel.HTTPS, now, None).header(len(body)) + body[:100]
    spool_file("g5", [whole], tail=cut)

    with running_collector(data_dir, "--no-dkim") as collector:
        wanted = {"left-0", "left-1", "left-2", "left-mail", "left-whole"}
        assert wait_until(lambda: wanted <= set(counts_by_id(data_dir)))
        assert wait_until(lambda: not spool_files(data_dir)), spool_files(data_dir)
        assert "spool from an earlier run: 5 report(s) to store, 1 refused" in collector.log()
        assert "spool file g5: record g5-1 is cut short" in collector.log()
        channels = dict(query(data_dir, "SELECT report_id, channel FROM reports"))
        assert channels == {
            "left-0": "https",
            "left-1": "https",
            "left-2": "https",
            "left-mail": "smtp",
            "left-whole": "https",
        }
    quarantined = {
        json.loads(p.read_text())["code"]: (data_dir / "quarantine" / f"{p.stem}.raw").read_bytes()
        for p in (data_dir / "quarantine").glob("*.json")
        if json.loads(p.read_text())["code"] != "bad_spool_file"
    }
    assert quarantined == {"invalid_report": b'{"not": "a report"}'}
    kept = sorted(
        (data_dir / "quarantine" / f"{p.stem}.raw").read_bytes()
        for p in (data_dir / "quarantine").glob("*.json")
        if json.loads(p.read_text())["code"] == "bad_spool_file"
    )
    assert kept == sorted([cut, b'{"id": "g3-0", "size": 5}\n{"a"'])  # nothing is dropped


def test_quarantine_retention_is_applied(tmp_path: Path) -> None:
    from ingest.quarantine import Quarantine

    data_dir = tmp_path / "data"
    quarantine = Quarantine(data_dir)
    old = quarantine.put(b"old spam", code="no_report", reason="x", channel="smtp", source=None)
    recent = quarantine.put(b"new spam", code="no_report", reason="x", channel="smtp", source=None)
    two_days_ago = time.time() - 2 * 86400
    os.utime(quarantine.dir / f"{old.id}.json", (two_days_ago, two_days_ago))
    with running_collector(data_dir, "--no-dkim", "--quarantine-days", "1") as collector:
        assert wait_until(lambda: not (quarantine.dir / f"{old.id}.raw").exists())
        assert "quarantine: removed 1 entries older than 1 days" in collector.log()
    assert [e.id for e in quarantine.entries()] == [recent.id]
