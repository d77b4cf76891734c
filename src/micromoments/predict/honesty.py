"""Honest model quality: a bootstrap interval for every AUC, and a verdict per target that says
when the data is too thin or the model no better than chance.

A target is
- `ok`: enough positives and an AUC interval above 0.5;
- `chance`: the 95 % interval of its AUC reaches 0.5 (no better than guessing);
- `thin`: fewer than `MIN_POSITIVES` positives in the training or the test period, or less data
  than the target's horizon (a 7-day purchase target on 3 hours of clicks), so any AUC is unstable;
- `untestable`: the test period holds one class only (no AUC at all).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = rng.random(2000) < 0.3
>>> lo, hi = auc_interval(y, rng.random(2000))
>>> lo < 0.5 < hi
True
>>> verdict(auc=0.51, low=0.47, high=0.55, positives_test=300, positives_train=900, span_s=86400 * 30, horizon_s=3600)[0]
'chance'
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["MIN_POSITIVES", "auc_interval", "verdict"]

MIN_POSITIVES = 20  # below this many positives an AUC swings by ±0.1 from one resample to the next
_BOOT_ROWS = 20_000  # rows the bootstrap resamples (a sample of the test slice above this)


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """Mann–Whitney AUC with ties counted half (equals sklearn's roc_auc_score)."""
    pos = int(y.sum())
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def auc_interval(y: np.ndarray, p: np.ndarray, *, draws: int = 200, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of the AUC (rows resampled with replacement; seeded)."""
    y, p = np.asarray(y, dtype=bool), np.asarray(p, dtype=float)
    if y.all() or not y.any():
        return None, None
    rng = np.random.default_rng(seed)
    if len(y) > _BOOT_ROWS:
        keep = rng.choice(len(y), _BOOT_ROWS, replace=False)
        y, p = y[keep], p[keep]
    values = []
    for _ in range(draws):
        idx = rng.integers(0, len(y), len(y))
        a = _auc(y[idx], p[idx])
        if a == a:
            values.append(a)
    if not values:
        return None, None
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _duration(seconds: float) -> str:
    return f"{seconds / 86400:.0f} days" if seconds >= 2 * 86400 else f"{seconds / 3600:.0f} h"


def verdict(*, auc: float | None, low: float | None, high: float | None, positives_test: int,
            positives_train: int, span_s: float, horizon_s: float) -> tuple[str, str]:
    """(status, note) for one target (see the module doc); the note says why in plain words."""
    if span_s < horizon_s:
        return "thin", (f"only {_duration(span_s)} of data, shorter than its {_duration(horizon_s)} horizon: "
                        "no stable estimate")
    if auc is None:
        return "untestable", (f"the test period holds one class only ({positives_test:,} positives): "
                              "no AUC can be measured")
    if positives_test < MIN_POSITIVES or positives_train < MIN_POSITIVES:
        return "thin", (f"too few positives for a stable estimate ({positives_train:,} in training, "
                        f"{positives_test:,} in the test period; at least {MIN_POSITIVES} each)")
    if low is not None and low <= 0.5:
        return "chance", f"no better than chance: AUC {auc:.2f}, 95 % interval {low:.2f}–{high:.2f} reaches 0.50"
    return "ok", ""
