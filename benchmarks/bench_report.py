#!/usr/bin/env python3
"""Benchmark: the weekly report for one domain over a store of N synthetic reports.

Measures, each in its own process (so peak memory is that of the work alone):
* report:   `analysis.weekly_report.write_report` for one domain and week (all queries,
            charts, verdict, HTML), reading the DuckDB store;
* baseline: the same aggregates computed with pandas straight from the raw report files
            (read and gunzip every file, flatten the domain's policies and failure details,
            group by), i.e. what one would do without the store.
Both print check figures (sessions and failures of the week) that must agree.

The corpus (make_synthetic.py) and the store (built with the importer) are made once and
kept in a cache folder outside git (default ~/.cache/tlsrpt-bench/reports-N/), so later
runs only measure.

Usage: .venv/bin/python benchmarks/bench_report.py [--reports 1000000] [--week 2025-W12]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO.parent / "shared" / "corpus" / "make_synthetic.py"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tlsrpt-bench"


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would carry over the peak of
    the parent across fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- preparing the data


def ensure_corpus(folder: Path, reports: int) -> Path:
    corpus = folder / "corpus"
    done = folder / "corpus.done"
    if done.exists():
        return corpus
    print(f"generating {reports:,} synthetic reports into {corpus} ...", flush=True)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, str(GENERATOR), str(corpus), "-n", str(reports)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    done.write_text(f"{time.perf_counter() - start:.1f}\n")
    print(f"  generated in {time.perf_counter() - start:.0f} s", flush=True)
    return corpus


def ensure_store(folder: Path, corpus: Path) -> Path:
    data_dir = folder / "data"
    done = folder / "store.done"
    if done.exists():
        return data_dir
    from ingest.importer import import_inputs
    from ingest.intake import IntakeRules
    from ingest.sources import find_inputs

    print(f"importing {corpus} into {data_dir} ...", flush=True)
    start = time.perf_counter()
    summary = import_inputs(find_inputs([corpus]), data_dir, IntakeRules())
    seconds = time.perf_counter() - start
    print(
        f"  imported {summary.imported:,} reports in {seconds:.0f} s "
        f"({summary.imported / seconds:,.0f}/s), {summary.rejected} refused",
        flush=True,
    )
    done.write_text(json.dumps({"imported": summary.imported, "seconds": seconds}) + "\n")
    return data_dir


# ---------------------------------------------------------------- the two measurements


def measure_report(data_dir: Path, domain: str, week: str) -> dict[str, Any]:
    from analysis import queries
    from analysis.weekly_report import write_report
    from analysis.window import iso_week

    window = iso_week(week)
    libraries_mb = peak_mb()
    start = time.perf_counter()
    written = write_report(data_dir, domain, window)
    seconds = time.perf_counter() - start
    daily = queries.sessions_per_day(data_dir, [domain], window)
    by_sender = queries.failures_by_sender(data_dir, [domain], window)
    return {
        "seconds": seconds,
        "peak_mb": peak_mb(),
        "libraries_mb": libraries_mb,
        "html_mb": written.html.stat().st_size / 1e6,
        "decision": written.decision.value,
        "check": {
            "successful": int(daily["successful"].sum()),
            "failed": int(daily["failed"].sum()),
            "detail_sessions": int(by_sender["sessions"].sum()),
            "senders": int(daily["senders"].max()) if len(daily) else 0,
        },
    }


def _policy_rows(corpus: Path, domain: str) -> Iterator[tuple[dict[str, Any], ...]]:
    for path in sorted(corpus.glob("*.json.gz")) + sorted(corpus.glob("*.json")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            report = json.load(fh)
        for index, entry in enumerate(report.get("policies", [])):
            policy = entry.get("policy", {})
            if policy.get("policy-type") == "tlsa":
                continue
            if str(policy.get("policy-domain", "")).lower().rstrip(".") != domain:
                continue
            yield report, entry, {"policy_index": index}


def measure_baseline(corpus: Path, domain: str, week: str) -> dict[str, Any]:
    import pandas as pd

    from analysis.window import Window, iso_week

    window = iso_week(week)
    libraries_mb = peak_mb()
    wide = Window(window.last.fromordinal(window.last.toordinal() - 8 * 7 + 1), window.last)
    start = time.perf_counter()
    policies: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    for report, entry, _ in _policy_rows(corpus, domain):
        day = pd.Timestamp(report["date-range"]["start-datetime"]).tz_convert("UTC").date()
        if not wide.first <= day <= wide.last:
            continue
        contact = report.get("contact-info") or ""
        submitter = contact.rpartition("@")[2].lower() or report["organization-name"].lower()
        summary = entry.get("summary", {})
        mode = next(
            (
                line.split(":", 1)[1].strip()
                for line in entry["policy"].get("policy-string", [])
                if line.startswith("mode:")
            ),
            None,
        )
        base = {
            "report_id": report["report-id"],
            "submitter": submitter,
            "organization_name": report["organization-name"],
            "day": day,
            "policy_type": entry["policy"].get("policy-type"),
            "policy_mode": mode,
        }
        policies.append(
            base
            | {
                "successful": summary.get("total-successful-session-count", 0),
                "failed": summary.get("total-failure-session-count", 0),
            }
        )
        for detail in entry.get("failure-details", []):
            details.append(
                base
                | {
                    "result_type": detail.get("result-type"),
                    "sending_mta_ip": detail.get("sending-mta-ip"),
                    "receiving_mx_hostname": detail.get("receiving-mx-hostname"),
                    "receiving_ip": detail.get("receiving-ip"),
                    "sessions": detail.get("failed-session-count", 0),
                }
            )
    loaded = time.perf_counter()
    pol = pd.DataFrame(policies)
    det = pd.DataFrame(details)
    pol["week"] = pd.to_datetime(pol["day"]).dt.strftime("%G-W%V")
    in_week = pol["day"].between(window.first, window.last)
    week_pol = pol[in_week]
    week_det = det[det["day"].between(window.first, window.last)]
    previous = pol[pol["day"].between(window.previous().first, window.previous().last)]
    verdict = pol[pol["day"] >= window.last.fromordinal(window.last.toordinal() - 27)]
    verdict_det = det[det["day"] >= window.last.fromordinal(window.last.toordinal() - 27)]
    aggregates = {
        "daily": week_pol.groupby("day")[["successful", "failed"]].sum(),
        "weekly": pol.groupby("week")[["successful", "failed"]].sum(),
        "senders": week_pol.groupby("submitter")[["successful", "failed"]].sum(),
        "previous_senders": previous.groupby("submitter")[["successful", "failed"]].sum(),
        "by_sender": week_det.groupby(["submitter", "result_type"])["sessions"].sum(),
        "by_mta": week_det.groupby(["sending_mta_ip", "result_type"], dropna=False)[
            "sessions"
        ].sum(),
        "by_mx": week_det.groupby(["receiving_mx_hostname", "receiving_ip"], dropna=False)[
            "sessions"
        ].sum(),
        "policies": week_pol.groupby(["submitter", "policy_type", "policy_mode"], dropna=False)[
            "day"
        ].agg(["min", "max"]),
        "verdict_sessions": verdict[verdict["policy_type"] == "sts"]
        .groupby(["submitter", "policy_mode"], dropna=False)[["successful", "failed"]]
        .sum(),
        "verdict_failures": verdict_det[verdict_det["policy_type"] == "sts"]
        .groupby(["submitter", "result_type", "receiving_mx_hostname"], dropna=False)["sessions"]
        .sum(),
    }
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "load_seconds": loaded - start,
        "peak_mb": peak_mb(),
        "libraries_mb": libraries_mb,
        "groups": sum(len(a) for a in aggregates.values()),
        "check": {
            "successful": int(week_pol["successful"].sum()),
            "failed": int(week_pol["failed"].sum()),
            "detail_sessions": int(week_det["sessions"].sum()),
            "senders": int(week_pol.groupby("day")["submitter"].nunique().max()),
        },
    }


# ---------------------------------------------------------------- driver


def child(kind: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--measure",
            kind,
            "--reports",
            str(args.reports),
            "--cache",
            str(args.cache),
            "--domain",
            args.domain,
            "--week",
            args.week,
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"{kind} failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--domain", default="example.com")
    parser.add_argument("--week", default="2025-W12", help="ISO week inside the synthetic range")
    parser.add_argument("--measure", choices=["report", "baseline"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = args.cache / f"reports-{args.reports}"
    folder.mkdir(parents=True, exist_ok=True)

    if args.measure == "report":
        print(json.dumps(measure_report(folder / "data", args.domain, args.week)))
        return 0
    if args.measure == "baseline":
        print(json.dumps(measure_baseline(folder / "corpus", args.domain, args.week)))
        return 0

    corpus = ensure_corpus(folder, args.reports)
    data_dir = ensure_store(folder, corpus)
    db_mb = (data_dir / "tlsrpt.duckdb").stat().st_size / 1e6
    print(f"store: {args.reports:,} reports, {db_mb:,.0f} MB; week {args.week}, {args.domain}")
    report = child("report", args, folder)
    baseline = child("baseline", args, folder)
    if report["check"] != baseline["check"]:
        print(f"MISMATCH: report {report['check']} != baseline {baseline['check']}")
        return 1
    print(f"week figures (both agree): {report['check']}")
    r, b = report, baseline
    print(
        f"weekly report (DuckDB store):  {r['seconds']:8.2f} s  peak {r['peak_mb']:6.0f} MB "
        f"(after imports {r['libraries_mb']:.0f} MB); HTML {r['html_mb']:.1f} MB, "
        f"verdict {r['decision']}"
    )
    print(
        f"baseline (pandas from JSON):   {b['seconds']:8.2f} s  peak {b['peak_mb']:6.0f} MB "
        f"(after imports {b['libraries_mb']:.0f} MB); reading files {b['load_seconds']:.1f} s"
    )
    print(
        f"ratio baseline/report: time x{baseline['seconds'] / report['seconds']:.1f}, "
        f"peak memory x{baseline['peak_mb'] / report['peak_mb']:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
