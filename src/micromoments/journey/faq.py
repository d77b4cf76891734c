"""Frequently asked questions: question-like and long-tail queries grouped into themes, with an
example query and volume each, and the *content gaps*: themes people ask a lot about whose
sessions rarely convert.

`query_stats` is the Ibis part (per distinct query: searches, people, sessions, converted
sessions); `faq_themes` clusters the small result in scikit-learn (TF-IDF + average-linkage
clustering of the most searched queries; the rest join the nearest theme or "other questions").
`faq_for` runs both: the report, the app and the `faq` command all call it.
"""

from __future__ import annotations

from typing import Any

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from micromoments.journey.text import is_long_tail, is_question
from micromoments.journey.vocab import EventVocabulary


def query_stats(sessionized: ir.Table, vocab: EventVocabulary | None = None) -> ir.Table:
    """Per normalised query (lower-case, trimmed): searches, people, sessions, converted sessions."""
    vocab = vocab or EventVocabulary()
    s = sessionized.mutate(_conv=vocab.is_conversion(sessionized).cast("int64"))
    conv = s.group_by("session_id").aggregate(_s_conv=s._conv.max()).rename(_c_session="session_id")
    q = s.filter(s.query.notnull()).mutate(q=s.query.lower().strip())
    q = q.filter(q.q.length() > 0)
    per_session = q.group_by(["q", "session_id", "person_id"]).aggregate(_n=q.count())
    per_session = per_session.join(conv, per_session.session_id == conv._c_session)
    return per_session.group_by("q").aggregate(
        searches=per_session._n.sum(), people=per_session.person_id.nunique(),
        sessions=per_session.count(), converted_sessions=per_session._s_conv.sum(),
    ).rename(query="q")


OTHER_LABEL = "other questions"  # where queries that join no theme go; always listed last
FAQ_COLUMNS = ["theme", "label", "example", "queries", "searches", "people", "sessions", "conversion_rate",
               "share", "content_gap", "gap_reason", "is_other"]
MAX_CLUSTERED = 2000  # the most searched queries are clustered; the rest join the nearest theme or "other"
_ASSISTANT_WORDS = ("hey google", "ok google", "alexa", "hey siri", "siri")


def faq_rows(faq: pd.DataFrame, top: int = 15) -> pd.DataFrame:
    """The themes a table shows: the biggest `top`, then "other questions" (always last).

    >>> faq_rows(pd.DataFrame({"label": ["a", OTHER_LABEL, "b"], "is_other": [False, True, False]}), 1).label.tolist()
    ['a', 'other questions']
    """
    if "is_other" not in faq:
        return faq.head(top)
    return pd.concat([faq[~faq.is_other].head(top), faq[faq.is_other]])


def faq_for(sessionized: ir.Table, con: Any, vocab: EventVocabulary | None = None, **options: Any) -> pd.DataFrame:
    """The FAQ themes of a journey's events: the one computation the report, the app and the
    `faq` command share (`query_stats` on `con`, then `faq_themes`).

    >>> # faq_for(journey.sessionized, store.ibis, vocabulary_from_config(config))
    """
    return faq_themes(con.execute(query_stats(sessionized, vocab)), **options)


def faq_themes(stats: pd.DataFrame, *, min_words: int = 4, max_themes: int = 40,
               gap_ratio: float = 0.5, min_searches: int = 10, alpha: float = 0.05,
               min_similarity: float = 0.25) -> pd.DataFrame:
    """Themes of question-like or long-tail queries, biggest first, "other questions" last.

    Columns: theme, label (a representative query: the member closest to the theme's centre among
    its busier queries), example (the most searched query), queries, searches, people, sessions,
    conversion_rate (share of the searching visits that bought), share (of all searches),
    content_gap, gap_reason (the numbers that triggered it), is_other.
    Queries that share no distinctive words with a theme (cosine similarity to its centre below
    `min_similarity`), and themes of a single query searched fewer than `min_searches` times, go to
    "other questions".
    A theme is a **content gap** when it is searched a lot (at least `min_searches` and half the
    median theme's volume) and its visits buy at less than `gap_ratio` x the rate of all
    search visits, significantly so (one-sided binomial test at `alpha`).
    """
    if stats.empty:
        return pd.DataFrame(columns=FAQ_COLUMNS)
    # The same input order every time: clustering must not depend on how SQL returned the rows.
    stats = stats.sort_values(["searches", "query"], ascending=[False, True]).reset_index(drop=True)
    total_searches = float(stats.searches.sum())
    overall_rate = float(stats.converted_sessions.sum()) / max(float(stats.sessions.sum()), 1.0)
    mask = stats["query"].map(lambda q: isinstance(q, str) and (is_question(q) or is_long_tail(q, min_words)))
    picked = stats[mask].reset_index(drop=True)
    if picked.empty:
        return pd.DataFrame(columns=FAQ_COLUMNS)
    picked["theme"], sims = _themes(picked["query"].tolist(), picked.searches.to_numpy(), max_themes,
                                    min_similarity, min_searches)
    picked["_sim"] = sims
    rows = [_theme_row(int(t), grp) for t, grp in picked.groupby("theme")]
    out = pd.DataFrame(rows)
    out["share"] = out.searches / total_searches
    out["content_gap"], out["gap_reason"] = _gaps(out, overall_rate, gap_ratio, min_searches, alpha)
    out = out.sort_values(["is_other", "searches", "label"], ascending=[True, False, True]).reset_index(drop=True)
    named = ~out.is_other
    out.loc[named, "theme"] = range(int(named.sum()))
    out.loc[~named, "theme"] = -1
    return out[FAQ_COLUMNS]


