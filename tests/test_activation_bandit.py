"""Thompson sampling for content choice (activation/bandit.py): it learns, its logged propensities
are the true sampling probabilities, the exploration floor holds, and off-policy evaluation on its
logs recovers the value of another policy; end to end through the Activator and the store."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from micromoments.activation.bandit import (
    ThompsonBandit,
    monte_carlo_probabilities,
    thompson_probabilities,
    warm_start_from_store,
)
from micromoments.activation.engine import Activator
from micromoments.activation.live_events import canonical_event
from micromoments.cli import app
from micromoments.config import Config
from micromoments.errors import ConfigError
from micromoments.measure.ope import evaluate, evaluate_policy
from micromoments.store import Store
from micromoments.store.schema import TABLES

CTR = np.array([0.02, 0.05, 0.08])
ARMS = ["tips-a", "offer-b", "offer-c"]
CTX = ("buy", "decision", "web")


def simulate(policy: str, n: int, seed: int, batch: int = 50, epsilon: float = 0.05) -> pd.DataFrame:
    """`n` decisions against Bernoulli clicks with rates CTR; feedback arrives in batches (delayed)."""
    env = np.random.default_rng(1000 + seed)
    bandit = ThompsonBandit(epsilon=epsilon, seed=seed)
    rows, pending = [], []
    for k in range(n):
        if policy == "thompson":
            c = bandit.choose(CTX, ARMS, decision_id=f"d{k}")
            arm, prop = c.index, c.propensity
        else:
            arm, prop = int(env.integers(3)), 1 / 3
        click = float(env.random() < CTR[arm])
        rows.append({"moment": CTX[0], "content_id": ARMS[arm], "arm": arm, "propensity": prop, "reward": click})
        if click:
            pending.append(f"d{k}")
        if (k + 1) % batch == 0:
            for d in pending:
                bandit.observe(d, "click")
            pending = []
    return pd.DataFrame(rows)


# -- (1) it learns ---------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_thompson_finds_the_best_arm_with_far_less_regret_than_uniform(seed):
    n = 4000
    ts, uni = simulate("thompson", n, seed), simulate("uniform", n, seed)
    regret_ts = float((CTR.max() - CTR[ts["arm"]]).sum())
    regret_uni = float((CTR.max() - CTR[uni["arm"]]).sum())
    share = ts["arm"].value_counts(normalize=True)
    assert share.idxmax() == 2, share
    assert share[2] > 0.7                                    # uniform would give 1/3
    assert ts["arm"].iloc[-1000:].eq(2).mean() > 0.85        # and it keeps improving
    assert regret_ts < 0.35 * regret_uni, (regret_ts, regret_uni)   # uniform: ~0.03 per decision
    # The floor keeps exploring the worst arm: at least eps/3 of the time.
    assert share.get(0, 0) >= 0.05 / 3 * 0.8


# -- (2) logged propensity = the real choice frequency -----------------------------------------------
@pytest.mark.parametrize("method", ["quad", "mc"])
def test_logged_propensities_equal_empirical_choice_frequencies(method):
    b = ThompsonBandit(epsilon=0.05, method=method, seed=3)
    for cid, (s, t) in zip(ARMS, [(4, 100), (7, 100), (9, 100)]):   # overlapping posteriors
        b.update(CTX, cid, successes=s, trials=t)
    n = 30_000
    chosen, logged = Counter(), {}
    for _ in range(n):                                   # no decision_id: the posterior stays fixed
        c = b.choose(CTX, ARMS)
        chosen[c.content_id] += 1
        logged.setdefault(c.content_id, set()).add(c.propensity)
        assert c.propensity == c.probabilities[c.content_id]
    # one policy while the posterior is fixed: a single propensity per item
    p = np.array([logged[a].pop() for a in ARMS])
    assert abs(p.sum() - 1) < 1e-9 and all(0.04 < x < 0.8 for x in p), p
    observed = np.array([chosen[a] for a in ARMS])
    assert stats.chisquare(observed, n * p).pvalue > 0.001, (observed / n, p)
    # and a wrong propensity (e.g. forgetting the floor, or 1/n) would be rejected by the same test
    assert stats.chisquare(observed, n * np.full(3, 1 / 3)).pvalue < 1e-6


def test_quadrature_matches_a_large_monte_carlo():
    rng = np.random.default_rng(11)
    cases = [([3, 6, 9], [100, 100, 100]), ([1, 500, 2], [1, 9500, 30]), ([20, 50, 80, 5, 1], [1000, 1000, 1000, 200, 1]),
             ([2, 3], [10_000, 10_000]), ([1, 1, 1, 1], [1, 1, 1, 1])]
    for a, b in cases:
        exact = thompson_probabilities(a, b)
        ref = monte_carlo_probabilities(a, b, 400_000, rng)
        assert np.abs(exact - ref).max() < 0.004, (a, b, exact, ref)


# -- (3) the exploration floor -----------------------------------------------------------------------
def test_every_arm_keeps_at_least_epsilon_over_n():
    rng = np.random.default_rng(5)
    for eps in (0.05, 0.2):
        b = ThompsonBandit(epsilon=eps, seed=0)
        for case in range(40):
            n = int(rng.integers(2, 7))
            ids = [f"i{j}" for j in range(n)]
            ctx = ("know", f"case{case}", "app")
            for cid in ids:   # from no data to very confident, very different posteriors
                t = float(rng.choice([0, 10, 1000, 100_000]))
                b.update(ctx, cid, successes=float(np.floor(t * rng.uniform(0, 0.2))), trials=t)
            p = b.probabilities(ctx, ids)
            assert abs(p.sum() - 1) < 1e-9
            assert p.min() >= eps / n - 1e-12, (eps, n, p)
    # a dominated arm really sits at the floor (not above it by accident)
    b = ThompsonBandit(epsilon=0.05)
    b.update(CTX, "good", 5000, 50_000)
    b.update(CTX, "bad", 100, 50_000)
    p = b.probabilities(CTX, ["good", "bad"])
    assert p[1] == pytest.approx(0.025, abs=1e-6) and p[0] == pytest.approx(0.975, abs=1e-6)
    with pytest.raises(ConfigError, match="exploration_floor"):
        ThompsonBandit(epsilon=1.5)


# -- (4) off-policy evaluation from the bandit's logs ----------------------------------------------------
def test_ope_on_the_bandit_logs_recovers_fixed_policies():
    logs = simulate("thompson", 20_000, seed=7, batch=100)
    r, mu = logs["reward"].to_numpy(), logs["propensity"].to_numpy()
    assert (mu >= 0.05 / 3 - 1e-12).all() and (mu <= 1).all()
    for arm, true in ((2, CTR[2]), (0, CTR[0])):       # the best arm, and the arm it nearly stopped showing
        pi = (logs["arm"] == arm).to_numpy(float)
        est = evaluate(r, pi, mu, n_boot=400, seed=1).set_index("estimator")
        for name in ("ipw", "snipw"):
            lo, hi = est.loc[name, "ci_low"], est.loc[name, "ci_high"]
            assert lo < true < hi, (arm, name, lo, hi)
            assert hi - lo < (0.02 if arm == 2 else 0.06)   # informative, not a trivially wide interval
    # DR through the CLI's function: a policy file "always show offer-c when the moment is buy"
    policy = pd.DataFrame({"moment": ["buy"], "content_id": ["offer-c"], "probability": [1.0]})
    out = evaluate_policy(logs[["moment", "content_id", "propensity", "reward"]], policy, n_boot=400).set_index("estimator")
    assert out.loc["dr", "ci_low"] < CTR[2] < out.loc["dr", "ci_high"]
    # the logged (learning) policy earned less than always-best, more than uniform (0.05)
    assert 0.06 < out.loc["logged policy (observed)", "value"] < CTR[2]


# -- (5) through the Activator ----------------------------------------------------------------------------
CATALOG = """
items:
  - id: buy-free-delivery
    channels: [web]
    moments: [buy]
    title: "Free delivery today, {{ first_name }}"
  - id: buy-price-match
    channels: [web]
    moments: [buy]
    title: "We match any price"
  - id: buy-reviews
    channels: [web]
    moments: [buy]
    title: "4.8 stars from 2,000 gardeners"
  - id: welcome
    title: "Welcome"
