"""`PersonaModel`: k-means personas on mixed numeric and categorical behavioural features.

Encoding (`FeatureEncoder`):

* share features (moment mix, channels, devices, dayparts, weekdays, query themes...) are
  **shrunk toward the population mean** by the evidence behind them (a person with one
  session has a 0/1 channel mix; two pseudo-sessions at the average pull it in), then
  square-rooted (a variance-stabilising transform for proportions) and standardised;
* money and distance are log-transformed, then standardised;
* categorical columns are one-hot encoded, each column scaled by 1/√2 so that changing
  category moves a person by one standard deviation.

Fitting uses the people with enough evidence (`min_sessions`), then everyone is assigned to
the nearest centroid. `n_clusters="auto"` picks k in `k_range` by the silhouette on a sample
times the stability of the clustering across subsamples (mean adjusted Rand index between
k-means fitted on two random halves), so a k must be both well separated and reproducible.

>>> # model = PersonaModel(n_clusters="auto").fit(features); labels = model.predict(features)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from threadpoolctl import threadpool_limits

from micromoments.errors import InputError

# Share columns (by prefix or name) and the count column holding the evidence behind them.
SHARE_EVIDENCE: dict[str, str] = {
    "moment_": "episodes", "channel_": "sessions", "device_": "events", "hour_": "sessions",
    "day_": "sessions", "query_": "searches", "collect_share": "orders", "directions_share": "events",
    "video_share": "events", "converting_sessions": "sessions",
}
LOG_COLUMNS = ("aov", "store_km")
PLAIN_COLUMNS = ("known",)
DEFAULT_CATEGORICAL: tuple[str, ...] = ()
NOT_SHARES = ("query_words",)


def default_numeric(columns: list[str]) -> list[str]:
    """The behavioural columns `PersonaModel` clusters on, among `columns`.

    >>> default_numeric(["person_id", "moment_buy", "channel_app", "aov", "revenue", "query_words"])
    ['moment_buy', 'channel_app', 'aov']
    """
    keep = []
    for c in columns:
        if c in NOT_SHARES:
            continue
        if any(c.startswith(p) if p.endswith("_") else c == p for p in SHARE_EVIDENCE) or c in LOG_COLUMNS + PLAIN_COLUMNS:
            keep.append(c)
    return keep


def _evidence_column(col: str) -> str | None:
    for p, n in SHARE_EVIDENCE.items():
        if (p.endswith("_") and col.startswith(p)) or col == p:
            return n
    return None


@dataclass
class FeatureEncoder:
    """Shrink, transform, scale and one-hot encode features; learns its statistics in `fit`."""

    numeric: list[str]
    categorical: list[str] = field(default_factory=list)
    prior: float = 2.0
    means_: dict[str, float] = field(default_factory=dict)
    centre_: np.ndarray | None = None
    scale_: np.ndarray | None = None
    categories_: dict[str, list[str]] = field(default_factory=dict)

    def _transform_numeric(self, frame: pd.DataFrame) -> np.ndarray:
        cols = []
        for c in self.numeric:
            x = pd.to_numeric(frame[c], errors="coerce").astype("float64")
            n_col = _evidence_column(c)
            if n_col is not None:
                n = pd.to_numeric(frame[n_col], errors="coerce").fillna(0).astype("float64") if n_col in frame else 0.0
                mu = self.means_[c]
                x = ((x.fillna(mu) * n + self.prior * mu) / (n + self.prior)).clip(0, 1)
                x = np.sqrt(x)
            elif c in LOG_COLUMNS:
                x = np.log1p(x.clip(lower=0).fillna(self.means_[c]))
            else:
                x = x.fillna(self.means_[c])
            cols.append(np.asarray(x, dtype="float64"))
        return np.column_stack(cols) if cols else np.zeros((len(frame), 0))

    def fit(self, frame: pd.DataFrame) -> "FeatureEncoder":
        missing = [c for c in self.numeric + self.categorical if c not in frame.columns]
        if missing:
            raise InputError(f"feature column(s) missing: {missing}", where="personas",
                             hint="build features with `micromoments personas build`")
        self.means_ = {c: float(pd.to_numeric(frame[c], errors="coerce").mean()) for c in self.numeric}
        self.means_ = {c: (0.0 if np.isnan(v) else v) for c, v in self.means_.items()}
        x = self._transform_numeric(frame)
        self.centre_ = x.mean(axis=0)
        sd = x.std(axis=0)
        self.scale_ = np.where(sd > 1e-12, sd, 1.0)
        self.categories_ = {c: sorted(frame[c].astype("string").fillna("unknown").unique().tolist())
                            for c in self.categorical}
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        assert self.centre_ is not None and self.scale_ is not None, "fit first"
        x = (self._transform_numeric(frame) - self.centre_) / self.scale_
        parts = [x]
        for c, cats in self.categories_.items():
            v = frame[c].astype("string").fillna("unknown").to_numpy()
            parts.append(np.column_stack([(v == k).astype("float64") / np.sqrt(2) for k in cats]))
        return np.hstack(parts)

    @property
    def output_names(self) -> list[str]:
        return list(self.numeric) + [f"{c}={k}" for c, cats in self.categories_.items() for k in cats]


def _kmeans(k: int, n: int, seed: int, n_init: int = 4) -> KMeans | MiniBatchKMeans:
    if n > 100_000:
        return MiniBatchKMeans(k, random_state=seed, n_init=n_init, batch_size=8192, max_no_improvement=20)
    return KMeans(k, random_state=seed, n_init=n_init)


def choose_k(x: np.ndarray, k_range: tuple[int, int] = (2, 8), *, sample: int = 5000, repeats: int = 4,
             seed: int = 0) -> tuple[int, pd.DataFrame]:
    """Pick k by silhouette (on a sample) × stability (mean ARI between fits on random halves).

    >>> rng = np.random.default_rng(0)
    >>> x = np.vstack([rng.normal(c, 0.3, (100, 2)) for c in ((0, 0), (3, 0), (0, 3))])
    >>> choose_k(x, (2, 5))[0]
    3
    """
    rng = np.random.default_rng(seed)
    if len(x) > sample:
        x = x[rng.choice(len(x), sample, replace=False)]
    rows = []
    for k in range(k_range[0], min(k_range[1], len(x) - 1) + 1):
        labels = KMeans(k, random_state=seed, n_init=4).fit_predict(x)
        sil = float(silhouette_score(x, labels, sample_size=min(len(x), 3000), random_state=seed))
        aris = []
        for r in range(repeats):
            a = rng.choice(len(x), len(x) // 2, replace=False)
            b = rng.choice(len(x), len(x) // 2, replace=False)
            la = KMeans(k, random_state=seed + r, n_init=2).fit(x[a]).predict(x)
            lb = KMeans(k, random_state=seed + 100 + r, n_init=2).fit(x[b]).predict(x)
            aris.append(adjusted_rand_score(la, lb))
        stab = float(np.mean(aris))
        rows.append({"k": k, "silhouette": sil, "stability": stab, "score": sil * stab})
    table = pd.DataFrame(rows)
    if table.empty:
        raise InputError(f"too few people to cluster ({len(x)})", where="personas", hint="collect more data")
    return int(table.loc[table.score.idxmax(), "k"]), table


class PersonaModel:
    """Cluster people into personas; scikit-learn style `fit` / `predict`.

    >>> import pandas as pd, numpy as np
    >>> rng = np.random.default_rng(1)
    >>> f = pd.DataFrame({"moment_buy": np.r_[rng.uniform(.7, .9, 50), rng.uniform(0, .2, 50)],
    ...                   "episodes": 10, "sessions": 5})
    >>> m = PersonaModel(n_clusters=2, numeric=["moment_buy"]).fit(f)
    >>> len(set(m.predict(f)))
    2
    """

    def __init__(self, n_clusters: int | str = "auto", *, numeric: list[str] | None = None,
                 categorical: list[str] | None = None, k_range: tuple[int, int] = (2, 8), min_sessions: int = 3,
                 prior: float = 2.0, random_state: int = 0, sample: int = 5000, fit_sample: int = 100_000):
        if not (n_clusters == "auto" or (isinstance(n_clusters, int) and n_clusters >= 1)):
            raise InputError(f"n_clusters must be 'auto' or a positive integer, got {n_clusters!r}",
                             where="personas.n_clusters")
        self.n_clusters = n_clusters
        self.numeric = numeric
        self.categorical = categorical
        self.k_range = k_range
        self.min_sessions = min_sessions
        self.prior = prior
        self.random_state = random_state
        self.sample = sample
        self.fit_sample = fit_sample  # centroids (and the encoding) are fitted on at most this many people
        self.encoder_: FeatureEncoder | None = None
        self.kmeans_: Any = None
        self.k_table_: pd.DataFrame | None = None
        self.fitted_on_: int = 0

    def _fit_rows(self, features: pd.DataFrame) -> pd.DataFrame:
        if "sessions" in features.columns and self.min_sessions > 1:
            well = features[pd.to_numeric(features.sessions, errors="coerce").fillna(0) >= self.min_sessions]
            if len(well) >= max(50, len(features) // 5):
                return well
        return features

    def fit(self, features: pd.DataFrame) -> "PersonaModel":
        """Learn the encoding and the centroids (k chosen automatically unless given)."""
        if len(features) < 2:
            raise InputError(f"need at least 2 people to find personas, got {len(features)}", where="personas")
        numeric = self.numeric if self.numeric is not None else default_numeric(list(features.columns))
        categorical = self.categorical if self.categorical is not None else [
            c for c in DEFAULT_CATEGORICAL if c in features.columns]
        rows = self._fit_rows(features)
        if len(rows) > self.fit_sample:
            # Centroids of a large random sample are as good as of everyone; all are assigned by `predict`.
            rows = rows.sample(self.fit_sample, random_state=self.random_state)
        self.fitted_on_ = len(rows)
        self.encoder_ = FeatureEncoder(numeric, categorical, prior=self.prior).fit(rows)
        x = self.encoder_.transform(rows)
        # One thread: the many small k-means fits would spend their time waking OpenMP threads.
        with threadpool_limits(limits=1):
            if self.n_clusters == "auto":
                k, self.k_table_ = choose_k(x, self.k_range, sample=self.sample, seed=self.random_state)
            else:
                k = min(int(self.n_clusters), len(x))
            self.kmeans_ = _kmeans(k, len(x), self.random_state, n_init=4).fit(x)
        return self

    @property
    def k_(self) -> int:
        return int(self.kmeans_.n_clusters)

    def transform(self, features: pd.DataFrame) -> np.ndarray:
        """The encoded features (the space the centroids live in)."""
        if self.encoder_ is None:
            raise InputError("the persona model is not fitted", where="personas", hint="run `micromoments personas build`")
        return self.encoder_.transform(features)

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """The nearest centroid for each person (also how new people are assigned incrementally)."""
        return self.kmeans_.predict(self.transform(features)).astype("int64")

    def distances(self, features: pd.DataFrame) -> np.ndarray:
        """Distance from each person to each centroid (smaller is closer)."""
        return self.kmeans_.transform(self.transform(features))

    def fit_predict(self, features: pd.DataFrame) -> np.ndarray:
        return self.fit(features).predict(features)

    def save(self, path: str | Path) -> Path:
        import joblib

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, path)
        return path

    @staticmethod
    def load(path: str | Path) -> "PersonaModel":
        import joblib

        path = Path(path)
        if not path.exists():
            raise InputError("no persona model here", where=str(path), hint="run `micromoments personas build` first")
        model = joblib.load(path)
        if not isinstance(model, PersonaModel):
            raise InputError("not a persona model file", where=str(path))
        return model
