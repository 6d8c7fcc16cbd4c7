"""`tlsrpt serve` as a real subprocess on free loopback ports, and ways to talk to it."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx

from ingest.collector_lock import holder

TLSRPT = Path(sys.executable).with_name("tlsrpt")


@dataclass
class Collector:
    process: subprocess.Popen[bytes]
    data_dir: Path
    smtp_host: str
    smtp_port: int
    url: str
    """The report URL (https://127.0.0.1:PORT/tlsrpt)."""
    log_path: Path

    @property
    def ca(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"

    @property
    def base(self) -> str:
        return self.url.rsplit("/", 1)[0]

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(verify=self.ssl_context(), timeout=30, **kwargs)  # type: ignore[arg-type]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None


def start_collector(
    data_dir: Path, *args: str, env: dict[str, str] | None = None, own_session: bool = False
) -> Collector:
    """Start `tlsrpt serve` and wait until /healthz answers 200. `own_session`: in a
    session and process group of its own (signals can go to the whole group)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"serve-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(TLSRPT),
                "serve",
                "--data-dir",
                str(data_dir),
                "--smtp-listen",
                "127.0.0.1:0",
                "--https-listen",
                "127.0.0.1:0",
                "--hostname",
                "localhost",
                *args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=own_session,
        )
    deadline = time.monotonic() + 60
    info: dict[str, str] = {}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tlsrpt serve exited: {log_path.read_text()}")
        info = holder(data_dir)  # the listeners, once it is ready
        if info.get("pid") == process.pid and "https" in info:
            break
        time.sleep(0.05)
    else:
        process.kill()
        raise RuntimeError(f"tlsrpt serve did not start: {log_path.read_text()}")
    host, port = info["smtp"].rsplit(":", 1)
    collector = Collector(process, data_dir, host, int(port), info["https"], log_path)
    with collector.client() as client:
        assert client.get(collector.base + "/healthz").status_code == 200
    return collector


def child_processes(pid: int) -> dict[int, str]:
    """The live child processes of a process, with their command lines."""
    found: dict[int, str] = {}
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = [int(child) for child in task.read_text().split()]
        except OSError:
            continue
        for child in children:
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if is_running(child):
                found[child] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def is_running(pid: int) -> bool:
    """Alive and not a zombie (nothing may reap orphans here)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def stop_collector(collector: Collector, sig: int = signal.SIGTERM) -> int:
    collector.process.send_signal(sig)
    return collector.process.wait(timeout=60)


@contextmanager
def running_collector(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[Collector]:
    collector = start_collector(data_dir, *args, env=env)
    try:
        yield collector
    finally:
        if collector.alive():
            code = stop_collector(collector)
            assert code == 0, collector.log()


def query(data_dir: Path, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    """One read-only query, the way readers must do it while the collector runs."""
    from ingest.database import connect, database_path

    with connect(database_path(data_dir), read_only=True, wait=30) as con:
        return con.execute(sql, params or []).fetchall()


def wait_for_rows(
    data_dir: Path, sql: str, params: list[object] | None = None, expect: int = 1
) -> list[tuple[object, ...]]:
    """Poll until the query returns `expect` rows (reports show up within seconds)."""
    deadline = time.monotonic() + 30
    rows: list[tuple[object, ...]] = []
    while time.monotonic() < deadline:
        try:
            rows = query(data_dir, sql, params)
        except (duckdb.CatalogException, duckdb.IOException):
            rows = []
        if len(rows) >= expect:
            return rows
        time.sleep(0.1)
    return rows


def stored_report_ids(data_dir: Path) -> list[str]:
    return [str(r[0]) for r in query(data_dir, "SELECT report_id FROM reports")]


def report_json(report_id: str, domain: str = "example.com", org: str = "Reporter Inc") -> bytes:
    """A small valid report."""
    return json.dumps(
        {
            "organization-name": org,
            "date-range": {
                "start-datetime": "2026-11-30T00:00:00Z",
                "end-datetime": "2026-11-30T23:59:59Z",
            },
            "contact-info": "tlsrpt@reporter.example",
            "report-id": report_id,
            "policies": [
                {
                    "policy": {
                        "policy-type": "sts",
                        "policy-string": ["version: STSv1", "mode: testing", "mx: mx.example.com"],
                        "policy-domain": domain,
                        "mx-host": ["mx.example.com"],
                    },
                    "summary": {
                        "total-successful-session-count": 10,
                        "total-failure-session-count": 1,
                    },
                    "failure-details": [
                        {
                            "result-type": "certificate-expired",
                            "sending-mta-ip": "192.0.2.1",
                            "receiving-mx-hostname": "mx.example.com",
                            "failed-session-count": 1,
                        }
                    ],
                }
            ],
        }
    ).encode()