"""
PLAYBOOKS = """
playbooks:
  - name: buy-web
    when: {moments: [buy], channels: [web]}
    action: {channel: web, content: [buy-free-delivery, buy-price-match, buy-reviews]}
"""
T0 = dt.datetime(2026, 9, 1, 10)


class Sink:
    def __init__(self) -> None:
        self.rows: dict[str, list[dict]] = {}

    def __call__(self, table: str, row: dict) -> None:
        self.rows.setdefault(table, []).append(row)


def segment(kind: str, user: str, when: dt.datetime, event: str | None = None, props: dict | None = None) -> dict:
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    raw = {"type": kind, "messageId": f"{user}-{event}-{stamp}", "userId": user, "timestamp": stamp,
           "sentAt": stamp, "event": event, "properties": props or {},
           "context": {"timezone": "Europe/London", "page": {"url": "https://shop.example/"}}}
    return canonical_event(raw, received_at=when, now=when)


@pytest.fixture()
def activator(tmp_path: Path):
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    (tmp_path / "pb").mkdir()
    (tmp_path / "pb" / "web.yaml").write_text(PLAYBOOKS)
    sink = Sink()
    act = Activator(Config(), playbooks_dir=tmp_path / "pb", catalog_path=tmp_path / "catalog.yaml",
                    deliverers={}, log_sink=sink, seed=4)
    yield act, sink
    act.close()


def _decide_round(act: Activator, sink: Sink, people: range, clicks_on: str | None, env: np.random.Generator):
    """Each person searches to buy, gets web content; a click (a real `Content Clicked` event naming
    the decision) comes back when they were shown `clicks_on` (60%) or anything else (5%)."""
    out = []
    for i in people:
        who = f"p{i}"
        act.on_event(segment("track", who, T0 + dt.timedelta(minutes=i), "Products Searched",
                             {"query": "buy cordless drill best price"}))
        d = act.decide(who, {"channel": "web"})
        out.append(d)
        if clicks_on is not None and env.random() < (0.6 if d.content_id == clicks_on else 0.05):
            act.on_event(segment("track", who, T0 + dt.timedelta(minutes=i, seconds=30), "Content Clicked",
                                 {"mm_decision": d.decision_id}))
    return out


def test_activator_logs_true_propensities_and_shifts_after_clicks(activator):
    act, sink = activator
    env = np.random.default_rng(9)
    first = _decide_round(act, sink, range(0, 40), None, env)
    assert {d.status for d in first} == {"chosen"} and {d.moment for d in first} == {"buy"}
    assert len({d.content_id for d in first}) == 3              # all three are tried
    rows = [r for r in sink.rows["decisions"] if r["status"] == "chosen"]
    for r in rows:
        ctx = json.loads(r["context"])
        probs = ctx["propensities"]
        assert set(probs) == {"buy-free-delivery", "buy-price-match", "buy-reviews"}
        assert abs(sum(probs.values()) - 1) < 1e-5
        assert 0 < r["propensity"] < 1 and r["propensity"] == pytest.approx(probs[r["content_id"]], abs=1e-6)
    # no clicks yet: the posteriors only saw trials, so no item dominates
    assert all(0.1 < r["propensity"] < 0.7 for r in rows), [round(r["propensity"], 3) for r in rows]

    learn = _decide_round(act, sink, range(40, 340), "buy-reviews", env)
    assert sink.rows.get("outcomes") and all(o["kind"] == "click" for o in sink.rows["outcomes"])
    assert act.bandit.stats["successes"] == len(sink.rows["outcomes"])
    after = _decide_round(act, sink, range(340, 440), None, env)
    share = Counter(d.content_id for d in after)["buy-reviews"] / len(after)
    assert share > 0.75, Counter(d.content_id for d in after)
    assert np.mean([d.propensity for d in after if d.content_id == "buy-reviews"]) > 0.8
    # the floor still shows the others now and then: each keeps >= 0.05 / 3
    assert min(min(d.context["propensities"].values()) for d in after) >= 0.05 / 3 - 1e-6
    assert Counter(d.content_id for d in learn)["buy-reviews"] > 100


def test_uniform_config_keeps_the_old_behaviour(tmp_path: Path):
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    (tmp_path / "pb").mkdir()
    (tmp_path / "pb" / "web.yaml").write_text(PLAYBOOKS)
    cfg = Config()
    cfg.activation.bandit = "uniform"
    act = Activator(cfg, playbooks_dir=tmp_path / "pb", catalog_path=tmp_path / "catalog.yaml", deliverers={}, seed=1)
    act.on_event(segment("track", "u1", T0, "Products Searched", {"query": "buy cordless drill best price"}))
    d = act.decide("u1", {"channel": "web"})
    assert act.bandit is None and d.propensity == pytest.approx(1 / 3) and "propensities" not in d.context
    act.close()
    cfg.activation.bandit = "greedy"
    with pytest.raises(ConfigError, match="bandit"):
        ThompsonBandit.from_config(cfg)


def test_per_playbook_reward_counts_conversions_not_clicks():
    b = ThompsonBandit(rewards={"cart-email": "conversion"}, seed=0)
    c = b.choose(CTX, ARMS, decision_id="d1", reward=b.reward_for("cart-email"))
    assert not b.observe("d1", "click")                       # a click is not this playbook's reward
    assert b.observe("d1", "conversion") and not b.observe("d1", "conversion")   # once per decision
    assert b.posterior(CTX, c.content_id) == (2.0, 1.0)
    b.choose(CTX, ARMS, decision_id="d2")
    b.discard("d2")                                           # not shown: not a trial
    assert sum(r["trials"] for r in b.counts()) == 1


def test_warm_start_from_the_store_restores_the_posteriors(activator, tmp_path: Path):
    act, sink = activator
    env = np.random.default_rng(2)
    _decide_round(act, sink, range(0, 200), "buy-price-match", env)
    store = Store(tmp_path / "logs.duckdb")
    store.ensure_schema()
    for table in ("decisions", "outcomes"):
        cols = list(TABLES[table])
        store.duck.executemany(f'INSERT INTO "{table}" ({", ".join(cols)}) VALUES ({", ".join("?" for _ in cols)})',
                               [[r.get(c) for c in cols] for r in sink.rows[table]])
    fresh = ThompsonBandit(seed=0)
    assert warm_start_from_store(fresh, store) >= 3
    live = {(tuple(r[k] for k in ("moment", "stage", "channel")), r["content_id"]): (r["successes"], r["trials"])
            for r in act.bandit.counts()}
    loaded = {(tuple(r[k] for k in ("moment", "stage", "channel")), r["content_id"]): (r["successes"], r["trials"])
              for r in fresh.counts()}
    assert loaded == live
    ctx = next(iter(loaded))[0]
    p = fresh.probabilities(ctx, ["buy-free-delivery", "buy-price-match", "buy-reviews"])
    assert p.argmax() == 1 and p[1] > 0.8
    store.close()
    # `serve` seeds the live bandit the same way at startup.
    from types import SimpleNamespace

    from micromoments.cli.serve import warm_start_bandit
    restarted = SimpleNamespace(bandit=ThompsonBandit(seed=0))
    assert warm_start_bandit(restarted, tmp_path / "logs.duckdb") == len(loaded)
    assert {(tuple(r[k] for k in ("moment", "stage", "channel")), r["content_id"]): (r["successes"], r["trials"])
            for r in restarted.bandit.counts()} == live
    # `micromoments ope` on those logs: "always buy-price-match" (true click rate 0.6, the others 0.05)
    (tmp_path / "best.csv").write_text("moment,content_id,probability\nbuy,buy-price-match,1\n")
    (tmp_path / "other.csv").write_text("moment,content_id,probability\nbuy,buy-reviews,1\n")
    runner = CliRunner()
    found = {}
    for policy in ("best.csv", "other.csv"):
        res = runner.invoke(app, ["ope", "--policy", str(tmp_path / policy), "--reward", "click", "--n-boot", "300",
                                  "--db", str(tmp_path / "logs.duckdb")], terminal_width=200)
        assert res.exit_code == 0, res.output
        row = next(line for line in res.output.splitlines() if line.replace("│", " ").split()[:1] == ["ipw"])
        found[policy] = [float(c) for c in row.split("│")[2:5]]     # value, ci_low, ci_high
    value, lo, hi = found["best.csv"]
    assert lo <= 0.6 <= hi and hi - lo < 0.25, found
    assert found["other.csv"][2] < lo, found                  # and it ranks the policies right


def test_concurrent_choices_and_outcomes_keep_consistent_counts():
    b = ThompsonBandit(seed=0)
    credited = Counter()

    def worker(w: int) -> None:
        env = np.random.default_rng(w)
        for k in range(1500):
            did = f"w{w}-{k}"
            c = b.choose(CTX, ARMS, decision_id=did)
            assert abs(sum(c.probabilities.values()) - 1) < 1e-9
            if env.random() < CTR[c.index] * 3 and b.observe(did, "click"):
                credited[w] += 1

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = b.counts()
    assert sum(r["trials"] for r in rows) == 6000 and b.stats["decisions"] == 6000
    assert sum(r["successes"] for r in rows) == sum(credited.values()) == b.stats["successes"] > 0


PUSH_PLAYBOOK = """
playbooks:
  - name: buy-push
    when: {moments: [buy]}
    action: {channel: push, content: [push-a, push-b]}
    limits: {quiet_hours: "off"}
