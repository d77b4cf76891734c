"""Off-policy evaluation: what would a *new* content-choice policy have earned, from logs of the old one?

The live path logs, for every decision, the content chosen and the probability (`propensity`) the
logging policy had of choosing it. Given the new policy's probabilities π(a|x) for the logged action
and, for doubly robust, a reward model q̂(x, a):

* IPW (Horvitz & Thompson 1952; Precup et al. 2000):   V̂ = mean(w·r),  w = π(a|x)/μ(a|x)
* SNIPW (Swaminathan & Joachims 2015):               V̂ = Σ w·r / Σ w
* DR (Dudík, Langford & Li 2011):                     V̂ = mean(Σ_a π(a|x) q̂(x,a) + w·(r − q̂(x,a_logged)))

Intervals are percentile bootstraps over decisions (Efron & Tibshirani 1993), drawn as a matrix of
resampled row indices in chunks, so the whole bootstrap is a few vectorised gathers.

>>> import numpy as np
>>> r = np.array([1.0, 0.0, 1.0, 0.0]); mu = np.full(4, 0.5); pi = np.array([1.0, 0.0, 1.0, 1.0])
>>> round(ipw(r, pi, mu), 3), round(snipw(r, pi, mu), 3)
(1.0, 0.667)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from micromoments.errors import InputError


def _check(reward: np.ndarray, pi: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    reward, pi, mu = (np.asarray(x, dtype=float) for x in (reward, pi, mu))
    if not (reward.shape == pi.shape == mu.shape):
        raise InputError("reward, target and logging probabilities must have one value per decision",
                         where="off-policy evaluation", hint="align them on decision_id")
    if (mu <= 0).any() or (mu > 1).any():
        bad = int(np.flatnonzero((mu <= 0) | (mu > 1))[0])
        raise InputError(f"logged propensity must be in (0, 1], got {mu[bad]!r}", where=f"decisions, row {bad + 1}, "
                         "column propensity", hint="the live path must log the probability of the chosen content")
    return reward, pi, mu


def ipw(reward: np.ndarray, pi: np.ndarray, mu: np.ndarray) -> float:
    """Inverse propensity weighting: unbiased when μ > 0 wherever π > 0."""
    r, p, m = _check(reward, pi, mu)
    return float(np.mean(r * p / m))


def snipw(reward: np.ndarray, pi: np.ndarray, mu: np.ndarray) -> float:
    """Self-normalised IPW: slightly biased, much lower variance."""
    r, p, m = _check(reward, pi, mu)
    w = p / m
    return float((w * r).sum() / w.sum()) if w.sum() > 0 else float("nan")


def dr(reward: np.ndarray, pi: np.ndarray, mu: np.ndarray, q_logged: np.ndarray, q_target: np.ndarray) -> float:
    """Doubly robust: the reward model's value for π, corrected by IPW on its residuals.
    `q_logged` = q̂(x, logged action); `q_target` = Σ_a π(a|x) q̂(x, a)."""
    r, p, m = _check(reward, pi, mu)
    return float(np.mean(np.asarray(q_target, float) + p / m * (r - np.asarray(q_logged, float))))


@dataclass
class Estimate:
    estimator: str
    value: float
    ci_low: float
    ci_high: float


def evaluate(reward: np.ndarray, pi: np.ndarray, mu: np.ndarray, q_logged: np.ndarray | None = None,
             q_target: np.ndarray | None = None, *, n_boot: int = 1000, alpha: float = 0.05,
             seed: int = 0) -> pd.DataFrame:
    """IPW, SNIPW (and DR when a reward model is given) with percentile-bootstrap intervals.

    >>> rng = np.random.default_rng(0)
    >>> mu = np.full(2000, 0.5); a = rng.random(2000) < 0.5; r = (rng.random(2000) < np.where(a, 0.3, 0.1)) * 1.0
    >>> pi = np.where(a, 1.0, 0.0)  # the policy that always picks action 1 (true value 0.3)
    >>> t = evaluate(r, pi, mu, n_boot=200)
    >>> bool(((t.ci_low < 0.3) & (0.3 < t.ci_high)).all())
    True
    """
    r, p, m = _check(reward, pi, mu)
    n = r.size
    rng = np.random.default_rng(seed)
    # resample counts: n_boot × n multinomial draws — each row is one bootstrap sample
    w = p / m
    cols = {"ipw": (w * r, None), "snipw": (w * r, w)}
    if q_logged is not None and q_target is not None:
        cols["dr"] = (np.asarray(q_target, float) + w * (r - np.asarray(q_logged, float)), None)
    boots: dict[str, list[np.ndarray]] = {name: [] for name in cols}
    chunk = max(1, min(n_boot, 10_000_000 // max(n, 1)))  # ≤ 80 MB of indices at a time
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, (min(chunk, n_boot - start), n))
        for name, (num, den) in cols.items():
            boots[name].append(num[idx].mean(1) if den is None else num[idx].sum(1) / den[idx].sum(1))
    rows = []
    for name, (num, den) in cols.items():
        point = num.sum() / (den.sum() if den is not None else n)
        boot = np.concatenate(boots[name])
        lo, hi = np.nanquantile(boot, [alpha / 2, 1 - alpha / 2])
        rows.append(Estimate(name, float(point), float(lo), float(hi)))
    return pd.DataFrame([e.__dict__ for e in rows])


def fit_reward_model(context: np.ndarray, action: np.ndarray, reward: np.ndarray, n_actions: int,
                     degree: int = 2, folds: int = 2, seed: int = 0) -> np.ndarray:
    """A direct-method reward model q̂(x, a): per action, a ridge regression on polynomial context
    features (clipped to [0, 1] for binary rewards), **cross-fitted**: each row's predictions come
    from a model fitted on the other folds (Chernozhukov et al. 2018), so DR's residuals are honest
    and its bootstrap interval keeps its coverage. DR stays unbiased however rough q̂ is; a better
    q̂ only narrows the interval. Returns the n × n_actions matrix of predictions for the logged rows."""
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import PolynomialFeatures

    reward = np.asarray(reward, float)
    action = np.asarray(action)
    X = PolynomialFeatures(degree, include_bias=False).fit_transform(np.asarray(context, float).reshape(len(reward), -1))
    out = np.zeros((len(reward), n_actions))
    binary = set(np.unique(reward)) <= {0.0, 1.0}
    fold = np.random.default_rng(seed).integers(0, folds, len(reward)) if folds > 1 else np.zeros(len(reward), int)
    for f in range(max(folds, 1)):
        test = fold == f
        train = ~test if folds > 1 else test
        for a in range(n_actions):
            sel = train & (action == a)
            if sel.sum() < X.shape[1] + 2:
                out[test, a] = reward[sel].mean() if sel.any() else reward[train].mean()
                continue
            out[test, a] = Ridge(alpha=1.0).fit(X[sel], reward[sel]).predict(X[test])
    return np.clip(out, 0, 1) if binary else out


# --------------------------------------------------------------------------- from the store
REWARDS = ("conversion", "click", "revenue")


def logged_decisions_expr(decisions: Any, outcomes: Any, reward: str = "conversion") -> Any:
    """Ibis: one row per chosen decision with its logged propensity and reward (conversions, clicks or
    revenue credited to the decision), plus the decision's context columns."""
    import ibis

    if reward not in REWARDS:
        raise InputError(f"unknown reward '{reward}'", where="--reward", hint=f"use {', '.join(REWARDS)}")
    d = decisions.filter(decisions.content_id.notnull() & decisions.propensity.notnull()
                         & (decisions.status == "chosen"))
    o = outcomes.filter(outcomes.decision_id.notnull())
    if reward == "revenue":
        agg = o.group_by("decision_id").aggregate(reward=o.revenue.fill_null(0.0).sum(where=o.kind == "conversion"))
    else:
        agg = o.group_by("decision_id").aggregate(reward=(o.kind == reward).cast("float64").max())
    j = d.left_join(agg, "decision_id").drop("decision_id_right")
    return j.select("decision_id", "moment", "stage", "channel", "persona", "playbook", "content_id", "propensity",
                    reward=ibis.coalesce(j.reward, 0.0))


