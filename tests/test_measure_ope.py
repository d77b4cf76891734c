"""Off-policy evaluation on simulated logs whose true policy value is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from micromoments.errors import InputError
from micromoments.measure import ope

BETA = np.array([[-2.0, 1.0, 0.0], [-1.5, -0.5, 1.0], [-1.0, 0.3, -0.8]])  # per action: bias, x1, x2


def _p_reward(x: np.ndarray) -> np.ndarray:
    z = BETA[:, 0][None, :] + x @ BETA[:, 1:].T
    return 1 / (1 + np.exp(-z))  # n × actions


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _logging(x):  # the old policy: mostly content 0, some exploration
    return _softmax(np.column_stack([0.8 + 0 * x[:, 0], 0.4 * x[:, 0], 0.4 * x[:, 1]]))


def _target(x):  # the new policy: prefers content 1 when x2 is high
    return _softmax(np.column_stack([0 * x[:, 0], 2.0 * x[:, 1], -x[:, 1]]))


def _true_value() -> float:
    x = np.random.default_rng(12345).normal(size=(400_000, 2))
    return float((_target(x) * _p_reward(x)).sum(1).mean())


def _run(rng, n=3000):
    x = rng.normal(size=(n, 2))
    mu_all = _logging(x)
    a = (rng.random(n)[:, None] > np.cumsum(mu_all, 1)).sum(1)
    r = (rng.random(n) < _p_reward(x)[np.arange(n), a]).astype(float)
    pi_all = _target(x)
    q = ope.fit_reward_model(x, a, r, 3)
    idx = np.arange(n)
    return ope.evaluate(r, pi_all[idx, a], mu_all[idx, a], q[idx, a], (pi_all * q).sum(1), n_boot=300,
                        seed=int(rng.integers(1 << 31)))


def test_ipw_and_dr_intervals_cover_the_true_value():
    truth = _true_value()
    rng = np.random.default_rng(2026)
    runs = 150
    hits = {"ipw": 0, "snipw": 0, "dr": 0}
    err = {"ipw": [], "dr": []}
    for _ in range(runs):
        t = _run(rng).set_index("estimator")
        for k in hits:
            hits[k] += t.loc[k, "ci_low"] <= truth <= t.loc[k, "ci_high"]
        for k in err:
            err[k].append(t.loc[k, "value"] - truth)
    cover = {k: v / runs for k, v in hits.items()}
    print("coverage", cover)
    assert cover["ipw"] >= 0.9 and cover["dr"] >= 0.9, cover
    assert cover["snipw"] >= 0.85, cover
    # both estimators are centred on the truth, and DR is the less noisy one
    for k in err:
        assert abs(np.mean(err[k])) < 3 * np.std(err[k]) / np.sqrt(runs), (k, np.mean(err[k]))
    assert np.std(err["dr"]) < np.std(err["ipw"])


def test_naive_logged_average_is_biased_here():
    """Sanity: the logged reward average is not the target value, so the estimators do real work."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200_000, 2))
    mu_all = _logging(x)
    logged_value = float((mu_all * _p_reward(x)).sum(1).mean())
    assert abs(logged_value - _true_value()) > 0.02


def test_bad_propensity_is_named():
    with pytest.raises(InputError, match="row 2, column propensity"):
        ope.ipw(np.ones(3), np.ones(3), np.array([0.5, 0.0, 0.2]))


def _logged(n: int, rng) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    moments = np.array(["know", "go", "do", "buy"])
    contents = np.array(["guide", "store-map", "offer"])
    p_true = np.array([[0.10, 0.02, 0.03], [0.02, 0.15, 0.05], [0.08, 0.02, 0.04], [0.03, 0.04, 0.20]])
    mu = np.array([[0.6, 0.2, 0.2], [0.3, 0.4, 0.3], [0.5, 0.25, 0.25], [0.4, 0.3, 0.3]])
    pi = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.8, 0.0, 0.2], [0.0, 0.0, 1.0]])
    m = rng.integers(0, 4, n)
    a = (rng.random(n)[:, None] > np.cumsum(mu[m], 1)).sum(1)
    r = (rng.random(n) < p_true[m, a]).astype(float)
    logs = pd.DataFrame({"moment": moments[m], "stage": None, "content_id": contents[a], "propensity": mu[m, a], "reward": r})
    policy = pd.DataFrame([(moments[i], contents[j], pi[i, j]) for i in range(4) for j in range(3)],
                          columns=["moment", "content_id", "probability"])
    return logs, policy, float((pi * p_true).sum(1).mean())


