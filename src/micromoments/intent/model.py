"""The learned head: a calibrated multinomial logistic regression on
[sentence embedding, lexical-cue flags, hashed word and character n-grams].

The embedding carries meaning (it knows 'tamarind' is a fruit); the hashed n-grams carry
surface forms and misspellings ('gmial', 'recipie'); the cue flags carry the strong patterns
('near me', 'how to'). Hashing needs no vocabulary file, so the head is one array file.

`IntentHead.fit(texts, labels)` trains it; `save`/`load` keep it in one `.npz` inside the
package (`data/head.npz`). Inference is two matrix products in numpy.

>>> head = IntentHead.load()
>>> p = head.predict_proba(["gmail login", "how to tile a floor"])
>>> [head.classes[i] for i in p.argmax(1)]
['go_site', 'do']
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from micromoments.errors import ConfigError
from micromoments.intent.cues import cue_features
from micromoments.intent.embed import Embedder, get_embedder
from micromoments.intent.ngrams import hashed_ngrams

HEAD_PATH = Path(__file__).parent / "data" / "head.npz"
CUE_WEIGHT = 3.0  # scale of the binary cue features next to the unit-norm embedding
BANK_PER_CLASS = 300  # training examples kept per class for nearest-neighbour checks


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def features(embedder: Embedder, texts: list[str]) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """(embeddings, dense features [embedding, cues], sparse hashed n-grams) for normalised texts."""
    emb = embedder.embed(texts)
    hashed = hashed_ngrams(texts)
    return emb, np.hstack([emb, CUE_WEIGHT * cue_features(texts)]), hashed


@dataclass
class IntentHead:
    classes: tuple[str, ...]
    coef: np.ndarray                 # (n_classes, n_dense_features): embedding + cue weights
    intercept: np.ndarray            # (n_classes,)
    hashed_coef: sp.csr_matrix       # (N_HASHED, n_classes), sparse: only n-grams seen in training
    temperature: float
    center: np.ndarray               # mean training embedding, removed before similarity checks
    bank: np.ndarray                 # (n, dim) centred, normalised training examples
    bank_labels: np.ndarray          # class index per bank row
    embedder_name: str = "minilm-static"
    version: str = ""
    meta: dict[str, str] = field(default_factory=dict)

    # -- training -----------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        texts: list[str],
        labels: list[str],
        *,
        embedder_name: str = "minilm-static",
        C: float = 4.0,
        seed: int = 13,
        class_share: dict[str, float] | None = None,
        power: float = 1.0,
    ) -> "IntentHead":
        """Fit the head, then its temperature on a seeded 15% calibration split.

        Classes are weighted by (target share / training share) ** `power`: the target is
        `class_share` (e.g. the class balance of real traffic) or, if None, uniform
        (power 1 = scikit-learn's 'balanced').

        >>> head = IntentHead.fit(["gmail login"] * 3 + ["how to fix a tap"] * 3, ["go_site"] * 3 + ["do"] * 3)
        >>> head.classes
        ('do', 'go_site')
        """
        from scipy.optimize import minimize_scalar
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split

        embedder = get_embedder(embedder_name)
        classes = tuple(sorted(set(labels)))
        y = np.array([classes.index(lab) for lab in labels])
        emb, D, H = features(embedder, texts)
        X = sp.hstack([sp.csr_matrix(D), H], format="csr")
        n_dense = D.shape[1]

        counts = np.bincount(y, minlength=len(classes)) / len(y)
        target = np.array([(class_share or {}).get(c, 1.0 / len(classes)) for c in classes])
        target = target / target.sum()
        weights = {k: float((target[k] / counts[k]) ** power) for k in range(len(classes))}

        def make() -> LogisticRegression:
            return LogisticRegression(C=C, max_iter=3000, class_weight=weights, random_state=seed)

        temperature = 1.0
        if min(np.bincount(y)) >= 10:
            Xa, Xb, ya, yb = train_test_split(X, y, test_size=0.15, random_state=seed, stratify=y)
            lr = make().fit(Xa, ya)
            logits = np.asarray(Xb @ lr.coef_.T) + lr.intercept_

            def nll(t: float) -> float:
                p = softmax(logits / t)
                return float(-np.log(np.maximum(p[np.arange(len(yb)), yb], 1e-12)).mean())

            temperature = float(minimize_scalar(nll, bounds=(0.05, 10.0), method="bounded").x)
        lr = make().fit(X, y)

        center = emb.mean(axis=0)
        rng = np.random.default_rng(seed)
        keep = np.concatenate([
            rng.permutation(np.flatnonzero(y == k))[:BANK_PER_CLASS] for k in range(len(classes))
        ])
        bank = center_norm(emb[keep], center)
        version_src = hashlib.sha256(lr.coef_.tobytes() + np.float64(temperature).tobytes()).hexdigest()
        hashed = lr.coef_[:, n_dense:].T.astype(np.float32)
        hashed[np.abs(hashed) < 1e-4] = 0.0  # n-grams never seen in training have (near) zero weight
        return cls(
            classes=classes, coef=lr.coef_[:, :n_dense].astype(np.float32),
            intercept=lr.intercept_.astype(np.float32), hashed_coef=sp.csr_matrix(hashed),
            temperature=temperature, center=center.astype(np.float32), bank=bank.astype(np.float16),
            bank_labels=y[keep].astype(np.int16), embedder_name=embedder_name,
            version=f"{embedder_name}-{version_src[:10]}",
        )

    def with_decision(self, offsets: dict[str, float], temperature: float) -> "IntentHead":
        """The same head with per-class logit offsets and a new temperature (both chosen on real dev data).

        The head is trained towards the class balance of real traffic; the offsets move the decision
        towards the minority moments (go, do) where that raises macro-F1, and the temperature is then
        refitted so that `confidence` stays a calibrated probability.
        """
        intercept = self.intercept.copy()
        for c, off in offsets.items():
            intercept[self.classes.index(c)] += off
        src = hashlib.sha256(self.coef.tobytes() + intercept.tobytes() + np.float64(temperature).tobytes())
        meta = {**self.meta, "offsets": str(offsets)}
        return IntentHead(
            classes=self.classes, coef=self.coef, intercept=intercept.astype(np.float32), hashed_coef=self.hashed_coef,
            temperature=float(temperature), center=self.center, bank=self.bank, bank_labels=self.bank_labels,
            embedder_name=self.embedder_name, version=f"{self.embedder_name}-{src.hexdigest()[:10]}", meta=meta,
        )

    # -- inference ----------------------------------------------------------------------------
    def raw_logits(self, dense: np.ndarray, hashed: sp.csr_matrix) -> np.ndarray:
        """Logits before the temperature."""
        return dense @ self.coef.T + (hashed @ self.hashed_coef).toarray() + self.intercept

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        _, D, H = features(self.embedder, texts)
        return softmax(self.raw_logits(D, H) / self.temperature)

    @property
    def embedder(self) -> Embedder:
        return get_embedder(self.embedder_name)

    def nearest(self, emb: np.ndarray, k: int = 3) -> np.ndarray:
        """Mean cosine similarity of each row to its `k` nearest bank examples (how familiar it is)."""
        sims = center_norm(emb, self.center) @ self.bank.astype(np.float32).T
        k = min(k, sims.shape[1])
        top = np.partition(sims, -k, axis=1)[:, -k:]
        return top.mean(axis=1)

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: Path = HEAD_PATH) -> None:
        h = self.hashed_coef.tocsr()
        np.savez_compressed(
            path, classes=np.array(self.classes), coef=self.coef, intercept=self.intercept,
            h_data=h.data.astype(np.float16), h_indices=h.indices, h_indptr=h.indptr, h_shape=np.array(h.shape),
            temperature=np.array(self.temperature), center=self.center, bank=self.bank,
            bank_labels=self.bank_labels, embedder_name=np.array(self.embedder_name),
            version=np.array(self.version),
            meta_keys=np.array(list(self.meta), dtype=str), meta_values=np.array(list(self.meta.values()), dtype=str),
        )

    @classmethod
    def load(cls, path: Path = HEAD_PATH) -> "IntentHead":
        if not Path(path).exists():
            raise ConfigError("the intent head is missing", where=str(path),
                              hint="run `python scripts/train_intent.py` to rebuild it")
        with np.load(path, allow_pickle=False) as d:
            return cls(
                classes=tuple(str(c) for c in d["classes"]), coef=d["coef"], intercept=d["intercept"],
                hashed_coef=sp.csr_matrix((d["h_data"].astype(np.float32), d["h_indices"], d["h_indptr"]),
                                          shape=tuple(d["h_shape"])),
                temperature=float(d["temperature"]), center=d["center"], bank=d["bank"],
                bank_labels=d["bank_labels"], embedder_name=str(d["embedder_name"]),
                version=str(d["version"]),
                meta=dict(zip((str(k) for k in d["meta_keys"]), (str(v) for v in d["meta_values"]))),
            )


def center_norm(emb: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Rows minus the training mean, re-normalised: cosine similarities then spread over [-1, 1].

    >>> center_norm(np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([0.5, 0.0])).tolist()
    [[1.0, 0.0], [0.0, 0.0]]
    """
    x = emb - center
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out = x / np.maximum(norms, 1e-9)
    out[np.linalg.norm(emb, axis=1) == 0] = 0.0  # empty texts stay at zero similarity
    return out.astype(np.float32)