def read_policy(path: str | Path) -> pd.DataFrame:
    """A target policy as CSV: context columns (any of moment, stage, channel, persona, playbook), then
    `content_id,probability`; probabilities must sum to 1 within each context."""
    path = Path(path)
    if not path.exists():
        raise InputError("policy file not found", where=str(path), hint="CSV with columns moment,content_id,probability")
    return check_policy(pd.read_csv(path, dtype=str).assign(
        probability=lambda f: pd.to_numeric(f["probability"], errors="coerce") if "probability" in f else None), str(path))


def check_policy(policy: pd.DataFrame, where: str = "policy") -> pd.DataFrame:
    for col in ("content_id", "probability"):
        if col not in policy.columns:
            raise InputError(f"missing column '{col}'", where=where, hint="columns: <context...>,content_id,probability")
    bad = policy["probability"].isna() | (policy["probability"] < 0) | (policy["probability"] > 1)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError("probability must be a number in [0, 1]", where=f"{where}, row {i + 2}, column probability")
    keys = [c for c in policy.columns if c not in ("content_id", "probability")]
    sums = policy.groupby(keys, dropna=False)["probability"].sum() if keys else pd.Series([policy["probability"].sum()])
    off = sums[(sums - 1).abs() > 1e-6]
    if len(off):
        raise InputError(f"probabilities sum to {off.iloc[0]:.4g}, not 1, for context {off.index[0]!r}", where=where,
                         hint="each context's rows must add up to 1")
    return policy


