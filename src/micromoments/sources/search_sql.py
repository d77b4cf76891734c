"""SQL that turns one search export, as DuckDB reads it, into `search_rows` plus a reason per bad row.

Every kind of file (see `search_formats`) gets one SELECT over a view `_mm_src` holding the file's
columns and `_line`: the canonical columns of `store.schema.SEARCH_ROWS_COLUMNS`, and `_check`, NULL
for a good row or `field<TAB>reason` for the first check it fails. One pass, no Python per row.

>>> int_sql('"n"', "VARCHAR").count("TRY_CAST") > 0
True
"""

from __future__ import annotations

from dataclasses import dataclass

from micromoments.events.sql import sql_literal
from micromoments.sources.search_formats import BING_COLUMNS, UI_METRICS, clean_header

INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT")
# Google's bulk export spells device and search type in capitals; the store keeps them lower case.
BULK_ANONYMIZED = "is_anonymized_query"


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _text(expr: str) -> str:
    return f"nullif(trim(CAST({expr} AS VARCHAR)), '')"


def int_sql(expr: str, kind: str) -> str:
    """A whole number from a typed or text column; NULL when it is not one. Text may carry
    thousands separators ("1,234", "1.234", "1 234")."""
    if kind.upper() in INTEGER_TYPES:
        return f"CAST({expr} AS BIGINT)"
    t = _text(expr)
    return (f"CASE WHEN regexp_full_match({t}, '\\d{{1,3}}([,.\\s\u00a0'']\\d{{3}})+') "
            f"THEN TRY_CAST(regexp_replace({t}, '[^0-9]', '', 'g') AS BIGINT) "
            f"WHEN TRY_CAST({t} AS DOUBLE) = floor(TRY_CAST({t} AS DOUBLE)) "
            f"THEN TRY_CAST(TRY_CAST({t} AS DOUBLE) AS BIGINT) END")


def number_sql(expr: str, kind: str) -> str:
    """A decimal from a typed or text column: '3.2', '3,2' (decimal comma), '4.5%' (the '%' dropped)."""
    if kind.upper() in INTEGER_TYPES or kind.upper() in ("DOUBLE", "FLOAT", "REAL") or kind.upper().startswith("DECIMAL"):
        return f"CAST({expr} AS DOUBLE)"
    s = f"regexp_replace({_text(expr)}, '[%\\s\u00a0]', '', 'g')"
    return (f"TRY_CAST(CASE WHEN strpos({s}, ',') > 0 AND strpos({s}, '.') = 0 THEN replace({s}, ',', '.') "
            f"ELSE replace({s}, ',', '') END AS DOUBLE)")


def ratio_sql(expr: str, kind: str) -> str:
    """A CTR as a fraction: '4.5%' and 4.5 are 0.045; 0.045 stays."""
    n = number_sql(expr, kind)
    pct = f"strpos(CAST({expr} AS VARCHAR), '%') > 0"
    return f"CASE WHEN {pct} OR {n} > 1 THEN {n} / 100 ELSE {n} END"


def date_sql(expr: str, kind: str = "VARCHAR") -> str:
    """A date from DATE/TIMESTAMP columns or text: ISO, US 'm/d/yyyy', or the Bing API's '/Date(ms)/'."""
    if kind.upper() == "DATE" or kind.upper().startswith("TIMESTAMP"):
        return f"CAST({expr} AS DATE)"
    t = _text(expr)
    return (f"coalesce(TRY_CAST({t} AS DATE), CAST(try_strptime({t}, '%m/%d/%Y') AS DATE), "
            f"CAST(make_timestamp(TRY_CAST(regexp_extract({t}, '/Date\\((-?\\d+)', 1) AS BIGINT) * 1000) AS DATE))")


def _bad(cond: str, field: str, reason_sql: str) -> str:
    return f"WHEN {cond} THEN {sql_literal(field)} || chr(9) || {reason_sql}"


def _shown(expr: str) -> str:
    # The offending value, quoted and cut, for the reason text.
    return f"coalesce('''' || left(CAST({expr} AS VARCHAR), 40) || '''', 'empty')"


@dataclass
class Columns:
    """The file's column names (as DuckDB reads them) and their DuckDB types."""

    names: list[str]
    types: list[str]

    def find(self, *wanted: str) -> str | None:
        """The first column whose cleaned header is one of `wanted`."""
        cleaned = {clean_header(n): n for n in reversed(self.names)}
        for w in wanted:
            if w in cleaned:
                return cleaned[w]
        return None

    def kind(self, name: str) -> str:
        return self.types[self.names.index(name)]


def _canonical(engine: str, grain: str, *, date: str = "NULL", site: str = "NULL", url: str = "NULL",
               query: str = "NULL", anonymized: str = "false", country: str = "NULL", device: str = "NULL",
               search_type: str = "NULL", impressions: str, clicks: str, sum_position: str = "NULL") -> str:
    return (f"{sql_literal(engine)} AS engine, {sql_literal(grain)} AS grain, {date} AS data_date, "
            f"{site} AS site_url, {url} AS url, {query} AS query, {anonymized} AS is_anonymized, "
            f"{country} AS country, {device} AS device, {search_type} AS search_type, "
            f"{impressions} AS impressions, {clicks} AS clicks, {sum_position} AS sum_position")


