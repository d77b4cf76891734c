"""Personas for 1M people, two ways.

1. `--events N` (the whole path): a DuckDB store of N demo-shaped events with moments (32 per
   person in 4 sessions, `benchmarks/journey.py`'s generator; not counted), then exactly what
   `micromoments personas build` does: journey (sessions, episodes, stages) -> person features ->
   CLV (BG/NBD + Gamma-Gamma fits, P(alive), 12-month CLV) -> persona model (auto k) ->
   assignment -> names -> typical paths -> tables written. `--db PATH` keeps (or reuses) the store.
2. `--people N` (modelling only): a synthetic feature table (N rows shaped like `person_features`:
   five behavioural groups with count-based noise; not counted), then CLV, the persona model,
   assignment and naming, with the adjusted Rand index against the synthetic groups.

Prints each step, the total, the ratio to the 2-minute budget, CPU time and the load average.

    .venv/bin/python benchmarks/personas.py --events 32000000 --db /tmp/p32m.duckdb   # 1M people
    .venv/bin/python benchmarks/personas.py --people 1000000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from micromoments.personas.clustering import PersonaModel
from micromoments.personas.clv import add_clv
from micromoments.personas.describe import describe_personas

GROUPS = {
    "moment_": (["know", "go", "do", "buy"], [[.12, .10, .56, .22], [.12, .52, .14, .22], [.14, .10, .14, .62],
                                            [.66, .08, .14, .12], [.18, .20, .06, .56]]),
    "channel_": (["organic_search", "paid_search", "email", "social", "direct", "app"],
                 [[.45, .05, .07, .25, .18, 0], [.4, .08, .04, .08, .2, .2], [.12, .32, .4, .1, .06, 0],
                  [.6, .03, .15, .1, .12, 0], [.05, .03, .07, .01, .14, .7]]),
    "device_": (["mobile", "desktop", "tablet"], [[.2, .66, .14], [.86, .08, .06], [.55, .35, .1], [.12, .33, .55], [.6, .35, .05]]),
    "hour_": (["early", "morning", "midday", "afternoon", "evening", "late", "night"],
              [[.1, .4, .1, .2, .1, .08, .02], [.05, .1, .15, .1, .5, .08, .02], [.05, .05, .3, .05, .1, .4, .05],
               [.05, .35, .15, .3, .1, .04, .01], [.6, .1, .15, .1, .03, .01, .01]]),
    "day_": (["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
             [[.04, .04, .04, .04, .06, .4, .38], [.11, .11, .11, .12, .16, .25, .14], [.14, .14, .14, .15, .17, .11, .15],
              [.18, .19, .19, .18, .14, .06, .06], [.2, .2, .2, .2, .15, .04, .01]]),
}


def synthetic_features(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.choice(5, n, p=[.24, .22, .2, .19, .15])
    sessions = rng.poisson(4, n) + 1
    cols: dict[str, np.ndarray] = {"person_id": np.char.add("p", np.arange(n).astype(str)),
                                   "sessions": sessions, "episodes": sessions * 2, "events": sessions * 9,
                                   "searches": sessions * 2}
    for prefix, (names, probs) in GROUPS.items():
        p = np.asarray(probs)[truth]
        trials = cols["episodes"] if prefix == "moment_" else (cols["events"] if prefix == "device_" else sessions)
        remaining, counts = trials.copy(), []
        for j in range(len(names)):  # multinomial counts, one category at a time (vectorised)
            c = rng.binomial(remaining, np.clip(p[:, j] / p[:, j:].sum(axis=1).clip(1e-9), 0, 1))
            counts.append(c)
            remaining = remaining - c
        counts = np.stack(counts, 1)
        for j, name in enumerate(names):
            cols[f"{prefix}{name}"] = counts[:, j] / trials
    basket = np.array([120, 42, 58, 36, 420])[truth]
    buys = rng.poisson(np.array([.8, .5, .7, .4, 1.8])[truth])
    cols["orders"] = buys
    cols["aov"] = np.where(buys > 0, rng.gamma(4, basket / 4), 0.0)
    cols["revenue"] = cols["aov"] * buys
    cols["frequency"] = np.maximum(buys - 1, 0).astype(float)
    cols["T"] = rng.uniform(1, 30, n).round()
    cols["recency"] = np.where(cols["frequency"] > 0, (rng.uniform(0, 1, n) * cols["T"]).round(), 0.0)
    cols["monetary"] = np.where(cols["frequency"] > 0, cols["aov"], 0.0)
    cols["store_km"] = rng.gamma(2, np.array([7, 3, 7.5, 9, 12.5])[truth])
    cols["known"] = (rng.uniform(size=n) < np.array([.55, .35, .75, .3, .97])[truth]).astype(float)
    return pd.DataFrame(cols), truth


def whole_path(n_events: int, db: str | None) -> None:
    """Events in a store -> `build_personas` (every step timed by the build itself)."""
    import tempfile

    from micromoments.config import Config
    from micromoments.personas.build import build_personas
    from micromoments.store import Store

    path = Path(db) if db else Path(tempfile.mkdtemp(prefix="mm-personas-bench-")) / "bench.duckdb"
    fresh = not path.exists()
    store = Store(path)
    if fresh:
        sys.path.insert(0, str(Path(__file__).parent))
        from journey import synthesise  # the journey benchmark's demo-shaped events + moments

        t = time.perf_counter()
        synthesise(store, n_events)
        print(f"store synthesised in {time.perf_counter() - t:.0f}s (not counted)")
    events, people = store.duck.execute("SELECT count(*), count(DISTINCT person_id) FROM events").fetchone()
    print(f"store: {path} - {events:,} events, {people:,} people; load average {os.getloadavg()[0]:.1f}", flush=True)
    wall, cpu = time.perf_counter(), time.process_time()
    res = build_personas(store, Config(), model_path=path.with_suffix(".personas.joblib"))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    for step, sec in res.seconds.items():
        print(f"  {step:16s} {sec:7.1f}s")
    print(f"total: {wall:.1f}s wall = {wall / 120:.2f} of the 2-minute budget; {cpu:.0f}s CPU (all threads); "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{res.summary()}; BG/NBD {res.features.attrs.get('bgnbd')}")
    print(res.descriptions[["persona", "people"]].to_string(index=False))
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=0, help="run the whole path from a store of this many events")
    ap.add_argument("--db", default=None, help="store file for --events (reused when it exists)")
    args = ap.parse_args()
    if args.events or args.db:
        whole_path(args.events, args.db)
        return
    print(f"load average {os.getloadavg()[0]:.1f}")
    t0 = time.perf_counter()
    feats, truth = synthetic_features(args.people)
    t_gen = time.perf_counter() - t0
    t1 = time.perf_counter()
    feats = add_clv(feats)
    t_clv = time.perf_counter() - t1
    t2 = time.perf_counter()
    model = PersonaModel("auto").fit(feats)
    t_fit = time.perf_counter() - t2
    t3 = time.perf_counter()
    feats["persona_id"] = model.predict(feats)
    t_pred = time.perf_counter() - t3
    t4 = time.perf_counter()
    desc = describe_personas(feats.drop(columns=["person_id"]))
    t_desc = time.perf_counter() - t4
    total = t_clv + t_fit + t_pred + t_desc
    print(f"people: {args.people:,}  (synthetic feature table built in {t_gen:.1f}s, not counted)")
    print(f"CLV (BG/NBD + Gamma-Gamma fit, P(alive), CLV): {t_clv:6.1f}s  BG/NBD {feats.attrs['bgnbd']}")
    print(f"persona model fit (auto k = {model.k_}, on {model.fitted_on_:,} people): {t_fit:6.1f}s")
    print(f"assign everyone to the nearest centroid: {t_pred:6.1f}s")
    print(f"describe personas: {t_desc:6.1f}s")
    print(f"total: {total:.1f}s = {total / 120:.2f} of the 2-minute budget; "
          f"ARI vs the synthetic groups {adjusted_rand_score(truth, feats.persona_id):.3f}")
    print(desc[["persona", "people"]].to_string(index=False))


if __name__ == "__main__":
    main()
