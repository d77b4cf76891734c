"""Experiments: assignment, analysis, CUPED, sequential testing, SRM, power, and the store path."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sst

from micromoments.config import ExperimentConfig, _build, Config
from micromoments.measure import experiments as ex

EXP = ExperimentConfig(name="hero", variants=["control", "treatment"], weights=[0.5, 0.5],
                       primary_metric="conversion", guardrails=["revenue", "ctr"])


def test_assignment_is_deterministic_and_follows_weights():
    exp = ExperimentConfig(name="split", variants=["a", "b", "c"], weights=[0.2, 0.3, 0.5])
    ids = [f"person-{i}" for i in range(30_000)]
    got = ex.assign_many(ids, exp)
    assert list(got[:200]) == [ex.assign(i, exp) for i in ids[:200]]
    shares = pd.Series(got).value_counts(normalize=True)
    assert shares["a"] == pytest.approx(0.2, abs=0.01) and shares["c"] == pytest.approx(0.5, abs=0.01)
    # another experiment (salt) re-randomises: assignments are independent across experiments
    other = ex.assign_many(ids, ExperimentConfig(name="other", variants=["a", "b", "c"], weights=[0.2, 0.3, 0.5]))
    table = pd.crosstab(got, other).to_numpy()
    assert sst.chi2_contingency(table).pvalue > 0.001


def test_bad_weights_are_a_config_error():
    from micromoments.errors import ConfigError

    with pytest.raises(ConfigError, match="weight"):
        ex.assign("p", ExperimentConfig(name="x", variants=["a", "b"], weights=[1.0]))


def test_experiments_in_config():
    cfg = _build(Config, {"experiments": [{"name": "hero", "hypothesis": "a bigger banner sells more",
                                            "variants": ["control", "big"], "weights": [1, 1],
                                            "primary_metric": "conversion", "guardrails": ["revenue"]}]}, "t.toml")
    exp = ex.find_experiment(cfg, "hero")
    assert exp.variants == ["control", "big"] and exp.guardrails == ["revenue"]
    from micromoments.errors import ConfigError

    with pytest.raises(ConfigError, match="no experiment named 'nope'"):
        ex.find_experiment(cfg, "nope")


def _units(n: int, lift: float = 0.0, seed: int = 0, corr: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    variant = np.where(rng.random(n) < 0.5, "control", "treatment")
    propensity = rng.gamma(2.0, 1.0, n)  # how much a person spends in general
    pre = rng.poisson(propensity * 3)  # last period's spend: correlated with this period's
    revenue = rng.poisson(propensity * 3 * np.where(variant == "treatment", 1 + lift, 1.0)) + rng.normal(0, 0.5, n)
    expo = rng.poisson(5, n) + 1
    clicks = rng.binomial(expo, np.clip(rng.beta(2, 18, n) * np.where(variant == "treatment", 1 + lift, 1), 0, 1))
    conv = (rng.random(n) < 0.08 * np.where(variant == "treatment", 1 + lift, 1)).astype(int)
    frame = pd.DataFrame({"variant": variant, "revenue": revenue, "exposures": expo, "clicks": clicks,
                          "converted": conv})
    if corr:
        frame["pre_revenue"] = pre
    return frame


def test_analysis_matches_welch_and_finds_a_real_effect():
    units = _units(40_000, lift=0.1, seed=1, corr=False)
    a = ex.analyze(units, EXP, ["conversion", "revenue", "ctr"])
    r = a.results.set_index("metric")
    c, t = units[units.variant == "control"], units[units.variant == "treatment"]
    ref = sst.ttest_ind(t.revenue, c.revenue, equal_var=False)
    assert r.loc["revenue", "p_value"] == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-12)
    assert r.loc["revenue", "diff"] == pytest.approx(t.revenue.mean() - c.revenue.mean())
    assert r.loc["ctr", "variant_mean"] == pytest.approx(t.clicks.sum() / t.exposures.sum())
    assert bool(r.loc["ctr", "delta_method"])
    assert (r["significant"]).all() and (r["chance_to_win"] > 0.95).all()
    assert (r["lift_ci_low"] < 0.1).all() and (r["lift_ci_high"] > 0.1).all()
    assert (r["p_adjusted"] >= r["p_value"]).all()
    assert not a.srm


def test_cuped_shrinks_variance_and_keeps_the_estimate_unbiased():
    raw, adj = [], []
    for seed in range(60):
        units = _units(4_000, lift=0.0, seed=seed)
        no = ex.analyze(units, EXP, ["revenue"], cuped=False).results.iloc[0]
        yes = ex.analyze(units, EXP, ["revenue"]).results.iloc[0]
        assert yes["cuped"] and yes["cuped_variance_reduction"] > 0.3
        assert (yes["ci_high"] - yes["ci_low"]) < 0.85 * (no["ci_high"] - no["ci_low"])
        raw.append(no["diff"])
        adj.append(yes["diff"])
    assert np.var(adj) < 0.7 * np.var(raw)  # the spread of the estimate really shrinks
    assert abs(np.mean(adj)) < 3 * np.std(adj) / np.sqrt(len(adj))  # and it stays centred on the truth (0)


def test_sequential_testing_keeps_fpr_under_peeking():
    r = ex.simulate_peeking(n_tests=2000, peeks=100, batch=200, alpha=0.05, seed=2026)
    assert r["naive"] >= 0.3, r
    assert r["always_valid"] <= 0.05, r
    power = ex.simulate_peeking(n_tests=500, peeks=100, batch=200, p_variant=0.12, seed=7)
    assert power["always_valid"] > 0.8, power  # and it still finds a real 20% lift


def test_srm_detected():
    units = _units(20_000, seed=3, corr=False)
    drop = units.index[(units.variant == "treatment")][:800]  # a logging bug loses 8% of treatment
    a = ex.analyze(units.drop(drop), EXP, ["conversion"])
    assert a.srm and "sample ratio mismatch" in a.notes[0]
    assert not ex.analyze(units, EXP, ["conversion"]).srm


def test_power_matches_simulation():
    n = ex.sample_size(0.10, 0.20)
    rng = np.random.default_rng(5)
    xa = rng.binomial(n, 0.10, 3000)
    xb = rng.binomial(n, 0.12, 3000)
    from micromoments.measure.stats import two_proportion_ztest

    _, p = two_proportion_ztest(xa, n, xb, n)
    assert (p < 0.05).mean() == pytest.approx(0.8, abs=0.03)
    assert ex.power_at(n, 0.10, 0.20) == pytest.approx(0.8, abs=0.01)
    assert ex.sample_size(10.0, 0.05, kind="mean", sd=20.0) > ex.sample_size(10.0, 0.10, kind="mean", sd=20.0)


def test_analyze_from_store_with_cuped_covariates(tmp_path):
    from micromoments.store import Store

    store = Store(tmp_path / "s.duckdb")
    rng = np.random.default_rng(0)
    people = [f"p{i}" for i in range(600)]
    start = dt.datetime(2026, 3, 1)
    assigned = pd.DataFrame({"experiment": "hero", "person_id": people, "variant": ex.assign_many(people, EXP),
                             "ts": [start + dt.timedelta(hours=int(h)) for h in rng.integers(0, 48, 600)]})
    events = []
    for _, row in assigned.iterrows():
        for k in range(rng.poisson(1.0)):
            events.append({"message_id": f"{row.person_id}-pre{k}", "person_id": row.person_id, "event": "Order Completed",
                           "ts": row.ts - dt.timedelta(days=3, hours=k), "revenue": 20.0})
        for k in range(rng.poisson(1.5 if row.variant == "treatment" else 1.0)):
            events.append({"message_id": f"{row.person_id}-post{k}", "person_id": row.person_id,
                           "event": "Order Completed", "ts": row.ts + dt.timedelta(days=1, hours=k), "revenue": 20.0})
    store.duck.register("a_df", assigned)
    store.duck.execute("INSERT INTO assignments SELECT * FROM a_df")
    ev = pd.DataFrame(events)
    store.duck.register("e_df", ev)
    store.duck.execute("INSERT INTO events (message_id, person_id, event, ts, revenue) SELECT message_id, person_id, event, ts, revenue FROM e_df")
    a = ex.analyze_store(store, EXP, ["conversions", "revenue"])
    r = a.results.set_index("metric")
    post = ev[ev.message_id.str.contains("post")].groupby("person_id").size()
    expected = assigned.assign(c=assigned.person_id.map(post).fillna(0)).groupby("variant").c.mean()
    units = store.ibis.execute(ex.unit_stats_expr(store, "hero"))
    assert units.groupby("variant").conversions.mean().to_dict() == pytest.approx(expected.to_dict())
    assert units.pre_conversions.sum() == ev.message_id.str.contains("pre").sum()
    assert r.loc["conversions", "lift"] > 0.2 and r.loc["conversions", "p_value"] < 0.01
    store.close()


def test_empty_variant_is_an_srm_not_a_crash():
    units = _units(3000, seed=4, corr=False)
    exp3 = ExperimentConfig(name="three", variants=["control", "treatment", "new"], weights=[1, 1, 1])
    a = ex.analyze(units, exp3, ["conversion"])
    assert a.srm and a.srm_counts["new"] == 0
    assert list(a.results.variant) == ["treatment"]


def test_unit_stats_use_activation_logs_after_assignment(tmp_path):
    from micromoments.store import Store

    store = Store(tmp_path / "s.duckdb")
    t0 = dt.datetime(2026, 3, 1, 12)
    ins = store.duck.execute
    ins("INSERT INTO assignments VALUES ('hero', 'p1', 'control', ?), ('hero', 'p2', 'treatment', ?)", [t0, t0])
    rows = [("e1", "p1", t0 - dt.timedelta(hours=1)),  # before assignment: not counted
            ("e2", "p1", t0 + dt.timedelta(hours=1)), ("e3", "p1", t0 + dt.timedelta(hours=2)),
            ("e4", "p2", t0 + dt.timedelta(hours=1))]
    for eid, person, ts in rows:
        ins("INSERT INTO exposures (exposure_id, decision_id, ts, person_id) VALUES (?, ?, ?, ?)", [eid, "d" + eid, ts, person])
    ins("INSERT INTO outcomes VALUES ('o1', 'de2', ?, 'p1', 'click', NULL), ('o2', 'de2', ?, 'p1', 'conversion', 25.0),"
        " ('o3', 'de4', ?, 'p2', 'click', NULL)", [t0 + dt.timedelta(hours=1)] * 3)
    ins("INSERT INTO events (message_id, person_id, event, ts, revenue) VALUES ('m1', 'p2', 'Order Completed', ?, 9.0)",
        [t0 + dt.timedelta(hours=3)])
    u = store.ibis.execute(ex.unit_stats_expr(store, "hero")).set_index("person_id")
    assert u.loc["p1", ["exposures", "clicks", "conversions", "revenue"]].tolist() == [2, 1, 1, 25.0]
    # p2 has no logged conversion, so its conversion comes from the events
    assert u.loc["p2", ["exposures", "clicks", "conversions", "revenue", "converted"]].tolist() == [1, 1, 1, 9.0, 1]
    store.close()
