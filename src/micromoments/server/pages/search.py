"""The Search page: the search-research tables (`seo.analyse_search`) of the store, with the report's charts.

Computed once per snapshot (`Snapshot.remember`); a store without search data gets a page saying how
to load some. A failure shows on the page; the rest of the app is unaffected.
"""

from __future__ import annotations

import logging
from typing import Any

from micromoments.errors import MicromomentsError
from micromoments.frames import records
from micromoments.report import seo as figures
from micromoments.server.pages.analytics import Snapshot
from micromoments.server.pages.views import figure_html

log = logging.getLogger(__name__)

NO_SEARCH = ("No search data in the store yet. Load your Search Console or Bing Webmaster Tools exports: "
             "<code>micromoments seo --input Performance-on-Search.zip searchdata_url_impression.parquet --db STORE</code> "
             "(<code>micromoments demo</code> loads a demo export).")


def _records(frame: Any, n: int) -> list[dict[str, Any]]:
    return [] if frame is None or frame.empty else records(frame.head(n))


def search(snap: Snapshot, config: Any | None = None) -> dict[str, Any]:
    """Everything the page shows: KPIs, charts (Plotly divs), tables as records, notes."""
    if "search_rows" not in snap.tables:
        return {"empty": NO_SEARCH}

    def build() -> dict[str, Any]:
        from micromoments.seo import analyse_search, has_search_data

        try:
            with snap.lock:
                if not has_search_data(snap.db.duck):
                    return {"empty": NO_SEARCH}
                r = analyse_search(snap.db.ibis, config)
        except MicromomentsError as exc:
            return {"error": str(exc)}
        except Exception as exc:  # the page shows it; the other pages are unaffected
            log.exception("search page failed")
            snap.panel_errors["search"] = f"{type(exc).__name__}: {exc}"[:300]
            return {"error": f"The search analysis could not be computed ({type(exc).__name__})."}
        if not r.totals or not r.totals.get("impressions"):
            return {"empty": "The search data holds no web search rows."}
        out: dict[str, Any] = {"kpis": figures.kpis(r.totals), "notes": r.notes}
        fig, notes = figures.moment_chart(r.by_moment)
        out["moments"] = {"html": figure_html(fig, "chart-search-moments"), "notes": notes}
        out["moment_rows"] = _records(figures._ordered(r.by_moment), 20)
        if "week" in r.weekly and r.weekly.week.nunique() > 1:
            out["weekly"] = {"html": figure_html(figures.weekly_chart(r.weekly)[0], "chart-search-weekly"), "notes": []}
        if not r.curve.empty:
            fig, notes = figures.curve_chart(r.curve, r.below_curve)
            out["curve"] = {"html": figure_html(fig, "chart-search-curve"), "notes": notes}
        out["below"] = _records(r.below_curve, 15)
        out["themes"] = _records(r.themes[r.themes.below_curve] if not r.themes.empty else r.themes, 8)
        out["styles"] = {"notes": figures.style_notes(r.styles, r.style_slopes)}
        if not r.style_trend.empty and len(r.style_trend) > 1:
            out["styles"]["html"] = figure_html(figures.styles_chart(r.style_trend)[0], "chart-search-styles")
        out["gap_summary"] = _records(r.gap_summary, 3) if not r.content_gaps.empty else []
        out["gaps"] = {gap: _records(r.content_gaps[r.content_gaps.gap == gap], 5)
                       for gap in r.gap_summary.gap} if not r.content_gaps.empty else {}
        out["cannibal"] = _records(r.cannibalisation, 8)
        out["devices"] = _records(r.by_device.groupby("device", as_index=False)[["impressions", "clicks"]].sum()
                                  .assign(ctr=lambda d: d.clicks / d.impressions)
                                  .sort_values("impressions", ascending=False), 5) if not r.by_device.empty else []
        return out

    return snap.remember(("search",), build)
