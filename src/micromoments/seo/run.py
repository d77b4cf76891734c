"""The whole search analysis on loaded data: moments, trends, splits and opportunities, in one result.

>>> # ib = ibis.duckdb.connect(); load_search_files(ib.con, ["Performance-on-Search.zip"])
>>> # result = analyse_search(ib); result.write_csvs("seo-out")
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from micromoments.config import Config
from micromoments.seo import analysis as an
from micromoments.seo import opportunities as op
from micromoments.seo.classify import classify_search
from micromoments.seo.pages import PageKinds


@dataclass
class SeoResult:
    """Every table of the analysis (pandas, small) and notes on what the data could not show."""

    totals: dict[str, Any]
    by_moment: pd.DataFrame
    weekly: pd.DataFrame
    by_device: pd.DataFrame
    by_country: pd.DataFrame
    curve: pd.DataFrame
    below_curve: pd.DataFrame
    themes: pd.DataFrame
    styles: pd.DataFrame
    style_trend: pd.DataFrame
    style_slopes: dict[str, float | None]
    content_gaps: pd.DataFrame
    gap_summary: pd.DataFrame
    cannibalisation: pd.DataFrame
    grains: dict[str, str]
    notes: list[str] = field(default_factory=list)
    classification: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    CSV_TABLES = ("by_moment", "weekly", "by_device", "by_country", "curve", "below_curve", "themes", "styles",
                  "style_trend", "content_gaps", "gap_summary", "cannibalisation")

    def write_csvs(self, out_dir: str | Path) -> list[Path]:
        """Write each table as `<name>.csv` in `out_dir` (created) and return the paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for name in self.CSV_TABLES:
            path = out / f"{name}.csv"
            getattr(self, name).to_csv(path, index=False)
            paths.append(path)
        return paths


def has_search_data(con: Any) -> bool:
    """Whether the DuckDB connection holds loaded search rows."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    return "search_rows" in tables and con.execute("SELECT count(*) > 0 FROM search_rows").fetchone()[0]


def store_has_search_data(store: Any) -> bool:
    """Whether a store (DuckDB `Store` or `LakeStore`) holds loaded search rows."""
    if getattr(store, "engine", "duckdb") == "spark":
        from micromoments.seo.lake import has_lake_search_data

        return has_lake_search_data(store)
    return bool(has_search_data(store.duck))


def analyse_search(
    ib: Any,
    config: Config | None = None,
    *,
    thresholds: op.Thresholds | None = None,
    page_kinds: PageKinds | None = None,
    search_types: Sequence[str] | None = ("web",),
    classify: bool = True,
) -> SeoResult:
    """Classify the queries (cached) and compute every table, on the Ibis DuckDB backend `ib`
    holding `search_rows` (a store's `ibis`, or an in-memory backend the files were loaded into)."""
    th = thresholds or op.Thresholds()
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    stats = classify_search(ib.con, config) if classify else {}
    seconds["classify"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = an.prepare(ib, search_types=search_types, page_kinds=page_kinds)
    rows = data.rows
    totals_frame = ib.execute(an.totals(rows))
    totals = totals_frame.iloc[0].to_dict() if len(totals_frame) else {}
    by_moment = ib.execute(an.by_moment(rows))
    notes: list[str] = []
    if data.has_dates:
        weekly = ib.execute(an.weekly(rows))
    else:
        weekly = ib.execute(an.ui_split(ib, "date"))
        notes.append("No dated query rows: the weekly trend by moment needs the bulk export (or Bing's dated "
                     "keyword rows); the UI export's Dates table is shown without moments.")
    splits = {}
    for dim, top, present in (("device", None, data.has_devices), ("country", 15, data.has_countries)):
        if present:
            splits[dim] = ib.execute(an.by_dimension(rows, dim, top))
        else:
            splits[dim] = ib.execute(an.ui_split(ib, dim))
            notes.append(f"No {dim} on the query rows: the {dim} split is the UI export's own table, without moments.")
    seconds["aggregate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    curve = op.fit_curve(ib, rows)
    if len(curve.position):
        queries = op.query_expectations(ib, rows, curve)
        below, theme_frame = op.below_curve(ib, queries, th), op.themes(ib, queries, th)
    else:
        below, theme_frame = pd.DataFrame(), pd.DataFrame()
        notes.append("No positions in the data: no expected-CTR curve, so no below-curve opportunities.")
    styles = ib.execute(op.query_styles(rows))
    trend = ib.execute(op.style_trend(rows)) if data.has_dates else pd.DataFrame()
    slopes = {s: op.trend_slope(trend, f"{s}_share") if not trend.empty else None for s in op.STYLES}
    if data.has_urls:
        gaps = ib.execute(op.content_gaps(rows))
        cannibal = op.cannibalisation(ib, rows, th)
        kinds = set(ib.execute(rows.select("page_kind").distinct())["page_kind"].dropna())
        if "store" not in kinds:
            notes.append("No landing page looks like a store page (/stores/, /store-locator, ...): every "
                         "'go/local' query is a gap. Name yours with --page-kind store=REGEX if it exists.")
    else:
        gaps = pd.DataFrame(columns=["gap", "query", "moment", "impressions", "clicks", "pages", "landing_page",
                                     "page_kind"])
        cannibal = pd.DataFrame(columns=["query", "moment", "impressions", "clicks", "pages", "top_page",
                                         "top_click_share", "split"])
        notes.append("No landing pages on the query rows: content gaps and cannibalisation need the bulk export's "
                     "searchdata_url_impression table (or a UI export filtered to one page).")
    seconds["opportunities"] = time.perf_counter() - t0
    return SeoResult(
        totals=totals, by_moment=by_moment, weekly=weekly, by_device=splits["device"], by_country=splits["country"],
        curve=curve.table(), below_curve=below, themes=theme_frame, styles=styles, style_trend=trend,
        style_slopes=slopes, content_gaps=gaps, gap_summary=op.gap_summary(gaps, by_moment),
        cannibalisation=cannibal, grains=data.grains, notes=notes, classification=stats, seconds=seconds)