def _metric_checks(impr: str, clicks: str, impr_col: str, clicks_col: str | None,
                   ctr: tuple[str, str] | None = None) -> list[str]:
    """Impressions and clicks are whole numbers, 1 <= impressions, 0 <= clicks <= impressions; and a CTR
    column, when there is one besides clicks, agrees with them (it catches shifted columns)."""
    checks = [
        _bad(f"{impr} IS NULL", impr_col, f"{_shown(q(impr_col))} || ' is not a whole number'"),
        _bad(f"{impr} < 1", impr_col, "'must be at least 1 (Search Console exports no row without impressions)'"),
        _bad(f"{clicks} IS NULL", clicks_col or (ctr[1] if ctr else "clicks"),
             f"{_shown(q(clicks_col))} || ' is not a whole number'" if clicks_col else
             (f"{_shown(q(ctr[1]))} || ' is not a rate (e.g. 4.5%)'" if ctr else "'no Clicks or CTR column'")),
        _bad(f"{clicks} < 0", clicks_col or "ctr", "'is negative'"),
        _bad(f"{clicks} > {impr}", clicks_col or "ctr",
             "'clicks (' || " + clicks + " || ') exceed impressions (' || " + impr + " || ')'"),
    ]
    if ctr is not None and clicks_col:
        value, column = ctr
        # The UI rounds CTR to two decimals of a percent: allow that, and 5 % of the value.
        checks.append(_bad(f"{value} IS NULL AND {_text(q(column))} IS NOT NULL", column,
                           f"{_shown(q(column))} || ' is not a rate (e.g. 4.5%)'"))
        checks.append(_bad(f"abs({value} - {clicks} / {impr}) > 0.0001 + 0.05 * {value}", column,
                           f"{_shown(q(column))} || ' does not match clicks / impressions (' || "
                           f"round(100.0 * {clicks} / {impr}, 2) || '%): are the columns shifted?'"))
    return checks


def bulk_select(cols: Columns, grain: str) -> str:
    """The SELECT for a bulk export table (`grain` 'url' or 'site')."""
    c = {name: cols.find(name) for name in (
        "data_date", "site_url", "url", "query", BULK_ANONYMIZED, "is_anonymized_discover", "country",
        "search_type", "device", "impressions", "clicks", "sum_top_position", "sum_position")}
    pos_col = c["sum_position"] if grain == "url" else c["sum_top_position"]
    assert c["data_date"] and c["impressions"] and c["clicks"] and pos_col  # checked by kind_of_header
    date = date_sql(q(c["data_date"]), cols.kind(c["data_date"]))
    impr = int_sql(q(c["impressions"]), cols.kind(c["impressions"]))
    clicks = int_sql(q(c["clicks"]), cols.kind(c["clicks"]))
    pos = number_sql(q(pos_col), cols.kind(pos_col))
    query = _text(q(c["query"])) if c["query"] else "NULL"
    flag_col = c[BULK_ANONYMIZED]
    flag = (f"{q(flag_col)}" if flag_col and cols.kind(flag_col) == "BOOLEAN" else
            f"TRY_CAST({_text(q(flag_col))} AS BOOLEAN)" if flag_col else f"({query} IS NULL)")
    url = _text(q(c["url"])) if c["url"] else "NULL"
    discover = f"coalesce(TRY_CAST({_text(q(c['is_anonymized_discover']))} AS BOOLEAN), false)" \
        if c["is_anonymized_discover"] else "false"
    checks = [
        _bad(f"{date} IS NULL", c["data_date"], f"{_shown(q(c['data_date']))} || ' is not a date (YYYY-MM-DD)'"),
        *_metric_checks(impr, clicks, c["impressions"], c["clicks"]),
        _bad(f"{pos} IS NULL OR {pos} < 0", pos_col, f"{_shown(q(pos_col))} || ' is not a number >= 0'"),
    ]
    if flag_col and cols.kind(flag_col) != "BOOLEAN":
        checks.append(_bad(f"{flag} IS NULL AND {_text(q(flag_col))} IS NOT NULL", flag_col,
                           f"{_shown(q(flag_col))} || ' is not true or false'"))
    checks.append(_bad(f"{query} IS NULL AND NOT coalesce({flag}, false)", c["query"] or "query",
                       "'is empty but is_anonymized_query is false (fill the query or mark the row anonymized)'"))
    if grain == "url":
        checks.append(_bad(f"{url} IS NULL AND NOT {discover}", c["url"] or "url",
                           "'is empty (a URL impression row names its page)'"))
    canonical = _canonical(
        "google", grain, date=date, site=_text(q(c["site_url"])) if c["site_url"] else "NULL", url=url,
        query=f"CASE WHEN coalesce({flag}, false) THEN NULL ELSE {query} END",
        anonymized=f"coalesce({flag}, false)",
        country=f"lower({_text(q(c['country']))})" if c["country"] else "NULL",
        device=f"lower({_text(q(c['device']))})" if c["device"] else "NULL",
        search_type=f"lower({_text(q(c['search_type']))})" if c["search_type"] else "NULL",
        impressions=impr, clicks=clicks, sum_position=pos)
    return _select(canonical, checks)


