"""Search performance by micro-moment: impressions, clicks, CTR, position and shares, as Ibis expressions.

`prepare` picks the rows to analyse (per engine, the most detailed grain loaded: URL rows, else site
rows, else the UI's query rows; Search Console's grains describe the same searches and must not be
summed together), joins each query's moment and flags, and names each landing page's kind.
Anonymized rows stay in, under the moment `(anonymized)`: they count in every total and are never
classified.

>>> import ibis
>>> ib = ibis.duckdb.connect()
>>> _ = ib.con.execute("CREATE TABLE search_rows AS SELECT 'google' AS engine, 'query' AS grain, "
...     "NULL::DATE AS data_date, NULL::VARCHAR AS url, 'lay turf' AS query, false AS is_anonymized, "
...     "NULL::VARCHAR AS country, NULL::VARCHAR AS device, NULL::VARCHAR AS search_type, 100::BIGINT AS impressions, 5::BIGINT AS clicks, "
...     "200.0 AS sum_position")
>>> _ = ib.con.execute("CREATE TABLE search_query_moments AS SELECT 'lay turf' AS query, NULL::VARCHAR AS landing_url, "
...     "'do' AS moment, NULL::VARCHAR AS go_type, 0.9 AS confidence, false AS question, "
...     "false AS long_tail, false AS voice")
>>> data = prepare(ib)
>>> ib.execute(by_moment(data.rows))[["moment", "impressions", "ctr", "position"]].values.tolist()
[['do', 100, 0.05, 3.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir

from micromoments.seo.pages import PageKinds

# Per engine, the grains in the order they are preferred: the first one loaded is analysed.
PRIMARY_GRAINS: tuple[str, ...] = ("url", "site", "query")
ANONYMIZED = "(anonymized)"
UNCLASSIFIED = "unclassified"


@dataclass
class SearchData:
    """The rows `prepare` chose, with what they hold."""

    rows: ir.Table
    grains: dict[str, str]          # engine -> the grain analysed
    has_dates: bool
    has_urls: bool
    has_devices: bool
    has_countries: bool


def metrics(t: ir.Table, by: Sequence[str | ir.Value]) -> ir.Table:
    """Impressions, clicks, CTR and impression-weighted average position per group."""
    g = t.group_by(list(by)).aggregate(
        impressions=t.impressions.sum(), clicks=t.clicks.sum(),
        _pos=t.sum_position.sum(), _pos_impr=t.impressions.sum(where=t.sum_position.notnull()))
    return g.mutate(ctr=g.clicks / g.impressions,
                    position=(g._pos / g._pos_impr.nullif(0) + 1)).drop("_pos", "_pos_impr")


def with_shares(t: ir.Table, within: Sequence[str] = ()) -> ir.Table:
    """Add each group's share of impressions and of clicks (within `within`, or of the whole)."""
    w = ibis.window(group_by=list(within)) if within else ibis.window()
    return t.mutate(impression_share=t.impressions / t.impressions.sum().over(w),
                    click_share=t.clicks / t.clicks.sum().over(w).nullif(0))


def prepare(ib: Any, *, search_types: Sequence[str] | None = ("web",), page_kinds: PageKinds | None = None) -> SearchData:
    """The rows to analyse from `search_rows` and `search_query_moments` of the Ibis backend `ib`,
    cached as a temp table. `search_types` keeps Search Console's types (None: all)."""
    rows = ib.table("search_rows")
    present = {(e, g) for e, g in ib.execute(rows.select("engine", "grain").distinct()).itertuples(index=False)}
    grains = {}
    for engine in sorted({e for e, _ in present}):
        grains[engine] = next((g for g in PRIMARY_GRAINS if (engine, g) in present), "")
    keep = ibis.literal(False)
    for engine, grain in grains.items():
        keep = keep | ((rows.engine == engine) & (rows.grain == grain))
    rows = rows.filter(keep)
    if search_types:
        rows = rows.filter(rows.search_type.isnull() | rows.search_type.isin([s.lower() for s in search_types]))
    moments = ib.table("search_query_moments").select("query", "moment", "go_type", "question", "long_tail", "voice")
    # A page's kind is worked out once per distinct URL (a few regexes), not once per row.
    kinds = (page_kinds or PageKinds.default())
    urls = rows.select("url").distinct().filter(lambda t: t.url.notnull())
    urls = urls.mutate(page_kind=ibis.cases(*[(urls.url.lower().re_search(p), k) for k, p in kinds.patterns],
                                            else_="other"))
    j = rows.left_join(moments, "query").left_join(urls, "url")
    label = ibis.cases(
        (j.is_anonymized, ANONYMIZED),
        (j.moment.isnull(), UNCLASSIFIED),
        ((j.moment == "go") & j.go_type.notnull(), "go/" + j.go_type),
        else_=j.moment)
    prepared = j.select(
        "engine", "grain", "data_date", "url", "query", "is_anonymized", "country", "device", "impressions",
        "clicks", "sum_position", moment=label, go_type=j.go_type,
        question=j.question.fill_null(False), long_tail=j.long_tail.fill_null(False), voice=j.voice.fill_null(False),
        page_kind=j.page_kind,
        week=j.data_date.truncate("W"))
    cached = cache_table(ib, "_mm_search", prepared)
    flags = ib.execute(cached.aggregate(d=cached.data_date.count(), u=cached.url.count(), v=cached.device.count(),
                                        c=cached.country.count())).iloc[0]
    return SearchData(cached, grains, *(bool(x) for x in flags))


