"""How long `tlsrpt check` takes on loopback, and how close a silent host keeps it to its
time limit.

Run from the repository root: `.venv/bin/python -m benchmarks.check_timeouts`.
Baseline: a full check of a valid setup (DNS, HTTPS policy, two MXes with STARTTLS).
Then the same check with the policy host and the MXes on a port that accepts and never
answers: one policy fetch and two MX probes, each bounded by --timeout, so the expected
time is 3 x timeout plus the baseline.
"""

from __future__ import annotations

import ssl
import tempfile
import time
from pathlib import Path

import trustme
from click.testing import CliRunner

from tests.support.dns_zone import Zone, serve_zone
from tests.support.policy_site import Page, serve_policies
from tests.support.smtp_mx import serve_mx, silent_port
from tlsrpt.cli import main

POLICY = (
    b"version: STSv1\nmode: testing\nmx: mx1.example.com\nmx: mx2.example.com\nmax_age: 86400\n"
)


def _context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


def _run(args: list[str]) -> float:
    start = time.perf_counter()
    result = CliRunner().invoke(main, args)
    elapsed = time.perf_counter() - start
    if result.exit_code not in (0, 1):
        raise SystemExit(result.output)
    return elapsed


def main_() -> None:
    ca = trustme.CA()
    zone = Zone()
    zone.txt["_smtp._tls.example.com"] = [[b"v=TLSRPTv1; rua=mailto:tlsrpt@example.com"]]
    zone.txt["_mta-sts.example.com"] = [[b"v=STSv1; id=1;"]]
    zone.mx["example.com"] = [(10, "mx1.example.com"), (20, "mx2.example.com")]
    for host in ("mta-sts.example.com", "mx1.example.com", "mx2.example.com"):
        zone.a[host] = ["127.0.0.1"]
    web = _context(ca.issue_cert("mta-sts.example.com"))
    mx = _context(ca.issue_cert("mx1.example.com", "mx2.example.com"))
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve_zone(zone) as dns_port,
        serve_policies({"mta-sts.example.com": Page(POLICY)}, web) as https_port,
        serve_mx(mx) as smtp_port,
        silent_port() as silent,
    ):
        ca_file = Path(tmp) / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        base = ["check", "example.com", "--nameserver", f"127.0.0.1:{dns_port}"]
        base += ["--ca-file", str(ca_file)]
        runs = 5
        baseline = min(
            _run([*base, "--https-port", str(https_port), "--smtp-port", str(smtp_port)])
            for _ in range(runs)
        )
        print(f"valid setup, full check: {baseline * 1000:.0f} ms (best of {runs})")
        for limit in (0.5, 1.0, 2.0):
            args = [*base, "--https-port", str(silent), "--smtp-port", str(silent)]
            elapsed = _run([*args, "--timeout", str(limit)])
            expected = 3 * limit + baseline
            print(
                f"silent hosts, --timeout {limit:g}: {elapsed:.2f} s, "
                f"expected {expected:.2f} s, ratio {elapsed / expected:.2f}"
            )


if __name__ == "__main__":
    main_()