def _select(canonical: str, checks: list[str]) -> str:
    return f"SELECT {canonical}, CASE {' '.join(checks)} END AS _check, _line FROM _mm_src"


def _metrics(cols: Columns, names: dict[str, str]) -> tuple[dict[str, str | None], str, str, str]:
    """Metric columns of a UI or Bing file and their SQL: (columns, impressions, clicks, position)."""
    found: dict[str, str | None] = {"impressions": None, "clicks": None, "ctr": None, "position": None,
                                    "query": None, "date": None, "url": None}
    for n in cols.names:
        role = names.get(clean_header(n))
        if role in found and found[role] is None:
            found[role] = n
    impr_col = found["impressions"]
    assert impr_col is not None  # checked by kind_of_header
    impr = int_sql(q(impr_col), cols.kind(impr_col))
    if found["clicks"]:
        clicks = int_sql(q(found["clicks"]), cols.kind(found["clicks"]))
    elif found["ctr"]:
        clicks = f"CAST(round({ratio_sql(q(found['ctr']), cols.kind(found['ctr']))} * {impr}) AS BIGINT)"
    else:
        clicks = "CAST(NULL AS BIGINT)"
    pos = number_sql(q(found["position"]), cols.kind(found["position"])) if found["position"] else "NULL"
    return found, impr, clicks, pos


def _ctr(cols: Columns, found: dict[str, str | None]) -> tuple[str, str] | None:
    column = found["ctr"]
    return (ratio_sql(q(column), cols.kind(column)), column) if column else None


def ui_select(cols: Columns, grain: str, page: str | None = None) -> str:
    """The SELECT for one CSV of the UI export; `page` is the Filters.csv page every query landed on."""
    found, impr, clicks, pos = _metrics(cols, UI_METRICS)
    dim = cols.names[0]
    value = _text(q(dim))
    checks = [_bad(f"{value} IS NULL", dim, "'is empty'")]
    date = "NULL"
    if grain == "date":
        date = date_sql(q(dim))
        checks.append(_bad(f"{date} IS NULL", dim, f"{_shown(q(dim))} || ' is not a date (YYYY-MM-DD)'"))
    checks += _metric_checks(impr, clicks, found["impressions"] or "impressions", found["clicks"], _ctr(cols, found))
    if found["position"]:
        checks.append(_bad(f"{pos} IS NOT NULL AND {pos} < 1", found["position"],
                           f"{_shown(q(found['position']))} || ' is not a position (1 is the top)'"))
    sum_pos = f"({pos} - 1) * {impr}" if found["position"] else "NULL"
    roles = {"query": "query", "page": "url", "country": "country", "device": "device"}
    kw = {k: "NULL" for k in ("query", "url", "country", "device")}
    if grain in roles:
        kw[roles[grain]] = f"lower({value})" if grain in ("country", "device") else value
    if grain == "query" and page:
        kw["url"] = sql_literal(page)
    canonical = _canonical("google", grain, date=date, query=kw["query"], url=kw["url"], country=kw["country"],
                           device=kw["device"], impressions=impr, clicks=clicks, sum_position=sum_pos)
    return _select(canonical, checks)


def bing_select(cols: Columns) -> str:
    """The SELECT for a Bing Webmaster Tools keywords export."""
    found, impr, clicks, pos = _metrics(cols, BING_COLUMNS)
    query_col = found["query"]
    assert query_col is not None
    query = _text(q(query_col))
    checks = [_bad(f"{query} IS NULL", query_col, "'is empty'")]
    date = "NULL"
    if found["date"]:
        date = date_sql(q(found["date"]))
        checks.append(_bad(f"{date} IS NULL AND {_text(q(found['date']))} IS NOT NULL", found["date"],
                           f"{_shown(q(found['date']))} || ' is not a date'"))
    checks += _metric_checks(impr, clicks, found["impressions"] or "impressions", found["clicks"], _ctr(cols, found))
    if found["position"]:
        checks.append(_bad(f"{pos} IS NULL AND {_text(q(found['position']))} IS NOT NULL", found["position"],
                           f"{_shown(q(found['position']))} || ' is not a number'"))
    # Bing reports 0 for a position it does not know.
    sum_pos = f"CASE WHEN {pos} >= 1 THEN ({pos} - 1) * {impr} END" if found["position"] else "NULL"
    url = _text(q(found["url"])) if found["url"] else "NULL"
    canonical = _canonical("bing", "url" if found["url"] else "query", date=date, query=query, url=url,
                           impressions=impr, clicks=clicks, sum_position=sum_pos)
    return _select(canonical, checks)