def evaluate_policy(logs: pd.DataFrame, policy: pd.DataFrame, *, n_boot: int = 1000, alpha: float = 0.05,
                    prior: float = 10.0, seed: int = 0) -> pd.DataFrame:
    """IPW / SNIPW / DR value of `policy` (context columns + content_id + probability) on logged
    decisions (`logged_decisions_expr` output). DR's reward model is the mean reward per
    (context, content), shrunk toward the content's overall mean with `prior` pseudo-observations."""
    policy = check_policy(policy)
    keys = [c for c in policy.columns if c not in ("content_id", "probability")]
    missing = [k for k in keys if k not in logs.columns]
    if missing:
        raise InputError(f"policy context column(s) {missing} are not in the decisions", where="policy",
                         hint="use moment, stage, channel, persona or playbook")
    logs = logs.reset_index(drop=True)
    logs[keys] = logs[keys].astype(object).where(logs[keys].notna(), None)
    pol = policy.astype({k: object for k in keys})
    pi = logs.merge(pol, on=[*keys, "content_id"], how="left")["probability"].fillna(0.0).to_numpy()
    # reward model q̂(x, a): cell mean shrunk toward the content mean
    overall = logs.groupby("content_id")["reward"].mean()
    cells = logs.groupby([*keys, "content_id"], dropna=False)["reward"].agg(["sum", "count"]).reset_index()
    cells["q"] = (cells["sum"] + prior * cells["content_id"].map(overall).fillna(logs["reward"].mean())) / (cells["count"] + prior)
    q_logged = logs.merge(cells[[*keys, "content_id", "q"]], on=[*keys, "content_id"], how="left")["q"].to_numpy()
    tgt = pol.merge(cells[[*keys, "content_id", "q"]], on=[*keys, "content_id"], how="left")
    tgt["q"] = tgt["q"].fillna(tgt["content_id"].map(overall)).fillna(logs["reward"].mean())
    v = (tgt.assign(pq=tgt.probability * tgt.q).groupby(keys, dropna=False)["pq"].sum().rename("q_target").reset_index()
         if keys else pd.DataFrame({"q_target": [float((tgt.probability * tgt.q).sum())]}))
    q_target = (logs.merge(v, on=keys, how="left")["q_target"] if keys else
                pd.Series(np.full(len(logs), v.q_target.iloc[0]))).fillna(0.0).to_numpy()
    out = evaluate(logs["reward"].to_numpy(float), pi, logs["propensity"].to_numpy(float), q_logged, q_target,
                   n_boot=n_boot, alpha=alpha, seed=seed)
    logged = float(logs["reward"].mean())
    return pd.concat([out, pd.DataFrame([{"estimator": "logged policy (observed)", "value": logged,
                                          "ci_low": np.nan, "ci_high": np.nan}])], ignore_index=True)


def greedy_policy(logs: pd.DataFrame, keys: list[str] | None = None, min_decisions: int = 30) -> pd.DataFrame:
    """The policy that always shows, in each context, the content with the best logged reward rate
    (IPW-weighted, among contents shown at least `min_decisions` times there) — a natural candidate
    to evaluate off-policy before switching to it."""
    keys = keys or ["moment"]
    f = logs.assign(_w=1.0 / logs["propensity"], _wr=logs["reward"] / logs["propensity"])
    g = f.groupby([*keys, "content_id"], dropna=False).agg(n=("reward", "size"), w=("_w", "sum"), wr=("_wr", "sum")).reset_index()
    g = g[g["n"] >= min_decisions]
    if g.empty:
        return pd.DataFrame(columns=[*keys, "content_id", "probability"])
    g["rate"] = g["wr"] / g["w"]
    best = g.sort_values("rate", ascending=False).groupby(keys, dropna=False).head(1)
    return best[[*keys, "content_id"]].assign(probability=1.0).reset_index(drop=True)
