"""Benchmark the demo data generator: events/s, peak memory, and a same-run baseline.

The baseline is the floor any JSONL generator pays: reading the generated file back and
re-serialising every event with orjson into a new file (parse + dump + write), measured
in the same run on the same events. A ratio near 1 means simulation costs about as much as
mere serialisation.

    .venv/bin/python benchmarks/demo_data.py --events 1000000
    .venv/bin/python benchmarks/demo_data.py --events 10000000 --workers 2
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import orjson

from micromoments.demo import generate

EVENTS_PER_PERSON_MONTH = 53  # measured: --users 2000 --days 30 gives ~106k events


def baseline(src: Path, dst: Path) -> float:
    """Seconds to parse and re-serialise every line of `src` into `dst`."""
    began = time.perf_counter()
    with open(src, "rb") as fin, open(dst, "wb", buffering=1 << 20) as fout:
        buf = []
        for line in fin:
            buf.append(orjson.dumps(orjson.loads(line)))
            if len(buf) >= 20_000:
                buf.append(b"")
                fout.write(b"\n".join(buf))
                buf = []
        buf.append(b"")
        fout.write(b"\n".join(buf))
    return time.perf_counter() - began


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000, help="approximate number of events")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--keep", action="store_true", help="keep the output directory")
    args = ap.parse_args()
    users = max(1, args.events * 30 // (EVENTS_PER_PERSON_MONTH * args.days))
    tmp = Path(tempfile.mkdtemp(prefix="mm-demo-bench-"))
    try:
        runs = []
        for workers in sorted({1, args.workers}):
            paths = generate(tmp / f"w{workers}", users=users, days=args.days, seed=42, workers=workers)
            runs.append((workers, paths))
            print(f"generate workers={workers}: {paths.n_events:,} events, {users:,} people, "
                  f"{paths.seconds:.1f}s, {paths.events_per_second:,.0f} events/s, "
                  f"{paths.events.stat().st_size / paths.n_events:.0f} bytes/event")
            if workers != runs[0][0]:
                shutil.rmtree(tmp / f"w{workers}")
        first = runs[0][1]
        base_s = baseline(first.events, tmp / "copy.jsonl")
        base_eps = first.n_events / base_s
        print(f"baseline (orjson parse + dump + write of the same events): {base_eps:,.0f} events/s")
        for workers, paths in runs:
            print(f"ratio generate(workers={workers}) / baseline: {paths.events_per_second / base_eps:.2f}")
        me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak RSS: parent {me:.0f} MB, largest worker {kids:.0f} MB")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
