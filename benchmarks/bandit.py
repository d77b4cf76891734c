"""Cost of Thompson-sampling content choice (activation/bandit.py) on the decision path.

Measures, in one process:
1. the propensity computation alone, P(item is the best draw) mixed with the floor, for n
   eligible items: quadrature (the default) and Monte Carlo with 1,000 draws, no cache;
2. `ThompsonBandit.choose` in a learning loop (trials every decision, clicks arriving in batches,
   the cached distribution reused while the posteriors barely move), 3 items, true CTR 2/5/8 %;
3. `Activator.decide` with 3 eligible items, `bandit = "thompson"` vs `"uniform"`, each call
   preceded by a click on some earlier decision so the posteriors keep changing.

Prints p50/p99 per call and the thompson/uniform ratio. The /v1/decide budget is p99 <= 10 ms.

    .venv/bin/python benchmarks/bandit.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np

from micromoments.activation.bandit import ThompsonBandit, monte_carlo_probabilities, thompson_probabilities, with_floor
from micromoments.activation.engine import Activator
from micromoments.activation.live_events import canonical_event
from micromoments.config import Config

CATALOG = """
items:
  - {id: buy-free-delivery, channels: [web], moments: [buy], title: "Free delivery, {{ first_name }}"}
  - {id: buy-price-match, channels: [web], moments: [buy], title: "We match any price"}
  - {id: buy-reviews, channels: [web], moments: [buy], title: "4.8 stars"}
"""
PLAYBOOKS = """
playbooks:
  - name: buy-web
    when: {moments: [buy], channels: [web]}
    action: {channel: web, content: [buy-free-delivery, buy-price-match, buy-reviews]}
"""


def pct(xs: list[float]) -> tuple[float, float]:
    a = np.array(xs) * 1e6
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def show(label: str, xs: list[float]) -> tuple[float, float]:
    p50, p99 = pct(xs)
    print(f"  {label:<46} p50 {p50:8.1f} us   p99 {p99:8.1f} us")
    return p50, p99


def bench_probabilities(reps: int) -> None:
    print("propensity computation, no cache (random posteriors, 10..10,000 trials per item):")
    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 10):
        quad, mc = [], []
        for _ in range(reps):
            t = rng.integers(10, 10_000, n).astype(float)
            s = np.floor(t * rng.uniform(0.01, 0.1, n))
            a, b = 1 + s, 1 + t - s
            t0 = time.perf_counter()
            with_floor(thompson_probabilities(a, b), 0.05)
            t1 = time.perf_counter()
            with_floor(monte_carlo_probabilities(a, b, 1000, rng), 0.05)
            t2 = time.perf_counter()
            quad.append(t1 - t0)
            mc.append(t2 - t1)
        show(f"n={n:<2} quadrature (32 nodes per item)", quad)
        show(f"n={n:<2} Monte Carlo (1,000 draws)", mc)


def bench_choose(n: int) -> None:
    ctr = np.array([0.02, 0.05, 0.08])
    ids = ["a", "b", "c"]
    env = np.random.default_rng(1)
    b = ThompsonBandit(seed=0)
    lat, pending = [], []
    for k in range(n):
        t0 = time.perf_counter()
        c = b.choose(("buy", "decision", "web"), ids, decision_id=f"d{k}")
        lat.append(time.perf_counter() - t0)
        if env.random() < ctr[c.index]:
            pending.append(f"d{k}")
        if k % 20 == 19:
            for d in pending:
                b.observe(d, "click")
            pending = []
    print(f"ThompsonBandit.choose, learning loop of {n:,} decisions:")
    show("choose() incl. propensity (cache when unchanged)", lat)
    print(f"  recomputed {b.stats['computed']:,} times, reused {b.stats['reused']:,} "
          f"({b.stats['reused'] / n:.0%}); {b.stats['successes']} clicks credited")


def bench_decide(n: int) -> dict[str, tuple[float, float]]:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "catalog.yaml").write_text(CATALOG)
        (root / "pb").mkdir()
        (root / "pb" / "web.yaml").write_text(PLAYBOOKS)
        for kind in ("uniform", "thompson"):
            cfg = Config()
            cfg.activation.bandit = kind
            act = Activator(cfg, playbooks_dir=root / "pb", catalog_path=root / "catalog.yaml", deliverers={},
                            seed=0)
            t0 = dt.datetime(2026, 9, 1, 10)
            people = [f"p{i}" for i in range(200)]
            for i, p in enumerate(people):
                stamp = (t0 + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
                act.on_event(canonical_event({"type": "track", "userId": p, "event": "Products Searched",
                                              "messageId": f"m{i}", "timestamp": stamp,
                                              "properties": {"query": "buy cordless drill best price"}},
                                             received_at=t0, now=t0))
            rng = np.random.default_rng(2)
            lat, decided = [], []
            for k in range(n):
                if decided and rng.random() < 0.1:   # a click on an earlier decision: the posterior moves
                    did, who = decided[int(rng.integers(len(decided)))]
                    act.on_event(canonical_event({"type": "track", "userId": who, "event": "Content Clicked",
                                                  "messageId": f"c{k}", "timestamp": "2026-09-01T11:00:00.000Z",
                                                  "properties": {"mm_decision": did}}, received_at=t0, now=t0))
                who = people[k % len(people)]
                s = time.perf_counter()
                d = act.decide(who, {"channel": "web"})
                lat.append(time.perf_counter() - s)
                decided.append((d.decision_id, who))
            act.close()
            out[kind] = show(f"Activator.decide, bandit = {kind}", lat)
            if act.bandit is not None:
                st = act.bandit.stats
                print(f"    (bandit recomputed {st['computed']:,}, reused {st['reused']:,}, successes {st['successes']})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--decisions", type=int, default=10_000)
    ap.add_argument("--decide", type=int, default=5000)
    args = ap.parse_args()
    bench_probabilities(args.reps)
    bench_choose(args.decisions)
    print("decide() with 3 eligible items:")
    d = bench_decide(args.decide)
    print(f"thompson / uniform: p50 x{d['thompson'][0] / d['uniform'][0]:.2f}, "
          f"p99 x{d['thompson'][1] / d['uniform'][1]:.2f}; "
          f"added p50 {d['thompson'][0] - d['uniform'][0]:.0f} us (budget: /v1/decide p99 <= 10 ms)")


if __name__ == "__main__":
    main()
