"""Calibrated gradient boosting per target: `next_<moment>` (one-vs-rest), `buy_session`, `buy_7d`.

Each target gets a `HistGradientBoostingClassifier` trained on the past (time-based split), early
stopped and then calibrated (isotonic, through `CalibratedClassifierCV` on the frozen model) on the
validation slice that follows it in time.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(4000, 3)); y = (X[:, 0] + rng.normal(size=4000) > 1)
>>> t = np.arange(4000.0)
>>> m = fit_target("demo", X, y, t, TimeSplit.from_range(0, 4000), horizon_s=0.0)
>>> 0.0 <= float(m.predict(X[:1])[0]) <= 1.0
True
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from micromoments.predict.features import FeatureSpec
from micromoments.predict.split import TimeSplit


@dataclass
class TrainSettings:
    """Knobs of `micromoments predict train` (also `[predict]` in micromoments.toml)."""

    next_hours: float = 24.0          # next-moment horizon
    buy_days: float = 7.0             # the "within 7 days" propensity horizon
    test_fraction: float = 0.25
    val_fraction: float = 0.2
    max_iter: int = 300
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    max_depth: int = 8                # bounds the live tree walk
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0
    max_train_rows: int = 1_000_000   # training cutoffs beyond this are subsampled (not a split)
    calibration: str = "isotonic"     # or "sigmoid"
    threads: int = 1                  # OpenMP threads for fitting: more spin-wait badly on a busy machine
    seed: int = 0

    @classmethod
    def from_config(cls, config: Any | None, **overrides: Any) -> "TrainSettings":
        predict = getattr(config, "predict", None)
        kwargs = {k: getattr(predict, k) for k in cls.__dataclass_fields__ if predict is not None and hasattr(predict, k)}
        kwargs.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TargetModel:
    """One binary target: the boosted trees (or a constant prior) plus the calibrator."""

    name: str
    horizon_s: float
    prior: float                      # positive rate in training
    hgb: Any = None                   # HistGradientBoostingClassifier, None = constant
    calibrator: Any = None            # IsotonicRegression / _SigmoidCalibration, None = raw sigmoid
    n_train: int = 0
    n_val: int = 0
    n_iter: int = 0

    def raw(self, X: np.ndarray) -> np.ndarray:
        """The boosted log-odds (decision function)."""
        if self.hgb is None:
            return np.full(X.shape[0], np.log(self.prior / (1 - self.prior)) if 0 < self.prior < 1 else 0.0)
        return self.hgb.decision_function(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probability of the target for each row of X."""
        return calibrate(self.calibrator, self.raw(X), self.prior if self.hgb is None else None)


def calibrate(calibrator: Any, raw: np.ndarray, constant: float | None = None) -> np.ndarray:
    """Probability from raw log-odds through the fitted calibrator (as CalibratedClassifierCV does)."""
    if constant is not None:
        return np.full(raw.shape[0], constant)
    if calibrator is None:
        return 1.0 / (1.0 + np.exp(-raw))
    return np.clip(calibrator.predict(raw), 0.0, 1.0)


