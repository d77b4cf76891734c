"""How good the predictions are on the test slice: AUC, calibration (ECE), lift, baselines, importance.

>>> import numpy as np
>>> round(ece(np.array([0, 1, 0, 1]), np.array([0.0, 1.0, 0.0, 1.0])), 3)
0.0
"""

from __future__ import annotations

from typing import Any

import numpy as np

from micromoments.predict.honesty import auc_interval, verdict
from micromoments.predict.models import Predictor


def auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """ROC AUC, or None when the slice holds one class only."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y, dtype=bool)
    if y.all() or not y.any():
        return None
    return float(roc_auc_score(y, p))


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the count-weighted |mean p - positive rate| over equal-width bins."""
    y = np.asarray(y, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.sum() * abs(p[sel].mean() - y[sel].mean())
    return float(total / max(len(y), 1))


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Per equal-width bin: mean predicted, observed rate, rows (for the calibration plot)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        sel = which == b
        if sel.any():
            out.append({"predicted": float(p[sel].mean()), "observed": float(np.mean(y[sel])), "n": int(sel.sum())})
    return out


def lift_table(y: np.ndarray, p: np.ndarray, groups: int = 10) -> list[dict[str, float]]:
    """Deciles by score (highest first): rate, lift over the base rate, cumulative share of positives."""
    y = np.asarray(y, dtype=float)
    order = np.argsort(-p, kind="stable")
    base = y.mean() if len(y) else 0.0
    out, captured = [], 0.0
    for g, chunk in enumerate(np.array_split(order, groups)):
        if not len(chunk):
            continue
        rate = float(y[chunk].mean())
        captured += float(y[chunk].sum())
        out.append({"decile": g + 1, "rate": rate, "lift": rate / base if base else 0.0,
                    "captured": captured / y.sum() if y.sum() else 0.0})
    return out


def macro_auc(y: dict[str, np.ndarray], scores: dict[str, np.ndarray]) -> float | None:
    vals = [a for name in y if (a := auc(y[name], scores[name])) is not None]
    return float(np.mean(vals)) if vals else None


def evaluate(predictor: Predictor, X: np.ndarray, labels: Any, cutoffs: np.ndarray,
             *, importance: bool = True, max_importance_rows: int = 5000) -> dict[str, Any]:
    """Everything the CLI prints and the report draws, on each target's test slice."""
    spec, split = predictor.spec, predictor.split
    names = spec.feature_names
    result: dict[str, Any] = {"targets": {}, "split": split.to_dict(), "next_moment": {}}
    m_scores: dict[str, dict[str, np.ndarray]] = {"model": {}, "repeat_last": {}, "global_frequency": {},
                                                  "person_frequency": {}}
    m_truth: dict[str, np.ndarray] = {}
    for name, target in predictor.targets.items():
        _, _, test = split.masks(cutoffs, target.horizon_s)
        Xt, yt = X[test], labels.y[name][test].astype(bool)
        p = target.predict(Xt)
        entry = {"n_train": target.n_train, "n_val": target.n_val, "n_test": int(test.sum()),
                 "n_iter": target.n_iter, "prior": target.prior, "test_rate": float(yt.mean()) if len(yt) else None,
                 "auc": auc(yt, p), "ece": ece(yt, p) if len(yt) else None,
                 "calibration": calibration_table(yt, p), "lift": lift_table(yt, p)}
        # Every AUC with its bootstrap interval, and a verdict saying when it is not to be trusted.
        entry["auc_low"], entry["auc_high"] = auc_interval(yt, p)
        entry["positives_test"] = int(yt.sum())
        entry["positives_train"] = int(round(target.prior * target.n_train))
        entry["status"], entry["note"] = verdict(
            auc=entry["auc"], low=entry["auc_low"], high=entry["auc_high"], positives_test=entry["positives_test"],
            positives_train=entry["positives_train"], span_s=float(split.t_end - split.t0),
            horizon_s=float(target.horizon_s))
        result["targets"][name] = entry
        if name.startswith("next_"):
            m = name[len("next_"):]
            m_truth[name] = yt
            m_scores["model"][name] = p
            m_scores["repeat_last"][name] = Xt[:, names.index(f"last_moment_{m}")]
            m_scores["global_frequency"][name] = np.full(len(yt), target.prior)
            m_scores["person_frequency"][name] = Xt[:, names.index(f"share_{m}")]
    if m_truth:
        result["next_moment"] = {k: macro_auc(m_truth, v) for k, v in m_scores.items()}
        result["next_moment"]["per_type"] = {
            n: {k: auc(m_truth[n], v[n]) for k, v in m_scores.items()} for n in m_truth}
    if importance:
        result["importance"] = grouped_importance(predictor, X, labels, cutoffs, max_rows=max_importance_rows)
    return result


def grouped_importance(predictor: Predictor, X: np.ndarray, labels: Any, cutoffs: np.ndarray,
                       *, max_rows: int = 5000, seed: int = 0) -> dict[str, dict[str, float]]:
    """Drop in test AUC when one feature family is shuffled (rows kept together), per model family.

    Families: `propensity (session)`, `propensity (7 days)`, `next moment` (macro AUC).
    """
    rng = np.random.default_rng(seed)
    groups = predictor.spec.feature_groups
    families = {"propensity (session)": ["buy_session"], "propensity (7 days)": ["buy_7d"],
                "next moment": predictor.moment_targets}
    out: dict[str, dict[str, float]] = {}
    for family, targets in families.items():
        targets = [t for t in targets if t in predictor.targets and predictor.targets[t].hgb is not None]
        if not targets:
            continue
        _, _, test = predictor.split.masks(cutoffs, predictor.targets[targets[0]].horizon_s)
        idx = np.flatnonzero(test)
        if idx.size > max_rows:
            idx = np.sort(rng.choice(idx, max_rows, replace=False))
        Xt = X[idx]
        ys = {t: labels.y[t][idx] for t in targets}
        base = macro_auc(ys, {t: predictor.targets[t].predict(Xt) for t in targets})
        if base is None:
            continue
        drops = {}
        perm = rng.permutation(len(idx))
        for g, cols in groups.items():
            Xp = Xt.copy()
            Xp[:, cols] = Xt[perm][:, cols]
            score = macro_auc(ys, {t: predictor.targets[t].predict(Xp) for t in targets})
            drops[g] = float(base - (score if score is not None else base))
        out[family] = dict(sorted(drops.items(), key=lambda kv: -kv[1]))
    return out
