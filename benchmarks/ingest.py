"""Ingest throughput vs DuckDB's own bare load of the same file, measured in one run.

    python benchmarks/ingest.py --events 5000000 [--workdir bench-data]

Generates demo events (Segment JSONL), writes a flat Parquet copy, then for each file
times (in separate processes, so peak memory is each one's own):
  baseline: CREATE TABLE t AS SELECT * FROM read_json(file) / read_parquet(file)
  ours:     micromoments ingest (validation, quarantine, dedup, stitching, profiles)
and prints events/s, the ratio ours/baseline (wall and CPU time), each process's peak RSS,
and the 1-minute load average before and after (the machine may be shared). Times run to the
load's commit and, as `closed_*`, on to the database's close, which includes what DuckDB
deferred to its checkpoint. Ours runs with
`[ingest] threads` DuckDB threads (default 1), the baseline with DuckDB's default.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BASELINE = """
import duckdb, sys, time
con = duckdb.connect(sys.argv[2])
con.execute("SET enable_progress_bar = false")
t = time.perf_counter()
reader = "read_parquet" if sys.argv[1].endswith(".parquet") else "read_json"
con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}('{sys.argv[1]}')")
n = con.execute("SELECT count(*) FROM t").fetchone()[0]
import resource
r = resource.getrusage(resource.RUSAGE_SELF)
committed = time.perf_counter() - t, r.ru_utime + r.ru_stime
con.close()  # DuckDB's checkpoint: what it deferred of writing the table
r = resource.getrusage(resource.RUSAGE_SELF)
print(n, *committed, r.ru_maxrss // 1024, time.perf_counter() - t, r.ru_utime + r.ru_stime)
"""

OURS = """
import sys, time
from micromoments.store import Store
from micromoments.store.ingest import ingest_file
store = Store(sys.argv[2])
t = time.perf_counter()
result = ingest_file(store, sys.argv[1])
import resource
r = resource.getrusage(resource.RUSAGE_SELF)
committed = time.perf_counter() - t, r.ru_utime + r.ru_stime
store.close()
r = resource.getrusage(resource.RUSAGE_SELF)
print(result.loaded, *committed, r.ru_maxrss // 1024, time.perf_counter() - t, r.ru_utime + r.ru_stime)
"""


def run(code: str, *args: str) -> tuple[int, float, float, int, float, float]:
    """Run `code` in a fresh interpreter: (events, seconds and CPU seconds until the load is
    committed, its own peak RSS in MB, seconds and CPU seconds until the database is closed).

    CPU seconds (user + system, all threads, the whole process) are reported because on a
    shared machine wall time depends on what else runs; CPU time much less so. "Closed" adds
    what DuckDB defers to its checkpoint at close: for the baseline's `CREATE TABLE AS`,
    which keeps the file's row order, that is rewriting the new table (3.7-4.4 s of 8 here).
    """
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    n, seconds, cpu, peak_mb, closed, closed_cpu = out.stdout.strip().splitlines()[-1].split()
    return int(n), float(seconds), float(cpu), int(peak_mb), float(closed), float(closed_cpu)


def fresh(path: Path) -> str:
    for suffix in ("", ".wal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5_000_000, help="about how many events to generate")
    parser.add_argument("--workdir", type=Path, default=Path("bench-data"))
    parser.add_argument("--only", nargs="+", default=["jsonl", "parquet"], choices=["jsonl", "parquet"],
                        help="which files to time")
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)

    jsonl = work / "data" / "events.jsonl"
    marker = work / "data" / "events.count"
    if not (marker.exists() and int(marker.read_text()) >= args.events * 0.95):
        from micromoments.demo import generate

        users = max(100, args.events // 53)  # the generator makes ~53 events per person per 30 days
        t = time.perf_counter()
        paths = generate(work / "data", users=users, days=30, seed=1, workers=2)
        marker.write_text(str(paths.n_events))
        print(f"generated {paths.n_events:,} events in {time.perf_counter() - t:.0f} s")
    parquet = work / "data" / "events.parquet"
    if not parquet.exists():
        import duckdb

        duckdb.connect().execute(f"""COPY (
            SELECT messageId, anonymousId, userId, previousId, type, event, timestamp,
                   properties.query AS query, context.page.url AS page_url, context.page.title AS page_title,
                   channel, context.timezone AS timezone, properties.revenue AS revenue
            FROM read_json('{jsonl}')) TO '{parquet}' (FORMAT parquet)""")

    size_gb = jsonl.stat().st_size / 1e9
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    from micromoments.config import Config

    threads = Config().ingest.threads
    print(f"ours: {threads or 'default'} DuckDB thread(s) while ingesting ([ingest] threads); "
          "baseline: DuckDB's default threads")
    print(f"JSONL {size_gb:.2f} GB, Parquet {parquet.stat().st_size / 1e9:.2f} GB")
    rows = []
    formats = [f for f in (("JSONL", jsonl), ("Parquet", parquet)) if f[0].lower() in args.only]
    for label, file in formats:
        load_before = os.getloadavg()[0]
        n_base, t_base, cpu_base, mem_base, closed_base, closed_cpu_base = run(
            BASELINE, str(file), fresh(work / "baseline.duckdb"))
        n_ours, t_ours, cpu_ours, mem_ours, closed_ours, closed_cpu_ours = run(
            OURS, str(file), fresh(work / "ours.duckdb"))
        row = {
            "format": label, "events": n_ours, "baseline_s": round(t_base, 1), "ours_s": round(t_ours, 1),
            "baseline_events_per_s": round(n_base / t_base), "ours_events_per_s": round(n_ours / t_ours),
            "ratio": round(t_ours / t_base, 2), "baseline_peak_mb": mem_base, "ours_peak_mb": mem_ours,
            "baseline_cpu_s": round(cpu_base, 1), "ours_cpu_s": round(cpu_ours, 1),
            "cpu_ratio": round(cpu_ours / cpu_base, 2),
            "closed_baseline_s": round(closed_base, 1), "closed_ours_s": round(closed_ours, 1),
            "closed_ratio": round(closed_ours / closed_base, 2),
            "closed_cpu_ratio": round(closed_cpu_ours / closed_cpu_base, 2),
            "load_avg_1m": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        }
        rows.append(row)
        print(json.dumps(row))


if __name__ == "__main__":
    main()
