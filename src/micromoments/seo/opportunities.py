"""Where search could earn more: CTR below the site's own curve, query styles, content gaps, cannibalisation.

Everything is an Ibis expression over the rows `analysis.prepare` chose; only small results
(the curve's bins, the flagged queries) come back to Python.

- `fit_curve`: the expected CTR by position (see `curve`), fitted on every row with a position.
- `below_curve`: queries whose clicks fall short of what their impressions at their positions
  should earn: at least `min_impressions`, CTR under `(1 - margin)` of the expected CTR, and a
  one-sided binomial p-value under `alpha` (so a few unlucky impressions are not a finding).
- `themes`: the same test for groups of similar queries (TF-IDF clusters of the top queries).
- `query_styles` / `style_trend`: the share of impressions from questions, long-tail and
  voice-style queries, overall and per week.
- `content_gaps`: "do" queries landing on product pages, "go/local" queries with no store page,
  "know" questions with no answer page.
- `cannibalisation`: queries whose impressions are split between several landing pages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from micromoments.seo.analysis import cache_table, complete_weeks, metrics
from micromoments.seo.curve import BIN_UPPER, LOOKUP_MAX, CtrCurve, fit_expected_ctr


@dataclass
class Thresholds:
    """What counts as an opportunity (the CLI's options)."""

    min_impressions: int = 100     # a query (or page split) needs this many impressions to be listed
    margin: float = 0.25           # CTR at least this fraction below the expected CTR
    alpha: float = 0.01            # and this unlikely by chance (one-sided binomial test)
    min_page_share: float = 0.10   # cannibalisation: each page holds at least this share of impressions
    max_theme_queries: int = 400   # themes cluster this many top queries (the clustering is quadratic)


def _positioned(t: ir.Table) -> ir.Table:
    t = t.filter(t.sum_position.notnull() & (t.impressions > 0))
    return t.mutate(pos=t.sum_position / t.impressions + 1)


def fit_curve(ib: object, t: ir.Table) -> CtrCurve:
    """Pool every row with a position into bins and fit the expected-CTR curve on them."""
    p = _positioned(t)
    p = p.mutate(bin=ibis.cases(*[(p.pos < upper, i) for i, upper in enumerate(BIN_UPPER)], else_=len(BIN_UPPER)),
                 _w=p.pos * p.impressions)
    bins = p.group_by("bin").aggregate(position=p._w.sum() / p.impressions.sum(), impressions=p.impressions.sum(),
                                       clicks=p.clicks.sum()).order_by("bin")
    return fit_expected_ctr(ib.execute(bins))  # type: ignore[attr-defined]


def query_expectations(ib: object, t: ir.Table, curve: CtrCurve) -> ir.Table:
    """Per named query: metrics, the clicks its impressions should earn at their positions (each row's
    impressions x the curve at that row's position), and its top landing page. Cached: the
    below-curve list and the themes both read it."""
    p = _positioned(t.filter(~t.is_anonymized))
    lookup = ibis.memtable(curve.lookup())
    p = p.mutate(_pos=(p.pos.clip(lower=1.0, upper=LOOKUP_MAX) * 10).round() / 10)
    j = p.join(lookup, p._pos == lookup.pos)
    j = j.mutate(expected_clicks=j.impressions * j.expected_ctr)
    m = metrics(j, ["query", "moment"])
    extra = j.group_by(["query", "moment"]).aggregate(expected_clicks=j.expected_clicks.sum(),
                                                      landing_page=j.url.argmax(j.impressions))
    return cache_table(ib, "_mm_search_queries", m.join(extra, ["query", "moment"]))


def _flag(frame: pd.DataFrame, th: Thresholds) -> pd.DataFrame:
    """Add expected CTR, missed clicks and the binomial p-value; keep the rows below the curve."""
    from scipy.stats import binom

    if frame.empty:
        return frame.assign(expected_ctr=[], missed_clicks=[], p_value=[])
    f = frame.copy()
    f["expected_ctr"] = f.expected_clicks / f.impressions
    f["missed_clicks"] = f.expected_clicks - f.clicks
    f["p_value"] = binom.cdf(f.clicks.to_numpy(), f.impressions.to_numpy(), f.expected_ctr.clip(0, 1).to_numpy())
    keep = (f.impressions >= th.min_impressions) & (f.ctr < (1 - th.margin) * f.expected_ctr) & (f.p_value < th.alpha)
    return f[keep].sort_values("missed_clicks", ascending=False).reset_index(drop=True)


def below_curve(ib: object, queries: ir.Table, th: Thresholds) -> pd.DataFrame:
    """Queries under the curve, most missed clicks first: query, moment, impressions, clicks, ctr,
    position, expected_clicks, landing_page, expected_ctr, missed_clicks, p_value."""
    q = queries.filter((queries.impressions >= th.min_impressions)
                       & (queries.clicks < queries.expected_clicks * (1 - th.margin)))
    return _flag(ib.execute(q), th)  # type: ignore[attr-defined]


def themes(ib: object, queries: ir.Table, th: Thresholds) -> pd.DataFrame:
    """Themes of the top queries (by impressions), each with its totals and whether it is below the curve."""
    from micromoments.journey.text import cluster_texts

    top = ib.execute(queries.select("query", "impressions")  # type: ignore[attr-defined]
                     .order_by([ibis.desc("impressions"), "query"]).limit(th.max_theme_queries))
    if len(top) < 3:
        return pd.DataFrame()
    labels, names = cluster_texts(top["query"].tolist(), top["impressions"].tolist())
    assignment = ibis.memtable(pd.DataFrame({"query": top["query"], "theme": [names[i] for i in labels]}))
    e = queries.join(assignment, "query")
    g = e.group_by("theme").aggregate(
        impressions=e.impressions.sum(), clicks=e.clicks.sum(), expected_clicks=e.expected_clicks.sum(),
        position=(e.position * e.impressions).sum() / e.impressions.sum(), queries=e.query.nunique(),
        top_query=e["query"].argmax(e.impressions), moment=e.moment.argmax(e.impressions))
    f = ib.execute(g.mutate(ctr=g.clicks / g.impressions))  # type: ignore[attr-defined]
    if f.empty:
        return f
    flagged = set(_flag(f, th).theme)
    f["expected_ctr"] = f.expected_clicks / f.impressions
    f["missed_clicks"] = f.expected_clicks - f.clicks
    f["below_curve"] = f.theme.isin(flagged)
    return f.sort_values(["below_curve", "missed_clicks"], ascending=False).reset_index(drop=True)


STYLES = ("question", "long_tail", "voice")


def query_styles(t: ir.Table) -> ir.Table:
    """Per style (question, long-tail, voice-style): queries, impressions, clicks, CTR and the
    share of the named (not anonymized) queries' impressions and clicks."""
    named = t.filter(~t.is_anonymized)
    parts = []
    for style in STYLES:
        s = named.filter(named[style])
        parts.append(s.aggregate(style=ibis.literal(style), queries=s.query.nunique(),
                                 impressions=s.impressions.sum(), clicks=s.clicks.sum()))
    whole = named.aggregate(_impr=named.impressions.sum(), _clicks=named.clicks.sum())
    u = ibis.union(*parts).cross_join(whole)
    return u.select("style", "queries", impressions=u.impressions.fill_null(0), clicks=u.clicks.fill_null(0),
                    ctr=u.clicks / u.impressions.nullif(0), impression_share=u.impressions.fill_null(0) / u._impr,
                    click_share=u.clicks.fill_null(0) / u._clicks.nullif(0))


def style_trend(t: ir.Table) -> ir.Table:
    """Per complete week: each style's share of the named queries' impressions."""
    named = complete_weeks(t.filter(~t.is_anonymized))
    g = named.group_by("week").aggregate(
        impressions=named.impressions.sum(),
        **{f"{s}_impressions": named.impressions.sum(where=named[s]) for s in STYLES})
    return g.select("week", "impressions", **{
        f"{s}_share": g[f"{s}_impressions"].fill_null(0) / g.impressions for s in STYLES}).order_by("week")


def trend_slope(weekly: pd.DataFrame, column: str) -> float | None:
    """Least-squares change of a weekly share per week (None with fewer than 3 weeks)."""
    if len(weekly) < 3:
        return None
    y = weekly[column].to_numpy(dtype=float)
    x = np.arange(len(y), dtype=float)
    return float(np.polyfit(x, y, 1, w=np.sqrt(weekly.impressions.to_numpy(dtype=float)))[0])


GAPS = {
    "do_on_product_page": "a 'do' query (how to) lands on a product page, not a guide",
    "go_local_no_store_page": "a 'go/local' query (near me, opening hours) lands on no store page",
    "know_question_no_answer_page": "a 'know' question lands on no answer page (guide, advice, FAQ)",
}


def content_gaps(t: ir.Table) -> ir.Table:
    """One row per query with a content gap: gap, query, moment, impressions, clicks, landing pages, top
    landing page and its kind. Needs rows with landing pages (the bulk URL table)."""
    named = t.filter(~t.is_anonymized & t.url.notnull())
    pages = named.group_by(["query", "moment", "question", "url", "page_kind"]).aggregate(
        impressions=named.impressions.sum(), clicks=named.clicks.sum())
    q = pages.group_by(["query", "moment", "question"]).aggregate(
        impressions=pages.impressions.sum(), clicks=pages.clicks.sum(), pages=pages.url.nunique(),
        landing_page=pages.url.argmax(pages.impressions), page_kind=pages.page_kind.argmax(pages.impressions),
        has_store=(pages.page_kind == "store").any(), has_answer=(pages.page_kind == "answer").any())
    gap = ibis.cases(
        ((q.moment == "do") & (q.page_kind == "product"), "do_on_product_page"),
        ((q.moment == "go/local") & ~q.has_store, "go_local_no_store_page"),
        ((q.moment == "know") & q.question & ~q.has_answer, "know_question_no_answer_page"),
        else_=ibis.null(str))
    q = q.mutate(gap=gap)
    return (q.filter(q.gap.notnull())
            .select("gap", "query", "moment", "impressions", "clicks", "pages", "landing_page", "page_kind")
            .order_by(["gap", ibis.desc("impressions"), "query"]))


def gap_summary(gaps: pd.DataFrame, moments: pd.DataFrame) -> pd.DataFrame:
    """Per gap: queries, impressions, clicks, and the share of its moment's impressions."""
    rows = []
    moment_of = {"do_on_product_page": "do", "go_local_no_store_page": "go/local",
                 "know_question_no_answer_page": "know"}
    for gap, text in GAPS.items():
        g = gaps[gaps.gap == gap] if not gaps.empty else gaps
        total = moments.loc[moments.moment == moment_of[gap], "impressions"].sum() if not moments.empty else 0
        impr = int(g.impressions.sum()) if len(g) else 0
        rows.append({"gap": gap, "what": text, "queries": len(g), "impressions": impr,
                     "clicks": int(g.clicks.sum()) if len(g) else 0,
                     "share_of_moment": impr / total if total else 0.0})
    return pd.DataFrame(rows)


def cannibalisation(ib: object, t: ir.Table, th: Thresholds) -> pd.DataFrame:
    """Queries whose impressions are split between two or more landing pages (each at least
    `min_page_share`): query, moment, impressions, clicks, pages, top page's click share, and the split."""
    named = t.filter(~t.is_anonymized & t.url.notnull())
    pu = metrics(named, ["query", "moment", "url"])
    w = ibis.window(group_by="query")
    pu = pu.mutate(q_impressions=pu.impressions.sum().over(w), q_clicks=pu.clicks.sum().over(w))
    pu = pu.mutate(impression_share=pu.impressions / pu.q_impressions,
                   click_share=pu.clicks / pu.q_clicks.nullif(0))
    strong = pu.filter(pu.impression_share >= th.min_page_share)
    per_query = strong.group_by("query").aggregate(pages=strong.url.count(), q_impressions=strong.q_impressions.max())
    cands = per_query.filter((per_query.pages >= 2) & (per_query.q_impressions >= th.min_impressions))
    detail = pu.semi_join(cands, "query").filter(pu.impression_share >= th.min_page_share)
    out = detail.group_by(["query", "moment"]).aggregate(
        impressions=detail.q_impressions.max(), clicks=detail.q_clicks.max(), pages=detail.url.count(),
        top_page=detail.url.argmax(detail.impressions), top_click_share=detail.click_share.fill_null(0).max())
    frame = ib.execute(out.order_by([ibis.desc("impressions"), "query"]))  # type: ignore[attr-defined]
    # The split text is joined in pandas: Spark SQL has no ordered string aggregate (few rows here).
    pages = ib.execute(detail.select("query", "moment", "url", "impressions", "impression_share",  # type: ignore[attr-defined]
                                     "click_share"))
    frame["split"] = frame.apply(lambda r: _split_text(pages, r["query"], r["moment"]), axis=1) if len(frame) else []
    return frame


def _split_text(pages: pd.DataFrame, query: str, moment: str) -> str:
    """"URL 60% of impressions, 70% of clicks · ...", the pages with the most impressions first."""
    p = pages[(pages["query"] == query) & (pages["moment"] == moment)]
    p = p.sort_values(["impressions", "url"], ascending=[False, True])
    # Half away from zero, as SQL's round() did.
    pct = lambda x: f"{math.floor((0.0 if x is None or x != x else float(x)) * 100 + 0.5)}%"  # noqa: E731
    return " · ".join(f"{u} {pct(i)} of impressions, {pct(c)} of clicks"
                      for u, i, c in zip(p.url, p.impression_share, p.click_share))