def cache_table(ib: Any, name: str, expr: ir.Table) -> ir.Table:
    """`expr` kept as `name` for the steps that read it again: a temp table on DuckDB, a cached temp
    view on Spark (Ibis' PySpark backend has no temp tables)."""
    if ib.name != "pyspark":
        return ib.create_table(name, expr, temp=True, overwrite=True)
    spark = ib._session
    if spark.catalog.tableExists(name):
        spark.catalog.uncacheTable(name)
    ib.create_view(name, expr, overwrite=True)
    spark.catalog.cacheTable(name)
    return ib.table(name)


def totals(t: ir.Table) -> ir.Table:
    """One row: impressions, clicks, CTR, position, distinct queries, anonymized share, first and last day."""
    m = metrics(t.mutate(_all=ibis.literal(1)), ["_all"]).drop("_all")
    extra = t.aggregate(queries=t.query.nunique(),
                        anonymized_impressions=t.impressions.sum(where=t.is_anonymized),
                        first_day=t.data_date.min(), last_day=t.data_date.max())
    both = m.cross_join(extra)
    return both.mutate(anonymized_share=both.anonymized_impressions.fill_null(0) / both.impressions)


def by_moment(t: ir.Table) -> ir.Table:
    """Per moment (go split by type; `(anonymized)` apart): metrics, shares and distinct queries."""
    m = metrics(t, ["moment"])
    q = t.group_by("moment").aggregate(queries=t.query.nunique())
    return with_shares(m.join(q, "moment")).order_by(ibis.desc("impressions"))


def complete_weeks(t: ir.Table) -> ir.Table:
    """The dated rows of weeks with all seven days in the data (a partial first or last week would
    read as a dip); every dated row when fewer than two weeks are complete."""
    dated = t.filter(t.week.notnull())
    days = dated.group_by("week").aggregate(_days=dated.data_date.nunique())
    full = days.filter(days._days >= 7)
    return dated.semi_join(full, "week") if full.count().execute() >= 2 else dated


def weekly(t: ir.Table) -> ir.Table:
    """Per complete week and moment: metrics and the moment's share of the week's impressions and clicks."""
    return with_shares(metrics(complete_weeks(t), ["week", "moment"]), ["week"]).order_by(["week", "moment"])


def by_dimension(t: ir.Table, dimension: str, top: int | None = None) -> ir.Table:
    """Per value of `dimension` (device, country) and moment, with the moment's share within it;
    `top` keeps the values with the most impressions."""
    known = t.filter(t[dimension].notnull())
    if top:
        best = known.group_by(dimension).aggregate(_i=known.impressions.sum()).order_by(ibis.desc("_i")).limit(top)
        known = known.semi_join(best, dimension)
    return with_shares(metrics(known, [dimension, "moment"]), [dimension]).order_by([dimension, "moment"])


def ui_split(ib: Any, grain: str) -> ir.Table:
    """A UI export's own device / country / date table (no moments: the UI export does not cross them)."""
    rows = ib.table("search_rows")
    column = {"device": "device", "country": "country", "date": "data_date"}[grain]
    r = rows.filter(rows.grain == grain).mutate(moment=ibis.literal("(all)"))
    return with_shares(metrics(r, [column, "moment"]), [column]).order_by(column)
