"""Activation engine latency: `Activator.on_event` and `Activator.decide`, per call, in one process.

Replays demo traffic (Segment JSONL -> the collector's `canonical_event`) in time order through an
Activator with the shipped playbooks and catalog; deliveries go to an in-memory deliverer (the
worker thread still runs). Prints p50/p99/max per call for: the first pass (cold text cache), a
second pass over the same texts (warm cache), and decide() for people seen.

    .venv/bin/python benchmarks/activation.py --users 1000 --days 14
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta

import numpy as np

from micromoments.activation.engine import Activator
from micromoments.activation.live_events import canonical_event
from micromoments.config import Config
from micromoments.demo import generate


class NullDeliverer:
    def __init__(self) -> None:
        self.sent = 0

    def send(self, message: object) -> str:
        self.sent += 1
        return "null"


def pct(xs: list[float]) -> str:
    a = np.array(xs) * 1e6
    return f"p50 {np.percentile(a, 50):7.1f} us  p99 {np.percentile(a, 99):8.1f} us  max {a.max():9.1f} us"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--decides", type=int, default=20000)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        paths = generate(tmp, users=args.users, days=args.days, seed=11, workers=1)
        raw = [json.loads(line) for line in open(paths.events, encoding="utf-8")]
    far = datetime(2100, 1, 1)
    events = sorted((canonical_event(r, received_at=None, now=far) for r in raw), key=lambda e: e["ts"])
    print(f"{len(events):,} demo events from {args.users} people over {args.days} days")

    sink_rows: Counter[str] = Counter()
    t0 = time.perf_counter()
    null = NullDeliverer()
    act = Activator(Config(), deliverers={"push": null, "email": null}, log_sink=lambda t, r: sink_rows.update([t]))
    print(f"Activator start-up (catalog, playbooks, intent model): {time.perf_counter() - t0:.2f} s")

    cold = []
    for e in events:
        t = time.perf_counter()
        act.on_event(e)
        cold.append(time.perf_counter() - t)
    hits, misses = act.classifier.hits, act.classifier.misses
    # Second pass: the same people a month later (new sessions), every text already classified.
    shift = timedelta(days=args.days + 30)
    warm = []
    for e in events:
        e = {**e, "ts": e["ts"] + shift}
        t = time.perf_counter()
        act.on_event(e)
        warm.append(time.perf_counter() - t)
    people = list(act._states)
    rng = np.random.default_rng(0)
    dec = []
    for i in rng.integers(0, len(people), args.decides):
        t = time.perf_counter()
        act.decide(people[i], {"channel": "web"})
        dec.append(time.perf_counter() - t)
    act.close()

    print(f"on_event, cold text cache ({misses:,} misses / {hits:,} hits): {pct(cold)}")
    print(f"on_event, warm text cache:                        {pct(warm)}")
    print(f"decide (web, {args.decides:,} calls):                     {pct(dec)}")
    print(f"throughput on one core: {len(events) / sum(warm):,.0f} events/s warm, "
          f"{len(dec) / sum(dec):,.0f} decides/s")
    print(f"cold/warm p50 ratio {np.median(cold) / np.median(warm):.2f}, "
          f"p99 ratio {np.percentile(cold, 99) / np.percentile(warm, 99):.1f}")
    print(f"decisions {dict(act.counters)}")
    print(f"log rows {dict(sink_rows)}; delivered {null.sent}")


if __name__ == "__main__":
    main()