def _themes(queries: list[str], searches: np.ndarray, max_themes: int, min_similarity: float,
            min_searches: int) -> tuple[np.ndarray, np.ndarray]:
    """(theme per query, -1 for "other"; cosine similarity to its theme's centre). A theme needs two
    queries, or one searched at least `min_searches` times (a question asked often is a theme)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    n = len(queries)
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words="english", min_df=1)
    try:
        x = vec.fit_transform(queries)
    except ValueError:  # nothing but stop words
        return np.full(n, -1), np.zeros(n)
    head = min(n, MAX_CLUSTERED)
    if head < 2:
        return np.full(n, -1), np.zeros(n)
    labels = np.full(n, -1)
    labels[:head] = _cluster(x[:head])
    # Centres of the themes with at least two queries; every query then joins its nearest centre
    # (the tail too), or "other" when it shares too little with any of them.
    def big(members: np.ndarray) -> bool:
        return members.sum() >= 2 or searches[:head][members].sum() >= min_searches

    keep = [k for k in np.unique(labels[:head]) if big(labels[:head] == k)]
    # The `max_themes` most searched clusters become themes; the others' queries may join one of them.
    keep = sorted(keep, key=lambda k: (-searches[:head][labels[:head] == k].sum(), k))[:max_themes]
    if not keep:
        return np.full(n, -1), np.zeros(n)
    centres = np.vstack([np.asarray(x[:head][labels[:head] == k].mean(axis=0)).ravel() for k in keep])
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    sim = np.asarray(x @ centres.T)
    best = sim.argmax(axis=1)
    best_sim = sim[np.arange(n), best]
    themes = np.where(best_sim >= min_similarity, np.asarray(keep)[best], -1)
    # A theme left with one rarely searched query is no theme.
    alone = [k for k in np.unique(themes) if k >= 0 and not big(themes[:head] == k) and (themes == k).sum() < 2]
    themes = np.where(np.isin(themes, alone), -1, themes)
    return themes, np.where(themes >= 0, best_sim, 0.0)


def _cluster(x: Any) -> np.ndarray:
    """Average-linkage clusters on cosine distance, cut at distance 0.9: queries join only when they
    share distinctive words (forcing a fixed number of clusters merged unrelated ones)."""
    from sklearn.cluster import AgglomerativeClustering

    if x.shape[0] < 2:
        return np.zeros(x.shape[0], dtype=int)
    dist = np.clip(1.0 - (x @ x.T).toarray(), 0.0, 2.0)
    model = AgglomerativeClustering(n_clusters=None, distance_threshold=0.9, metric="precomputed",
                                    linkage="average").fit(dist)
    return model.labels_


def _theme_row(theme: int, grp: pd.DataFrame) -> dict[str, Any]:
    grp = grp.sort_values(["searches", "query"], ascending=[False, True])
    sessions = int(grp.sessions.sum())
    converted = int(grp.converted_sessions.sum())
    other = theme < 0
    return dict(
        theme=theme, label=OTHER_LABEL if other else representative(grp), example=grp["query"].iloc[0],
        queries=len(grp), searches=int(grp.searches.sum()), people=int(grp.people.sum()), sessions=sessions,
        conversion_rate=converted / max(sessions, 1), converted_sessions=converted, is_other=other,
    )


def representative(grp: pd.DataFrame) -> str:
    """The query that names a theme: the most central (`_sim`, similarity to the theme's centre,
    weighted by log volume) of its queries searched at least as often as the theme's median query,
    preferring ones a person would type (no assistant wake words).

    >>> representative(pd.DataFrame({"query": ["hey google fix door", "fix loose door handle", "door"],
    ...                              "searches": [9, 9, 1], "_sim": [0.9, 0.8, 0.95]}))
    'fix loose door handle'
    """
    busy = grp[grp.searches >= grp.searches.median()]
    typed = busy[~busy["query"].str.contains("|".join(_ASSISTANT_WORDS), regex=True)]
    pool = typed if not typed.empty else busy
    # Central and often searched: similarity to the centre weighted by log volume.
    pool = pool.assign(_score=pool._sim * np.log1p(pool.searches.astype(float)))
    pool = pool.sort_values(["_score", "searches", "query"], ascending=[False, False, True])
    return str(pool["query"].iloc[0])


def _gaps(out: pd.DataFrame, overall_rate: float, gap_ratio: float, min_searches: int,
          alpha: float) -> tuple[pd.Series, pd.Series]:
    """The one content-gap rule, and the numbers that triggered it."""
    from scipy.stats import binomtest

    named = out[~out.is_other]
    bar = max(min_searches, float(named.searches.median()) / 2 if not named.empty else min_searches)
    flags, reasons = [], []
    for r in out.itertuples():
        p = (binomtest(int(r.converted_sessions), int(r.sessions), overall_rate, alternative="less").pvalue
             if r.sessions > 0 and 0 < overall_rate < 1 else 1.0)
        gap = bool(not r.is_other and r.searches >= bar and r.conversion_rate < gap_ratio * overall_rate and p < alpha)
        flags.append(gap)
        reasons.append(
            f"{r.searches:,} searches (needs {bar:,.0f}); {fmt_rate(r.conversion_rate)} of these visits bought, "
            f"under half the {fmt_rate(overall_rate)} of all search visits (p = {p:.2g})" if gap else "")
    return pd.Series(flags, index=out.index), pd.Series(reasons, index=out.index)


def fmt_rate(x: float) -> str:
    """A share as the pages write it: `12%`, `0.4%`.

    >>> fmt_rate(0.123), fmt_rate(0.004)
    ('12%', '0.4%')
    """
    return f"{x:.0%}" if x >= 0.01 or x == 0 else f"{x:.1%}"
