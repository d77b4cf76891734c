"""Frequently asked questions: question-like and long-tail queries grouped into themes, with an
example query and volume each, and the *content gaps*: themes people ask a lot about whose
sessions rarely convert.

`query_stats` is the Ibis part (per distinct query: searches, people, sessions, converted
sessions); `faq_themes` clusters the small result in scikit-learn (TF-IDF + k-means).
"""

from __future__ import annotations

import ibis.expr.types as ir
import pandas as pd

from micromoments.journey.text import cluster_texts, is_long_tail, is_question
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


def faq_themes(stats: pd.DataFrame, *, min_words: int = 4, max_themes: int = 20,
               gap_ratio: float = 0.5, min_searches: int = 10, alpha: float = 0.05) -> pd.DataFrame:
    """Themes of question-like or long-tail queries, biggest first.

    Columns: theme, label, example (the most searched query), queries, searches, people,
    sessions, conversion_rate, share (of all searches), content_gap.
    A theme is a **content gap** when it is searched a lot (at least `min_searches` and half the
    median theme's volume) and its sessions convert at less than `gap_ratio` × the rate of all
    search sessions, significantly so (one-sided binomial test at `alpha`).
    """
    cols = ["theme", "label", "example", "queries", "searches", "people", "sessions",
            "conversion_rate", "share", "content_gap"]
    if stats.empty:
        return pd.DataFrame(columns=cols)
    total_searches = float(stats.searches.sum())
    overall_rate = float(stats.converted_sessions.sum()) / max(float(stats.sessions.sum()), 1.0)
    mask = stats["query"].map(lambda q: is_question(q) or is_long_tail(q, min_words))
    picked = stats[mask].reset_index(drop=True)
    if picked.empty:
        return pd.DataFrame(columns=cols)
    labels, names = cluster_texts(picked["query"].tolist(), picked.searches.tolist(), max_clusters=max_themes)
    picked["theme"] = labels
    rows = []
    for theme, grp in picked.groupby("theme"):
        grp = grp.sort_values(["searches", "query"], ascending=[False, True])
        sessions = int(grp.sessions.sum())
        rows.append(dict(
            theme=int(theme), label=names[int(theme)], example=grp["query"].iloc[0], queries=len(grp),
            searches=int(grp.searches.sum()), people=int(grp.people.sum()), sessions=sessions,
            conversion_rate=float(grp.converted_sessions.sum()) / max(sessions, 1),
            _converted=int(grp.converted_sessions.sum()),
        ))
    out = pd.DataFrame(rows)
    out["share"] = out.searches / total_searches
    from scipy.stats import binomtest

    p_low = [binomtest(int(c), int(n), overall_rate, alternative="less").pvalue if n > 0 and 0 < overall_rate < 1 else 1.0
             for c, n in zip(out._converted, out.sessions)]
    busy = out.searches >= max(min_searches, out.searches.median() / 2)
    out["content_gap"] = busy & (out.conversion_rate < gap_ratio * overall_rate) & (pd.Series(p_low) < alpha)
    return out.sort_values(["searches", "label"], ascending=[False, True]).reset_index(drop=True)[cols]
