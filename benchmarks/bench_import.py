#!/usr/bin/env python3
"""Import speed and memory, beside parsedmarc parsing the same files in the same run.

    python benchmarks/bench_import.py                 # 20,000 reports + 100,000 for memory
    python benchmarks/bench_import.py --count 5000 --memory-count 0

Generates synthetic corpora with ../shared/corpus/make_synthetic.py (cached under
--workdir), then times, each as a whole process:
  - `tlsrpt import --no-dkim --json` into a new database (parse + store in DuckDB);
  - parsedmarc's `parse_report_file(path, offline=True)` over the same files (parse only),
    in a virtualenv of its own under --workdir (parsedmarc is not a project dependency).
Checks that the import stored exactly what the generator's manifest says, and prints
wall time, reports/s, peak memory (PSS of the process tree) and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO.parent / "shared" / "corpus" / "make_synthetic.py"
TLSRPT = Path(sys.executable).with_name("tlsrpt")

PARSEDMARC_LOOP = """
import sys
from pathlib import Path
import parsedmarc
files = sorted(Path(sys.argv[1]).glob("*.json.gz"))
for path in files:
    parsedmarc.parse_report_file(str(path), offline=True)
print(len(files))
"""


def corpus(workdir: Path, count: int) -> Path:
    folder = workdir / f"synthetic-{count}"
    if not (folder / "manifest.jsonl").exists():
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run([sys.executable, str(GENERATOR), str(folder), "-n", str(count)], check=True)
    return folder


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.extend(int(child) for child in task.read_text().split())
        except OSError:
            continue
    return found


def tree_rss_mb(root: int) -> float:
    """Memory of a process and all its descendants (import workers included), as the sum
    of their proportional set sizes."""
    tree, frontier = {root}, [root]
    while frontier:
        children = _children(frontier.pop())
        tree.update(children)
        frontier.extend(children)
    total_kb = 0
    for pid in tree:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        # Pss: pages shared by the fork server and its workers are counted once in all.
        total_kb += sum(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
    return total_kb / 1024


def timed(cmd: list[str]) -> tuple[float, int, str]:
    """Run a command; return wall seconds, peak memory of its process tree in MB (sampled
    every 50 ms, which also bounds how late the end is seen) and its stdout."""
    start = time.perf_counter()
    peak = 0.0
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
        while proc.poll() is None:
            peak = max(peak, tree_rss_mb(proc.pid))
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        out.seek(0)
        text = out.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {text[-500:]}")
    return elapsed, round(peak), text


def parsedmarc_python(workdir: Path) -> Path:
    venv = workdir / "parsedmarc-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "parsedmarc"], check=True)
    return python


def check_stored(data_dir: Path, folder: Path) -> None:
    import duckdb

    manifest = [json.loads(line) for line in (folder / "manifest.jsonl").open()]
    con = duckdb.connect(str(data_dir / "tlsrpt.duckdb"), read_only=True)
    reports, ok, failed = con.execute(
        "SELECT (SELECT count(*) FROM reports), sum(total_successful_session_count), "
        "sum(total_failure_session_count) FROM policies"
    ).fetchall()[0]
    con.close()
    want = (
        len(manifest),
        sum(m["total_successful_session_count"] for m in manifest),
        sum(m["total_failure_session_count"] for m in manifest),
    )
    if (reports, ok, failed) != want:
        raise SystemExit(f"stored {(reports, ok, failed)}, manifest says {want}")


def run_import(folder: Path) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        cmd = [str(TLSRPT), "import", "--no-dkim", "--json", "--data-dir", str(data_dir)]
        elapsed, rss, out = timed([*cmd, str(folder)])
        summary = json.loads(out)
        if summary["rejected"]:
            raise SystemExit(f"import refused {summary['rejected']} reports")
        check_stored(data_dir, folder)
    return elapsed, rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=20_000, help="reports to time (default 20000)")
    ap.add_argument("--memory-count", type=int, default=100_000,
                    help="reports for the peak-memory run, 0 to skip (default 100000)")  # fmt: skip
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "tlsrpt-bench")
    ap.add_argument("--skip-parsedmarc", action="store_true")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    folder = corpus(args.workdir, args.count)

    ours, ours_rss = run_import(folder)
    print(f"tlsrpt import   {args.count} reports: {ours:7.2f} s  "
          f"{args.count / ours:8.0f} reports/s  peak memory {ours_rss} MB")  # fmt: skip
    if not args.skip_parsedmarc:
        python = parsedmarc_python(args.workdir)
        theirs, theirs_rss, out = timed([str(python), "-c", PARSEDMARC_LOOP, str(folder)])
        assert int(out) == args.count
        print(f"parsedmarc parse {args.count} reports: {theirs:7.2f} s  "
              f"{args.count / theirs:8.0f} reports/s  peak memory {theirs_rss} MB")  # fmt: skip
        print(f"ratio: tlsrpt import (parse + store) is {theirs / ours:.2f}x parsedmarc's parse")
    if args.memory_count:
        big = corpus(args.workdir, args.memory_count)
        elapsed, rss = run_import(big)
        print(f"tlsrpt import   {args.memory_count} reports: {elapsed:7.2f} s  "
              f"{args.memory_count / elapsed:8.0f} reports/s  peak memory {rss} MB")  # fmt: skip
    own_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"({os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}; "
          f"this script's own peak RSS {own_rss} MB)")  # fmt: skip


if __name__ == "__main__":
    main()
