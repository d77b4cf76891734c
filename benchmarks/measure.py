"""Measure benchmarks: attribution over 1M paths, an experiment analysis over 10M exposures,
and the A/A peeking simulation. Prints the figures measured in this one run.

    .venv/bin/python benchmarks/measure.py [--paths 1000000] [--exposures 10000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

CHANNELS = ["email", "paid-search", "organic-search", "social", "direct", "app", "referral", "display",
            "affiliate", "push"]


def make_path_file(n: int, out: Path, seed: int = 0) -> Path:
    """`n` path rows in the ChannelAttribution format (channels with different conversion power)."""
    rng = np.random.default_rng(seed)
    lengths = np.minimum(rng.geometric(0.35, n), 20)
    codes = rng.choice(len(CHANNELS), lengths.sum(), p=np.linspace(2, 1, len(CHANNELS)) / np.linspace(2, 1, len(CHANNELS)).sum())
    names = np.asarray(CHANNELS, dtype=object)[codes]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    paths = [" > ".join(names[s:s + k]) for s, k in zip(starts, lengths)]
    power = np.bincount(np.repeat(np.arange(n), lengths), weights=(codes % 3 == 0) * 0.2, minlength=n)
    conv = rng.poisson(0.3 + power)
    frame = pd.DataFrame({"path": paths, "total_conversions": conv,
                          "total_conversion_value": np.round(conv * rng.gamma(2, 30, n), 2),
                          "total_null": rng.poisson(2.0, n)})
    frame.to_csv(out, index=False)
    return out


def bench_attribution(n: int, tmp: Path) -> dict[str, float]:
    from micromoments.measure import attribution as at

    f = make_path_file(n, tmp / "paths.csv")
    t0 = time.perf_counter()
    p = at.read_paths(f)
    t1 = time.perf_counter()
    table = at.attribute(p)
    t2 = time.perf_counter()
    sums = table.groupby("model").conversions.sum()
    assert np.allclose(sums, p.conversions.sum())
    t3 = time.perf_counter()
    m2 = at.markov(p, order=2)
    t4 = time.perf_counter()
    assert np.isclose(m2.conversions.sum(), p.conversions.sum())
    return {"rows": n, "touches": int(p.codes.size), "read_s": t1 - t0, "models_s": t2 - t1, "total_s": t2 - t0,
            "markov2_s": t4 - t3}


def bench_experiment(n_exposures: int, tmp: Path) -> dict[str, float]:
    import ibis

    from micromoments.config import ExperimentConfig
    from micromoments.measure.experiments import analyze

    rng = np.random.default_rng(1)
    people = n_exposures // 10
    person = rng.integers(0, people, n_exposures)
    variant = np.where((person * 2654435761) % 1000 < 500, "control", "treatment")
    click = rng.random(n_exposures) < np.where(variant == "treatment", 0.052, 0.05)
    revenue = np.where(rng.random(n_exposures) < 0.01, rng.gamma(2, 40, n_exposures), 0.0)
    con = ibis.duckdb.connect(str(tmp / "exp.duckdb"))
    con.create_table("exposures", pd.DataFrame({"person_id": person, "variant": variant, "click": click.astype("int8"),
                                                "revenue": revenue}))
    exp = ExperimentConfig(name="bench", variants=["control", "treatment"], weights=[0.5, 0.5],
                           primary_metric="ctr", guardrails=["revenue", "conversion", "revenue_per_exposure"])
    t0 = time.perf_counter()
    e = con.table("exposures")
    units = con.execute(e.group_by(["person_id", "variant"]).aggregate(
        exposures=e.count(), clicks=e.click.sum(), revenue=e.revenue.sum(),
        converted=(e.revenue > 0).cast("int64").max()))
    t1 = time.perf_counter()
    a = analyze(units, exp)
    t2 = time.perf_counter()
    ctr = a.results.set_index("metric").loc["ctr"]
    return {"exposures": n_exposures, "people": len(units), "aggregate_s": t1 - t0, "analysis_s": t2 - t1,
            "total_s": t2 - t0, "ctr_lift": float(ctr.lift), "ctr_p": float(ctr.p_value)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--paths", type=int, default=1_000_000)
    ap.add_argument("--exposures", type=int, default=10_000_000)
    args = ap.parse_args()
    from micromoments.measure.experiments import simulate_peeking

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t = time.perf_counter()
        sim = simulate_peeking(2000, 100, 200, seed=2026)
        sim_s = time.perf_counter() - t
        print(f"A/A peeking, 2,000 tests x 100 looks: naive FPR {sim['naive']:.3f}, always-valid (mSPRT) FPR "
              f"{sim['always_valid']:.3f}  [{sim_s:.2f} s]")
        a = bench_attribution(args.paths, tmp)
        print(f"attribution, {a['rows']:,} path rows ({a['touches']:,} touches), 7 models: read {a['read_s']:.1f} s + "
              f"models {a['models_s']:.1f} s = {a['total_s']:.1f} s (target < 30 s: {30 / a['total_s']:.1f}x headroom); "
              f"second-order Markov alone {a['markov2_s']:.1f} s")
        e = bench_experiment(args.exposures, tmp)
        print(f"experiment, {e['exposures']:,} exposures / {e['people']:,} people, 4 metrics: aggregate {e['aggregate_s']:.1f} s"
              f" + analysis {e['analysis_s']:.2f} s = {e['total_s']:.1f} s (target < 10 s: {10 / e['total_s']:.1f}x headroom);"
              f" CTR lift {e['ctr_lift']:+.2%}, p = {e['ctr_p']:.2g}")


if __name__ == "__main__":
    main()