def test_evaluate_policy_from_logged_decisions_covers_truth():
    rng = np.random.default_rng(3)
    hits = {"ipw": 0, "dr": 0}
    runs = 40
    for _ in range(runs):
        logs, policy, truth = _logged(4000, rng)
        t = ope.evaluate_policy(logs, policy, n_boot=300, seed=int(rng.integers(1 << 30))).set_index("estimator")
        for k in hits:
            hits[k] += t.loc[k, "ci_low"] <= truth <= t.loc[k, "ci_high"]
    assert hits["ipw"] / runs >= 0.85 and hits["dr"] / runs >= 0.85, hits
    assert abs(t.loc["logged policy (observed)", "value"] - truth) > 0.03  # the new policy is really different


def test_policy_file_errors(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text("moment,content_id,probability\nbuy,offer,0.7\nbuy,guide,0.2\n")
    with pytest.raises(InputError, match="sum to 0.9"):
        ope.read_policy(f)
    f.write_text("moment,content_id,probability\nbuy,offer,abc\n")
    with pytest.raises(InputError, match="row 2, column probability"):
        ope.read_policy(f)


def test_ope_from_store_and_cli(tmp_path):
    import datetime as dt

    from typer.testing import CliRunner

    from micromoments.cli import app
    from micromoments.store import Store

    rng = np.random.default_rng(8)
    logs, policy, truth = _logged(3000, rng)
    store = Store(tmp_path / "s.duckdb")
    dec = pd.DataFrame({"decision_id": [f"d{i}" for i in range(len(logs))], "ts": dt.datetime(2026, 3, 1),
                        "person_id": [f"p{i}" for i in range(len(logs))], "playbook": "pb", "content_id": logs.content_id,
                        "channel": "web", "moment": logs.moment, "stage": None, "persona": None, "experiment": None,
                        "variant": None, "propensity": logs.propensity, "status": "chosen", "context": "{}"})
    out = dec[logs.reward.to_numpy() > 0][["decision_id", "ts", "person_id"]].assign(kind="conversion", revenue=10.0)
    out.insert(0, "outcome_id", [f"o{i}" for i in range(len(out))])
    for name, frame in (("decisions", dec), ("outcomes", out[["outcome_id", "decision_id", "ts", "person_id", "kind", "revenue"]])):
        store.duck.register("df", frame)
        store.duck.execute(f"INSERT INTO {name} SELECT * FROM df")
        store.duck.unregister("df")
    got = store.ibis.execute(ope.logged_decisions_expr(store.table("decisions"), store.table("outcomes")))
    assert len(got) == len(logs) and got.reward.sum() == logs.reward.sum()
    store.duck.execute("INSERT INTO events (message_id, person_id, event, ts) VALUES ('m1', 'p1', 'Page Viewed', '2026-03-01')")
    from micromoments.report.measure import measure_sections

    sec = {s.id: s for s in measure_sections(store)}
    assert "offer" in sec["measure-ope"].table and "dr" in sec["measure-ope"].table
    store.close()
    pf = tmp_path / "policy.csv"
    policy.to_csv(pf, index=False)
    r = CliRunner().invoke(app, ["ope", "--policy", str(pf), "--db", str(tmp_path / "s.duckdb"), "--n-boot", "200"])
    assert r.exit_code == 0, r.output
    assert "dr" in r.output and "3,000 logged decisions" in r.output
