"""Throughput and latency of `tlsrpt serve` beside do-nothing baselines, and its memory.

    python benchmarks/bench_receivers.py [--duration 20] [--memory-duration 600]

Phases (each server a subprocess on loopback, loaded from this process with asyncio):
  SMTP  : 16 concurrent clients, one connection each, a unique report email per message,
          against (a) aiosmtpd with a handler that does nothing and (b) `tlsrpt serve`.
  HTTPS : 32 concurrent clients (keep-alive) POSTing a unique JSON report, against
          (a) uvicorn with an endpoint that reads and discards the body and (b) `tlsrpt serve`.
          Both over TLS with the same certificate.
  Memory: both loads at once against `tlsrpt serve` for --memory-duration seconds,
          sampling its memory (PSS of its processes) every second.

Every acknowledgement of `tlsrpt serve` means the raw bytes were fsynced; at the end of
each phase the script waits until every acknowledged report is in DuckDB and checks the
count. Prints reports/s, p50/p99 latency and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ingest.collector_lock import holder

ROOT = Path(__file__).resolve().parents[1]
TLSRPT = Path(sys.executable).with_name("tlsrpt")
ID_PLACEHOLDER = "@@@@@@@@@@@@@@@@@@@@@@@@"  # 24 characters, replaced by a unique id

REPORT_TEMPLATE = json.dumps(
    {
        "organization-name": "Bench Sender",
        "date-range": {
            "start-datetime": "2026-11-30T00:00:00Z",
            "end-datetime": "2026-11-30T23:59:59Z",
        },
        "contact-info": "tlsrpt@bench.example",
        "report-id": ID_PLACEHOLDER,
        "policies": [
            {
                "policy": {
                    "policy-type": "sts",
                    "policy-string": ["version: STSv1", "mode: testing", "mx: mx.example.com"],
                    "policy-domain": "example.com",
                    "mx-host": ["mx.example.com"],
                },
                "summary": {
                    "total-successful-session-count": 1000,
                    "total-failure-session-count": 2,
                },
                "failure-details": [
                    {
                        "result-type": "certificate-expired",
                        "sending-mta-ip": "192.0.2.1",
                        "receiving-mx-hostname": "mx.example.com",
                        "failed-session-count": 2,
                    }
                ],
            }
        ],
    }
)

MAIL_TEMPLATE = (
    "From: tlsrpt@bench.example\r\n"
    "To: tlsrpt@example.com\r\n"
    "Subject: Report Domain: example.com Submitter: bench.example\r\n"
    f" Report-ID: <{ID_PLACEHOLDER}>\r\n"
    "TLS-Report-Domain: example.com\r\n"
    "TLS-Report-Submitter: bench.example\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/report; report-type="tlsrpt"; boundary="b1"\r\n'
    "\r\n"
    "--b1\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "This is an aggregate TLS report.\r\n"
    "--b1\r\n"
    "Content-Type: application/tlsrpt+json\r\n"
    'Content-Disposition: attachment; filename="bench.example!example.com!1!2.json"\r\n'
    "\r\n"
    f"{REPORT_TEMPLATE}\r\n"
    "--b1--\r\n"
)


class Ids:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return f"{self.prefix}-{self.n}".ljust(len(ID_PLACEHOLDER), "x")[: len(ID_PLACEHOLDER)]


@dataclass
class Result:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    """Server CPU seconds (user + system, all threads and processes) during the run."""

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        lat = sorted(self.latencies) or [0.0]
        p50 = lat[len(lat) // 2] * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        return (
            f"{self.name:<28} {self.rate:8.1f} reports/s   p50 {p50:7.1f} ms   "
            f"p99 {p99:7.1f} ms   ({len(self.latencies)} acked, {self.errors} errors, "
            f"server CPU {self.cpu_per_report:.2f} ms/report)"
        )

    @property
    def cpu_per_report(self) -> float:
        return self.cpu / len(self.latencies) * 1000 if self.latencies else 0.0


# Load generators ------------------------------------------------------------------------


async def smtp_client(host: str, port: int, ids: Ids, deadline: float, result: Result) -> None:
    """Deliver over one connection; open a new one when the server ends the session
    (the collector caps a session at --max-session seconds, as MTAs do)."""
    while time.monotonic() < deadline:
        try:
            await smtp_session(host, port, ids, deadline, result)
        except (ConnectionError, asyncio.IncompleteReadError):
            result.errors += 1


async def smtp_session(host: str, port: int, ids: Ids, deadline: float, result: Result) -> None:
    reader, writer = await asyncio.open_connection(host, port)

    async def reply() -> bytes:
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError("closed")
            if line[3:4] != b"-":
                return line

    await reply()
    writer.write(b"EHLO bench.example\r\n")
    await reply()
    while time.monotonic() < deadline:
        report_id = ids.next()
        body = MAIL_TEMPLATE.replace(ID_PLACEHOLDER, report_id).encode()
        start = time.perf_counter()
        writer.write(b"MAIL FROM:<tlsrpt@bench.example>\r\nRCPT TO:<tlsrpt@example.com>\r\n")
        await reply()
        await reply()
        writer.write(b"DATA\r\n")
        await reply()
        writer.write(body + b".\r\n")
        answer = await reply()
        if answer.startswith(b"250"):
            result.latencies.append(time.perf_counter() - start)
        else:
            result.errors += 1
    writer.write(b"QUIT\r\n")
    await writer.drain()
    writer.close()


async def https_client(
    host: str,
    port: int,
    path: str,
    context: ssl.SSLContext,
    ids: Ids,
    deadline: float,
    result: Result,
) -> None:
    """A keep-alive HTTP/1.1 client on one TLS connection (lighter than a library client,
    so the load generator is not what is measured)."""
    reader, writer = await asyncio.open_connection(
        host, port, ssl=context, server_hostname="localhost"
    )
    while time.monotonic() < deadline:
        body = REPORT_TEMPLATE.replace(ID_PLACEHOLDER, ids.next()).encode()
        start = time.perf_counter()
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: localhost\r\n"
            f"Content-Type: application/tlsrpt+json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        status = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        if status.split()[1:2] in ([b"200"], [b"201"]):
            result.latencies.append(time.perf_counter() - start)
        else:
            result.errors += 1
    writer.close()


async def run_smtp(name: str, host: str, port: int, clients: int, seconds: float) -> Result:
    result = Result(name)
    ids = Ids(f"s{time.monotonic_ns() % 10**9}")
    deadline = time.monotonic() + seconds
    start = time.monotonic()
    await asyncio.gather(*(smtp_client(host, port, ids, deadline, result) for _ in range(clients)))
    result.seconds = time.monotonic() - start
    return result


async def run_https(name: str, url: str, ca: Path, clients: int, seconds: float) -> Result:
    result = Result(name)
    ids = Ids(f"h{time.monotonic_ns() % 10**9}")
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=str(ca))
    port = int(parts.port or 443)
    deadline = time.monotonic() + seconds
    start = time.monotonic()
    await asyncio.gather(
        *(
            https_client("127.0.0.1", port, parts.path, context, ids, deadline, result)
            for _ in range(clients)
        )
    )
    result.seconds = time.monotonic() - start
    return result


# Servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def baseline_smtp_main(port: int) -> None:
    from aiosmtpd.smtp import SMTP

    class Nothing:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 OK"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Nothing(), hostname="bench", ident="baseline"), "127.0.0.1", port
        )
        async with server:
            await server.serve_forever()

    import logging

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(main())


def baseline_https_main(port: int, cert: str, key: str) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def discard(request: Request) -> JSONResponse:
        async for _ in request.stream():
            pass
        return JSONResponse({"status": "accepted"}, status_code=201)

    app = Starlette(routes=[Route("/tlsrpt", discard, methods=["POST"])])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        ssl_certfile=cert,
        ssl_keyfile=key,
        log_level="warning",
        access_log=False,
    )


def spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, *args], cwd=ROOT)


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    data_dir: Path
    smtp_port: int
    url: str

    @property
    def ca(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"


def start_service(data_dir: Path) -> Service:
    log = (data_dir.parent / "serve.log").open("ab")
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
            "--no-dkim",
            "--domain",
            "example.com",
        ],
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = holder(data_dir)  # the listeners, once it is ready
        if info.get("pid") == process.pid and "https" in info:
            return Service(process, data_dir, int(info["smtp"].rsplit(":", 1)[1]), info["https"])
        time.sleep(0.05)
    raise RuntimeError("tlsrpt serve did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)


def process_tree(root: int) -> set[int]:
    """A process and all its descendants (the collector's intake process included)."""
    tree, frontier = {root}, [root]
    while frontier:
        for task in Path(f"/proc/{frontier.pop()}/task").glob("*/children"):
            try:
                children = [int(child) for child in task.read_text().split()]
            except OSError:
                continue
            tree.update(children)
            frontier.extend(children)
    return tree


def memory_kb(pid: int) -> dict[str, int]:
    """Memory of a process tree by process (the collector's: "receiving" and "intake"):
    proportional set sizes, so shared pages are counted once in the sum."""
    found: dict[str, int] = {}
    for member in process_tree(pid):
        try:
            rollup = Path(f"/proc/{member}/smaps_rollup").read_text().splitlines()
            command = Path(f"/proc/{member}/cmdline").read_bytes()
        except OSError:
            continue
        role = "receiving" if member == pid else "intake" if b"spawn_main" in command else "other"
        found[role] = found.get(role, 0) + sum(
            int(line.split()[1]) for line in rollup if line.startswith("Pss:")
        )
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU so far of a process tree, all threads."""
    ticks = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def measured(pid: int, run: Any) -> Result:
    """Run a load phase (a coroutine) and record the server's CPU time during it."""
    before = cpu_seconds(pid)
    result: Result = asyncio.run(run)
    result.cpu = cpu_seconds(pid) - before
    return result


def stored_count(data_dir: Path) -> int:
    from ingest.database import connect, database_path

    with connect(database_path(data_dir), read_only=True, wait=60) as con:
        ((n,),) = con.execute("SELECT count(*) FROM reports").fetchall()
        return int(n)


def wait_stored(data_dir: Path, expected: int) -> tuple[int, float]:
    start = time.monotonic()
    count = 0
    while time.monotonic() - start < 120:
        count = stored_count(data_dir)
        if count >= expected:
            break
        time.sleep(0.2)
    return count, time.monotonic() - start


# Phases ---------------------------------------------------------------------------------


def compare(ours: Result, base: Result) -> str:
    ratio = ours.rate / base.rate if base.rate else 0.0
    verdict = "meets" if ratio >= 0.5 else "BELOW"
    return f"{'ratio':<28} {ratio:8.2f} of the baseline's throughput ({verdict} the 0.5 target)"


def bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-tlsrpt-", dir=args.tmp) as tmp:
        data_dir = Path(tmp) / "data"
        service = start_service(data_dir)
        try:
            warm = asyncio.run(run_smtp("warm-up", "127.0.0.1", service.smtp_port, 4, 2))
            smtp_ours = measured(
                service.process.pid,
                run_smtp(
                    "tlsrpt serve SMTP",
                    "127.0.0.1",
                    service.smtp_port,
                    args.smtp_clients,
                    args.duration,
                ),
            )
            https_ours = measured(
                service.process.pid,
                run_https(
                    "tlsrpt serve HTTPS", service.url, service.ca, args.https_clients, args.duration
                ),
            )
            expected = len(warm.latencies) + len(smtp_ours.latencies) + len(https_ours.latencies)
            stored, lag = wait_stored(data_dir, expected)
        finally:
            stop(service.process)
        cert, key = str(data_dir / "tls" / "cert.pem"), str(data_dir / "tls" / "key.pem")

        port = free_port()
        base = spawn("--baseline-smtp", str(port))
        try:
            wait_port(port)
            asyncio.run(run_smtp("warm-up", "127.0.0.1", port, 4, 2))
            smtp_base = measured(
                base.pid,
                run_smtp(
                    "baseline aiosmtpd no-op", "127.0.0.1", port, args.smtp_clients, args.duration
                ),
            )
        finally:
            stop(base)
        port = free_port()
        base = spawn("--baseline-https", str(port), cert, key)
        try:
            wait_port(port)
            https_base = measured(
                base.pid,
                run_https(
                    "baseline uvicorn discard",
                    f"https://localhost:{port}/tlsrpt",
                    service.ca,
                    args.https_clients,
                    args.duration,
                ),
            )
        finally:
            stop(base)

        print(f"SMTP, {args.smtp_clients} concurrent clients, {args.duration:.0f} s each")
        print("  " + smtp_base.line())
        print("  " + smtp_ours.line())
        print("  " + compare(smtp_ours, smtp_base))
        print(f"HTTPS, {args.https_clients} concurrent clients, {args.duration:.0f} s each")
        print("  " + https_base.line())
        print("  " + https_ours.line())
        print("  " + compare(https_ours, https_base))
        print(
            f"Durability: {expected} acknowledged (fsynced before each ack), {stored} in DuckDB "
            f"{lag:.1f} s after the load stopped"
        )
        if stored < expected:
            print("  MISSING REPORTS")

        if args.memory_duration > 0:
            memory(Path(tmp) / "memory", args)


def memory(data_dir: Path, args: argparse.Namespace) -> None:
    service = start_service(data_dir)
    samples: list[tuple[float, dict[str, int]]] = []
    try:

        async def sample(deadline: float) -> None:
            start = time.monotonic()
            while time.monotonic() < deadline:
                samples.append((time.monotonic() - start, memory_kb(service.process.pid)))
                await asyncio.sleep(1)

        async def load() -> tuple[Result, Result]:
            deadline = time.monotonic() + args.memory_duration
            smtp, https, _ = await asyncio.gather(
                run_smtp(
                    "SMTP", "127.0.0.1", service.smtp_port, args.smtp_clients, args.memory_duration
                ),
                run_https(
                    "HTTPS", service.url, service.ca, args.https_clients, args.memory_duration
                ),
                sample(deadline),
            )
            return smtp, https

        smtp, https = asyncio.run(load())
        acked = len(smtp.latencies) + len(https.latencies)
        stored, lag = wait_stored(data_dir, acked)
    finally:
        stop(service.process)
    minute = max(1, min(60, len(samples) // 4))

    def mib(role: str | None, window: list[tuple[float, dict[str, int]]]) -> float:
        """Mean over the window, in MiB, of one process or (None) of all."""
        return (
            statistics.mean(
                sum(kb.values()) if role is None else kb.get(role, 0) for _, kb in window
            )
            / 1024
        )

    warm, end = samples[minute : 2 * minute], samples[-minute:]
    first, last = mib(None, warm), mib(None, end)
    peak = max(sum(kb.values()) for _, kb in samples) / 1024
    print(f"Memory, both loads for {args.memory_duration:.0f} s:")
    print(
        f"  {acked} reports acked ({acked / args.memory_duration:.0f}/s), "
        f"{smtp.errors + https.errors} errors, {stored} stored, "
        f"the last {lag:.1f} s after the load stopped"
    )
    if stored < acked:
        print("  MISSING REPORTS")
    elif stored > acked:
        print(f"  {stored - acked} stored whose acknowledgement did not reach the client")
    print(
        f"  memory (PSS) after warm-up {first:.1f} MiB, at the end {last:.1f} MiB, "
        f"peak {peak:.1f} MiB "
        f"(growth {last - first:+.1f} MiB; the known-report index takes 8 bytes a report: "
        f"{acked * 8 / 1024 / 1024:.1f} MiB)"
    )
    for role in sorted({role for _, kb in samples for role in kb}):
        print(f"    {role} process: {mib(role, warm):.1f} -> {mib(role, end):.1f} MiB")
    step = max(1, len(samples) // 10)
    print(
        "  samples (s: MiB): "
        + ", ".join(f"{t:.0f}: {sum(kb.values()) / 1024:.0f}" for t, kb in samples[::step])
    )
    # one-minute means: single samples swing with the writer's batches
    means = [samples[i : i + minute] for i in range(0, len(samples) - minute + 1, minute)]
    print(
        "  means per window of "
        f"{minute} s (MiB): " + ", ".join(f"{mib(None, window):.0f}" for window in means)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15, help="seconds per throughput run")
    parser.add_argument(
        "--memory-duration", type=float, default=0, help="seconds of the memory run (0: skip)"
    )
    parser.add_argument("--smtp-clients", type=int, default=16)
    parser.add_argument("--https-clients", type=int, default=32)
    parser.add_argument("--tmp", default=None, help="folder for the data directories")
    parser.add_argument("--baseline-smtp", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--baseline-https", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_smtp:
        baseline_smtp_main(args.baseline_smtp)
    elif args.baseline_https:
        port, cert, key = args.baseline_https
        baseline_https_main(int(port), cert, key)
    else:
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        bench(args)


if __name__ == "__main__":
    main()