"""
PUSH_CATALOG = """
items:
  - {id: push-a, channels: [push], moments: [buy], title: "A", body: "Free delivery"}
  - {id: push-b, channels: [push], moments: [buy], title: "B", body: "10% off today"}
"""


class Pushes:
    def __init__(self) -> None:
        self.sent: list = []

    def send(self, message) -> str:
        self.sent.append(message)
        return "memory"


@pytest.mark.parametrize("reward, winner", [("conversion", "push-b"), ("click", "push-a")])
def test_a_push_playbook_learns_from_its_own_reward_kind(tmp_path: Path, reward: str, winner: str):
    (tmp_path / "catalog.yaml").write_text(PUSH_CATALOG)
    (tmp_path / "pb").mkdir()
    (tmp_path / "pb" / "push.yaml").write_text(PUSH_PLAYBOOK)
    cfg = Config()
    cfg.activation.bandit_rewards = {"buy-push": reward}
    sink, pushes = Sink(), Pushes()
    act = Activator(cfg, playbooks_dir=tmp_path / "pb", catalog_path=tmp_path / "catalog.yaml",
                    deliverers={"push": pushes}, log_sink=sink, seed=8)
    env = np.random.default_rng(3)
    chosen = []
    for i in range(160):
        who, t = f"q{i}", T0 + dt.timedelta(minutes=i)
        ds = act.on_event(segment("track", who, t, "Products Searched", {"query": "buy cordless drill best price"}))
        assert [d.status for d in ds] == ["chosen"] and ds[0].playbook == "buy-push"
        d = ds[0]
        assert 0 < d.propensity < 1 and abs(sum(d.context["propensities"].values()) - 1) < 1e-5
        chosen.append(d.content_id)
        # push-a gets opened a lot but never sells; push-b sells to 40%
        if d.content_id == "push-a" and env.random() < 0.7:
            act.on_event(segment("track", who, t + dt.timedelta(seconds=20), "Push Notification Opened",
                                 {"mm_decision": d.decision_id}))
        if d.content_id == "push-b" and env.random() < 0.4:
            act.on_event(segment("track", who, t + dt.timedelta(seconds=40), "Order Completed", {"revenue": 30.0}))
    act.close()
    kinds = Counter(o["kind"] for o in sink.rows["outcomes"])
    assert kinds["click"] >= 3 and kinds["conversion"] >= 3, (kinds, Counter(chosen))
    assert act.bandit.stats["successes"] == kinds[reward]          # only the playbook's reward kind counts
    assert Counter(chosen[-60:])[winner] > 45, Counter(chosen[-60:])
    assert len(pushes.sent) == 160
