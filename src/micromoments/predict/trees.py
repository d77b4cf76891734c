"""The trained trees as flat numpy arrays: a fast walk for one row (live), no sklearn needed.

`HistGradientBoostingClassifier.predict_proba` on one row costs ~1 ms of Python and thread
overhead per model. Here every tree of every target is walked at once, one depth level per
numpy step, so a row costs a few dozen numpy calls whatever the number of trees.
The sums run in sklearn's order (baseline, then tree by tree), so the log-odds match exactly.

>>> import numpy as np
>>> from sklearn.ensemble import HistGradientBoostingClassifier
>>> rng = np.random.default_rng(0); X = rng.normal(size=(500, 4)); y = X[:, 0] > 0
>>> hgb = HistGradientBoostingClassifier(max_iter=20).fit(X, y)
>>> ct = CompiledTrees.from_models({"t": (hgb, None)})
>>> bool(np.allclose(ct.raw_row(X[0])["t"], hgb.decision_function(X[:1])[0], atol=1e-12))
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class CompiledTrees:
    targets: list[str]
    feature: np.ndarray        # int64 per node (0 on leaves)
    threshold: np.ndarray      # float64 per node
    missing_left: np.ndarray   # bool per node
    left: np.ndarray           # int64 global node index (self on leaves)
    right: np.ndarray
    value: np.ndarray          # float64 leaf value
    roots: np.ndarray          # int64 root node of each tree
    tree_start: np.ndarray     # int64: first tree of each target (len(targets) + 1 entries)
    baseline: np.ndarray       # float64 per target
    depth: int
    # calibration per target: kind 0 = none (sigmoid of raw), 1 = isotonic, 2 = sigmoid(a, b), 3 = constant
    cal_kind: np.ndarray
    cal_a: np.ndarray
    cal_b: np.ndarray
    iso_x: list[np.ndarray]
    iso_y: list[np.ndarray]

    @classmethod
    def from_models(cls, models: dict[str, tuple[Any, Any]], priors: dict[str, float] | None = None) -> "CompiledTrees":
        """`models`: target -> (fitted HistGradientBoostingClassifier or None, calibrator or None)."""
        feats, thr, miss, left, right, val, roots, starts, base = [], [], [], [], [], [], [], [0], []
        kinds, ca, cb, ix, iy = [], [], [], [], []
        offset, depth = 0, 1
        for name, (hgb, cal) in models.items():
            if hgb is not None:
                base.append(float(np.asarray(hgb._baseline_prediction).ravel()[0]))
                for per_iter in hgb._predictors:
                    nodes = per_iter[0].nodes
                    n = len(nodes)
                    leaf = nodes["is_leaf"].astype(bool)
                    own = np.arange(n) + offset
                    feats.append(np.where(leaf, 0, nodes["feature_idx"]).astype(np.int64))
                    thr.append(nodes["num_threshold"].astype(np.float64))
                    miss.append(nodes["missing_go_to_left"].astype(bool))
                    left.append(np.where(leaf, own, nodes["left"].astype(np.int64) + offset))
                    right.append(np.where(leaf, own, nodes["right"].astype(np.int64) + offset))
                    val.append(np.where(leaf, nodes["value"], 0.0).astype(np.float64))
                    roots.append(offset)
                    depth = max(depth, int(nodes["depth"].max()) + 1)
                    offset += n
            else:
                base.append(0.0)
            starts.append(len(roots))
            kind, a, b, x, y = _calibration(cal, hgb, (priors or {}).get(name))
            kinds.append(kind), ca.append(a), cb.append(b), ix.append(x), iy.append(y)
        cat = (lambda parts, dtype: np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype))
        return cls(list(models), cat(feats, np.int64), cat(thr, np.float64), cat(miss, bool),
                   cat(left, np.int64), cat(right, np.int64), cat(val, np.float64),
                   np.asarray(roots, dtype=np.int64), np.asarray(starts, dtype=np.int64),
                   np.asarray(base, dtype=np.float64), depth, np.asarray(kinds, dtype=np.int64),
                   np.asarray(ca, dtype=np.float64), np.asarray(cb, dtype=np.float64), ix, iy)

    # ---- one row ----------------------------------------------------------------------
    def raw_row(self, x: np.ndarray) -> dict[str, float]:
        """Log-odds of each target for one feature row."""
        node = self.roots
        if node.size:
            for _ in range(self.depth):
                xv = x[self.feature[node]]
                go_left = np.where(np.isnan(xv), self.missing_left[node], xv <= self.threshold[node])
                node = np.where(go_left, self.left[node], self.right[node])
            leaves = self.value[node]
        out = {}
        for i, name in enumerate(self.targets):
            seg = leaves[self.tree_start[i]:self.tree_start[i + 1]] if node.size else np.zeros(0)
            # Baseline first, then tree by tree: the order sklearn adds them in.
            out[name] = float(np.cumsum(np.concatenate(([self.baseline[i]], seg)))[-1])
        return out

    def predict_row(self, x: np.ndarray) -> dict[str, float]:
        """Calibrated probability of each target for one feature row."""
        raw = self.raw_row(np.asarray(x, dtype=np.float64).ravel())
        return {name: self._calibrate(i, raw[name]) for i, name in enumerate(self.targets)}

    # ---- many rows: every tree of every target at once, a chunk of rows at a time ----------------
    def raw(self, X: np.ndarray, chunk: int = 2048, threads: int = 1) -> dict[str, np.ndarray]:
        """Log-odds of each target for each row of X (the same sums, in the same order, as `raw_row`).

        `threads` > 1 walks chunks in a thread pool (numpy releases the GIL in the heavy steps).
        """
        X = np.ascontiguousarray(X, dtype=np.float64)
        n = X.shape[0]
        out = {name: np.empty(n) for name in self.targets}
        starts = range(0, n, chunk)
        if threads > 1 and n > chunk:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda lo: self._raw_chunk(X, lo, chunk, out), starts))
        else:
            for lo in starts:
                self._raw_chunk(X, lo, chunk, out)
        return out

    def _raw_chunk(self, X: np.ndarray, lo: int, chunk: int, out: dict[str, np.ndarray]) -> None:
        Xc = X[lo:lo + chunk]
        m, n_trees = Xc.shape[0], self.roots.size
        leaves = np.zeros((m, 0))
        if n_trees:
            flat = Xc.ravel()
            base = (np.arange(m) * X.shape[1])[:, None]
            node = np.broadcast_to(self.roots, (m, n_trees)).copy()
            for _ in range(self.depth):
                xv = flat[base + self.feature[node]]
                go_left = np.where(np.isnan(xv), self.missing_left[node], xv <= self.threshold[node])
                node = np.where(go_left, self.left[node], self.right[node])
            leaves = self.value[node]
        for i, name in enumerate(self.targets):
            a, b = self.tree_start[i], self.tree_start[i + 1]
            acc = np.empty((m, 1 + b - a))
            acc[:, 0] = self.baseline[i]  # baseline first, then tree by tree: sklearn's order
            acc[:, 1:] = leaves[:, a:b]
            out[name][lo:lo + m] = np.cumsum(acc, axis=1)[:, -1]

    def predict(self, X: np.ndarray, chunk: int = 2048, threads: int = 1) -> dict[str, np.ndarray]:
        """Calibrated probabilities of each target for each row of X."""
        raw = self.raw(X, chunk, threads)
        return {name: self._calibrate_many(i, raw[name]) for i, name in enumerate(self.targets)}

    def _calibrate_many(self, i: int, raw: np.ndarray) -> np.ndarray:
        kind = self.cal_kind[i]
        if kind == 1:
            p = np.interp(np.clip(raw, self.iso_x[i][0], self.iso_x[i][-1]), self.iso_x[i], self.iso_y[i])
        elif kind == 2:
            p = 1.0 / (1.0 + np.exp(self.cal_a[i] * raw + self.cal_b[i]))
        elif kind == 3:
            p = np.full(raw.shape, float(self.cal_a[i]))
        else:
            p = 1.0 / (1.0 + np.exp(-raw))
        return np.clip(p, 0.0, 1.0)

    def _calibrate(self, i: int, raw: float) -> float:
        kind = self.cal_kind[i]
        if kind == 1:
            x = min(max(raw, self.iso_x[i][0]), self.iso_x[i][-1])
            p = float(np.interp(x, self.iso_x[i], self.iso_y[i]))
        elif kind == 2:
            p = float(1.0 / (1.0 + np.exp(self.cal_a[i] * raw + self.cal_b[i])))
        elif kind == 3:
            p = float(self.cal_a[i])
        else:
            p = float(1.0 / (1.0 + np.exp(-raw)))
        return min(max(p, 0.0), 1.0)

    # ---- persistence (plain numpy: loads without sklearn or pickle) ---------------------------
    def to_npz(self, path: Any) -> None:
        arrays = {k: getattr(self, k) for k in ("feature", "threshold", "missing_left", "left", "right", "value",
                                                "roots", "tree_start", "baseline", "cal_kind", "cal_a", "cal_b")}
        for i, (x, y) in enumerate(zip(self.iso_x, self.iso_y)):
            arrays[f"iso_x_{i}"], arrays[f"iso_y_{i}"] = x, y
        np.savez_compressed(path, targets=np.asarray(self.targets), depth=np.asarray(self.depth), **arrays)

    @classmethod
    def from_npz(cls, path: Any) -> "CompiledTrees":
        with np.load(path, allow_pickle=False) as z:
            targets = [str(t) for t in z["targets"]]
            kw = {k: z[k] for k in ("feature", "threshold", "missing_left", "left", "right", "value", "roots",
                                     "tree_start", "baseline", "cal_kind", "cal_a", "cal_b")}
            return cls(targets=targets, depth=int(z["depth"]),
                       iso_x=[z[f"iso_x_{i}"] for i in range(len(targets))],
                       iso_y=[z[f"iso_y_{i}"] for i in range(len(targets))], **kw)


def _calibration(cal: Any, hgb: Any, prior: float | None) -> tuple[int, float, float, np.ndarray, np.ndarray]:
    empty = np.zeros(0)
    if hgb is None:
        return 3, float(prior or 0.0), 0.0, empty, empty
    if cal is None:
        return 0, 0.0, 0.0, empty, empty
    if hasattr(cal, "X_thresholds_"):
        return 1, 0.0, 0.0, np.asarray(cal.X_thresholds_, dtype=np.float64), np.asarray(cal.y_thresholds_, dtype=np.float64)
    return 2, float(cal.a_), float(cal.b_), empty, empty