def fit_target(name: str, X: np.ndarray, y: np.ndarray, cutoffs: np.ndarray, split: TimeSplit,
               horizon_s: float, settings: TrainSettings | None = None) -> TargetModel:
    """Train, early-stop and calibrate one target on the time-based split's train/validation slices."""
    import sklearn
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier

    s = settings or TrainSettings()
    train, val, _ = split.masks(cutoffs, horizon_s)
    rng = np.random.default_rng(s.seed)
    idx = np.flatnonzero(train)
    if idx.size > s.max_train_rows:
        idx = np.sort(rng.choice(idx, s.max_train_rows, replace=False))
    y = y.astype(bool)
    prior = float(y[idx].mean()) if idx.size else float(y.mean()) if y.size else 0.0
    model = TargetModel(name, horizon_s, prior, n_train=int(idx.size), n_val=int(val.sum()))
    if idx.size < 50 or len(np.unique(y[idx])) < 2:
        return model  # too little to learn from: the constant prior
    hgb = HistGradientBoostingClassifier(
        max_iter=s.max_iter, learning_rate=s.learning_rate, max_leaf_nodes=s.max_leaf_nodes,
        max_depth=s.max_depth, min_samples_leaf=s.min_samples_leaf, l2_regularization=s.l2_regularization,
        random_state=s.seed,
    )
    Xtr, Xv, yv = X[idx], X[val], y[val]
    # A feature that is never known in training (e.g. moment recency on a clickstream without
    # intent) cannot be binned; as a constant it is simply never split on.
    never = np.isnan(Xtr).all(axis=0)
    if never.any():
        Xtr[:, never] = 0.0
        Xv[:, never] = 0.0
    has_val = Xv.shape[0] >= 50 and len(np.unique(yv)) == 2
    new_sklearn = tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 7)
    if has_val and new_sklearn:
        hgb.set_params(early_stopping=True, n_iter_no_change=20)
        hgb.fit(Xtr, y[idx], X_val=Xv, y_val=yv)
    else:
        hgb.set_params(early_stopping=False)
        hgb.fit(Xtr, y[idx])
    model.hgb, model.n_iter = hgb, int(hgb.n_iter_)
    if has_val:
        method = s.calibration if int(yv.sum()) >= 30 else "sigmoid"  # isotonic overfits a handful of positives
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                from sklearn.frozen import FrozenEstimator  # scikit-learn >= 1.6

                cal = CalibratedClassifierCV(FrozenEstimator(hgb), method=method).fit(Xv, yv)
            except ImportError:
                cal = CalibratedClassifierCV(hgb, method=method, cv="prefit").fit(Xv, yv)
        model.calibrator = cal.calibrated_classifiers_[0].calibrators[0]
    return model


@dataclass
class Predictor:
    """All targets of one trained model, with the feature spec and split it was trained with."""

    spec: FeatureSpec
    targets: dict[str, TargetModel]
    split: TimeSplit
    settings: TrainSettings
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def moment_targets(self) -> list[str]:
        return [f"next_{m}" for m in self.spec.moments if f"next_{m}" in self.targets]

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Target -> calibrated probabilities for each row of X."""
        return {name: t.predict(X) for name, t in self.targets.items()}


def limited_threads(threads: int | None) -> Any:
    """A context that caps scikit-learn's OpenMP threads (None: leave them be).

    On a machine shared with other jobs, OpenMP threads that spin-wait for a busy core made
    fitting 3-6x slower than one thread; the cap must be set after sklearn's OpenMP is loaded.
    """
    import contextlib

    if not threads:
        return contextlib.nullcontext()
    import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime threadpoolctl has to see)
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads, user_api="openmp")


def target_names(spec: FeatureSpec) -> list[str]:
    return [f"next_{m}" for m in spec.moments] + ["buy_session", "buy_7d"]


def train_predictor(spec: FeatureSpec, X: np.ndarray, labels: Any, cutoffs: np.ndarray,
                    settings: TrainSettings | None = None, *, t_range: tuple[float, float] | None = None,
                    on_target: Any = None) -> Predictor:
    """Fit every target on a time-based split of the cutoffs (`labels` from `labels.make_labels`)."""
    s = settings or TrainSettings()
    t0, t_end = t_range or (float(cutoffs.min()), float(cutoffs.max()))
    split = TimeSplit.from_range(t0, t_end, test_fraction=s.test_fraction, val_fraction=s.val_fraction)
    targets = {}
    with limited_threads(s.threads):
        for name in target_names(spec):
            if on_target is not None:
                on_target(name)
            targets[name] = fit_target(name, X, labels.y[name], cutoffs, split, labels.horizon_s[name], s)
    return Predictor(spec, targets, split, s)
