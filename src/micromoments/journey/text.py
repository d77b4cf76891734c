"""Query text helpers: question / long-tail / voice-style flags and TF-IDF topic clustering.

>>> is_question("how do I clean suede shoes"), is_long_tail("running shoes"), is_voice_style("ok google where can i buy running shoes near me")
(True, False, True)
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

QUESTION_WORDS = frozenset(
    "what whats what's how hows how's why where wheres where's when who whos who's which "
    "can could should would will does do did is are am was were may".split()
)
VOICE_MARKERS = ("near me", "ok google", "hey google", "hey siri", "alexa", "siri ", "open now",
                 "close to me", "nearby")
VOICE_OPENERS = ("i want", "i need", "show me", "find me", "tell me", "help me", "can you", "where can i",
                 "what is the best", "how do i", "how can i")
_WORD = re.compile(r"[\w']+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def is_question(text: str) -> bool:
    """Starts with a question word or ends with a question mark."""
    w = words(text)
    return bool(w) and (w[0] in QUESTION_WORDS or text.strip().endswith("?"))


def is_long_tail(text: str, min_words: int = 4) -> bool:
    """Specific, low-volume searches: at least `min_words` words."""
    return len(words(text)) >= min_words


def is_voice_style(text: str) -> bool:
    """Conversational phrasing typical of voice search: long questions, 'near me', assistant names."""
    low = " ".join(words(text))
    return (
        any(m.strip() in low for m in VOICE_MARKERS)
        or any(low.startswith(o) for o in VOICE_OPENERS)
        or (is_question(text) and len(words(text)) >= 6)
    )


def cluster_texts(
    texts: Sequence[str],
    weights: Sequence[float] | None = None,
    *,
    max_clusters: int = 20,
    distance_threshold: float = 0.9,
    random_state: int = 0,
) -> tuple[np.ndarray, list[str]]:
    """Group texts into topics with TF-IDF (words and word pairs).

    Up to 4,000 texts: average-linkage clustering on cosine distance, cut at
    `distance_threshold` (at most `max_clusters` topics). Beyond that: k-means with the number of
    topics picked by the silhouette score. Returns a label per text and a name per label (its three top terms).
    `weights` (e.g. search volume) make frequent texts pull the centroids harder.
    """
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import silhouette_score

    texts = [t if isinstance(t, str) else "" for t in texts]
    n = len(texts)
    if n == 0:
        return np.array([], dtype=int), []
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words="english", min_df=1)
    try:
        x = vec.fit_transform(texts)
    except ValueError:  # nothing but stop words
        return np.zeros(n, dtype=int), ["(misc)"]
    terms = np.array(vec.get_feature_names_out())
    distinct = x.shape[0] if x.shape[0] < 3 else len({tuple(r.indices) for r in x})
    if n < 3 or distinct < 3:
        centroid = np.asarray(x.mean(axis=0)).ravel()
        return np.zeros(n, dtype=int), [" / ".join(terms[np.argsort(-centroid)[:3]])]
    if n <= 4000:
        # Average-linkage on cosine distance: texts sharing distinctive words group together,
        # one-off questions stay their own theme. Fall back to a fixed count if there are too many.
        from sklearn.cluster import AgglomerativeClustering

        dense = x.toarray()
        model = AgglomerativeClustering(n_clusters=None, distance_threshold=distance_threshold,
                                        metric="cosine", linkage="average").fit(dense)
        if model.n_clusters_ > max_clusters:
            model = AgglomerativeClustering(n_clusters=max_clusters, metric="cosine", linkage="average").fit(dense)
        labels = _by_size(model.labels_, weights)
        centers = np.vstack([dense[labels == k].mean(axis=0) for k in range(labels.max() + 1)])
        return labels, [" / ".join(terms[np.argsort(-c)[:3]]) for c in centers]
    sw = None if weights is None else np.sqrt(np.asarray(weights, dtype=float) + 1.0)
    top = min(max_clusters, distinct - 1, n - 1)
    candidates = sorted({k for k in np.unique(np.linspace(2, top, num=min(8, top - 1)).astype(int)) if k >= 2})
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for k in candidates:
        km = KMeans(n_clusters=int(k), n_init=3, random_state=random_state).fit(x, sample_weight=sw)
        if len(set(km.labels_)) < 2:
            continue
        score = silhouette_score(x, km.labels_, metric="cosine", sample_size=min(n, 2000), random_state=random_state)
        if best is None or score > best[0]:
            best = (score, km.labels_, km.cluster_centers_)
    if best is None:
        return np.zeros(n, dtype=int), ["(misc)"]
    _, labels, centers = best
    names = [" / ".join(terms[np.argsort(-c)[:3]]) for c in centers]
    return np.asarray(labels), names


def _by_size(labels: np.ndarray, weights: Sequence[float] | None) -> np.ndarray:
    """Renumber clusters so 0 is the biggest (by weight, else by count): stable across runs."""
    w = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=float)
    totals = {k: w[labels == k].sum() for k in np.unique(labels)}
    order = sorted(totals, key=lambda k: (-totals[k], int(np.flatnonzero(labels == k)[0])))
    remap = {old: new for new, old in enumerate(order)}
    return np.array([remap[k] for k in labels])
