"""The report's "Search" section, and the search figures the app's Search page shares with it.

Shown when the store holds search data (`micromoments seo --input ... --db STORE`, or the demo):
impressions, clicks and CTR by moment, the weekly trend, the site's expected-CTR curve with the
queries below it, the question / long-tail / voice shares, content gaps and cannibalisation.

>>> # sections = search_sections(store, config)
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from micromoments.report import charts
from micromoments.report.markup import plot_text
from micromoments.report.sections import Section, figure_html, section_provider

GREY = "#9AA0A6"
MOMENT_ORDER = ("know", "go/local", "go/site", "go", "do", "buy", "other", "unclassified", "(anonymized)")
STYLE_NAMES = {"question": "questions", "long_tail": "long-tail (4+ words)", "voice": "voice-style"}


def moment_color(moment: str) -> str:
    if moment == "go/site":  # the lighter orange, so go/local and go/site stay apart
        return "#FFBF79"
    return charts.COLORS.get(str(moment).split("/")[0], GREY)


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    rank = {m: i for i, m in enumerate(MOMENT_ORDER)}
    return frame.assign(_r=frame.moment.map(lambda m: rank.get(m, 50))).sort_values(["_r", "moment"]).drop(columns="_r")


def moment_chart(by_moment: pd.DataFrame) -> tuple[go.Figure, list[str]]:
    """Impressions (bars) and CTR (dots) per moment."""
    f = _ordered(by_moment)
    labels = [plot_text(m) for m in f.moment]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=labels, y=f.impressions, marker_color=[moment_color(m) for m in f.moment], name="impressions",
                hovertemplate="%{x}: %{y:,} impressions<extra></extra>")
    fig.add_scatter(x=labels, y=f.ctr, mode="markers", marker=dict(size=11, color="#333", symbol="diamond"),
                    name="CTR", secondary_y=True, hovertemplate="%{x}: CTR %{y:.1%}<extra></extra>")
    fig.update_layout(**charts.LAYOUT, showlegend=True, legend=dict(orientation="h", y=1.12))
    fig.update_yaxes(title_text="impressions", secondary_y=False)
    fig.update_yaxes(title_text="CTR", tickformat=".0%", secondary_y=True, rangemode="tozero")
    named = f[~f.moment.isin(["(anonymized)", "unclassified"])]
    notes = []
    if not named.empty:
        top = named.sort_values("impressions", ascending=False).iloc[0]
        best = named.sort_values("ctr", ascending=False).iloc[0]
        # Plain text with <b> tags: the report and the pages escape it (`markup.rich`) and keep only those.
        notes.append(f"<b>{top.moment}</b> queries bring the most impressions "
                     f"({top.impression_share:.0%}); <b>{best.moment}</b> queries are clicked most "
                     f"often (CTR {best.ctr:.1%}).")
    anon = f[f.moment == "(anonymized)"]
    if not anon.empty:
        notes.append(f"Anonymized queries (Google withholds rare ones) are {anon.impression_share.iloc[0]:.0%} of "
                     "impressions: counted in every total, never classified.")
    return fig, notes


def weekly_chart(weekly: pd.DataFrame) -> tuple[go.Figure, list[str]]:
    """Each moment's impressions per week (stacked areas)."""
    fig = go.Figure()
    if "week" in weekly:
        for moment, g in _ordered(weekly).groupby("moment", sort=False):
            fig.add_scatter(x=g.week, y=g.impressions, stackgroup="one", name=plot_text(moment), mode="lines",
                            line=dict(color=moment_color(moment), width=1),
                            hovertemplate="week of %{x|%d %b}: %{y:,} impressions<extra>" + plot_text(moment) + "</extra>")
    fig.update_layout(**charts.LAYOUT, yaxis_title="impressions per week", legend=dict(orientation="h", y=1.12))
    return fig, []


def curve_chart(curve: pd.DataFrame, below: pd.DataFrame) -> tuple[go.Figure, list[str]]:
    """The expected CTR by position (line), each bin's observed CTR (dots), and the below-curve queries."""
    fig = go.Figure()
    fig.add_scatter(x=curve.position, y=curve.expected_ctr, mode="lines", name="expected CTR (fitted)",
                    line=dict(color="#333", width=2), hovertemplate="position %{x:.1f}: %{y:.1%}<extra></extra>")
    fig.add_scatter(x=curve.position, y=curve.observed_ctr, mode="markers", name="observed, per position bin",
                    marker=dict(color=GREY, size=[max(6, min(22, (i / curve.impressions.max()) ** 0.5 * 22))
                                                  for i in curve.impressions]),
                    hovertemplate="position %{x:.1f}: %{y:.1%}<extra></extra>")
    if not below.empty:
        b = below.head(30)
        fig.add_scatter(x=b.position, y=b.ctr, mode="markers", name="queries below the curve",
                        marker=dict(color=[moment_color(m) for m in b.moment], size=9, symbol="x"),
                        text=[plot_text(q) for q in b["query"]],
                        hovertemplate="%{text}<br>position %{x:.1f}: CTR %{y:.1%}<extra></extra>")
    fig.update_layout(**charts.LAYOUT, xaxis_title="average position", yaxis_title="CTR", yaxis_tickformat=".0%",
                      legend=dict(orientation="h", y=1.12))
    fig.update_xaxes(type="log", tickvals=[1, 2, 3, 5, 10, 20, 50])
    notes = ["The curve is fitted on this site's own clicks: the CTR cannot rise as the position worsens "
             "(isotonic regression over position bins, weighted by impressions)."]
    if not below.empty:
        notes.append(f"{len(below):,} queries earn clearly fewer clicks than their positions should "
                     f"({below.missed_clicks.sum():,.0f} clicks missed): rewrite their titles and descriptions first.")
    return fig, notes


def styles_chart(trend: pd.DataFrame) -> tuple[go.Figure, list[str]]:
    """The weekly share of impressions from questions, long-tail and voice-style queries."""
    fig = go.Figure()
    for style, color in zip(STYLE_NAMES, ("#4C78A8", "#72B7B2", "#B279A2")):
        col = f"{style}_share"
        if col in trend:
            fig.add_scatter(x=trend.week, y=trend[col], mode="lines+markers", name=STYLE_NAMES[style],
                            line=dict(color=color), hovertemplate="week of %{x|%d %b}: %{y:.1%}<extra></extra>")
    fig.update_layout(**charts.LAYOUT, yaxis_tickformat=".0%", yaxis_title="share of impressions",
                      legend=dict(orientation="h", y=1.12))
    return fig, []


def style_notes(styles: pd.DataFrame, slopes: dict[str, float | None]) -> list[str]:
    """One sentence per style: its share, and how fast it moves."""
    out = []
    for r in styles.itertuples():
        slope = slopes.get(r.style)
        move = "" if slope is None else f", {'+' if slope >= 0 else '−'}{abs(slope) * 100:.2f} points a week"
        out.append(f"{STYLE_NAMES.get(r.style, r.style).capitalize()}: {r.impression_share:.0%} of named queries' "
                   f"impressions ({r.queries:,} queries, CTR {r.ctr:.1%}){move}.")
    return out


def table_html(frame: pd.DataFrame, columns: dict[str, str], formats: dict[str, str] | None = None) -> str:
    """An HTML table of escaped cells; `formats` maps a column to `pct`, `int` or `num`."""
    formats = formats or {}
    head = "".join(f"<th>{html.escape(label)}</th>" for label in columns.values())
    rows = []
    for _, r in frame.iterrows():
        cells = []
        for col in columns:
            v, kind = r[col], formats.get(col, "")
            if kind == "pct":
                text, cls = ("—" if pd.isna(v) else f"{float(v):.1%}"), ' class="num"'
            elif kind == "int":
                text, cls = ("—" if pd.isna(v) else f"{float(v):,.0f}"), ' class="num"'
            elif kind == "num":
                text, cls = ("—" if pd.isna(v) else f"{float(v):,.1f}"), ' class="num"'
            else:
                text, cls = ("" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)), ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


BELOW_COLUMNS = {"query": "query", "moment": "moment", "impressions": "impressions", "position": "position",
                 "ctr": "CTR", "expected_ctr": "expected", "missed_clicks": "clicks missed"}
BELOW_FORMATS = {"impressions": "int", "position": "num", "ctr": "pct", "expected_ctr": "pct", "missed_clicks": "int"}
GAP_COLUMNS = {"what": "content gap", "queries": "queries", "impressions": "impressions",
               "share_of_moment": "of the moment"}
GAP_FORMATS = {"queries": "int", "impressions": "int", "share_of_moment": "pct"}
CANNIBAL_COLUMNS = {"query": "query", "pages": "pages", "impressions": "impressions", "split": "how it splits"}


def kpis(totals: dict[str, Any]) -> list[tuple[str, str]]:
    return [("impressions", f"{totals['impressions']:,.0f}"), ("clicks", f"{totals['clicks']:,.0f}"),
            ("CTR", f"{totals['ctr']:.1%}"), ("average position", f"{totals['position']:.1f}"),
            ("queries", f"{totals['queries']:,.0f}"), ("anonymized", f"{totals['anonymized_share']:.0%}")]


@section_provider(order=5)
def search_sections(store: Any, config: Any | None = None) -> list[Section]:
    """The Search section, when the store holds search data (none otherwise)."""
    from micromoments.seo import analyse_search, store_has_search_data

    if not store_has_search_data(store):
        return []
    # A lake's queries were classified when loaded (`seo.lake`); DuckDB's are (cached) here.
    r = analyse_search(store.ibis, config, classify=getattr(store, "engine", "duckdb") == "duckdb")
    s = Section("search", "Search: the moments in the queries people send you", intro=(
        "What people searched for before they reached the site (Search Console / Bing Webmaster Tools), each "
        "query read for its micro-moment with its landing page as context. <b>CTR</b> is clicks per impression; "
        "<b>position</b> is where the site ranked (1 is the top)."))
    if not r.totals or not r.totals.get("impressions"):
        s.note = "The search data holds no web search rows."
        return [s]
    s.kpis = kpis(r.totals)
    fig, notes = moment_chart(r.by_moment)
    s.figure = "<h3>Impressions and CTR by moment</h3>" + figure_html(fig, "chart-search-moments")
    s.notes += notes
    if "week" in r.weekly and r.weekly.week.nunique() > 1:
        s.figure += "<h3>Week by week</h3>" + figure_html(weekly_chart(r.weekly)[0], "chart-search-weekly")
    if not r.curve.empty:
        fig, notes = curve_chart(r.curve, r.below_curve)
        s.figure += "<h3>Expected CTR by position, and the queries below it</h3>" + figure_html(fig, "chart-search-curve")
        s.notes += notes
    s.notes += style_notes(r.styles, r.style_slopes)
    if not r.style_trend.empty and len(r.style_trend) > 1:
        s.figure += ("<h3>Questions, long-tail and voice-style queries</h3>"
                     + figure_html(styles_chart(r.style_trend)[0], "chart-search-styles"))
    tables = []
    if not r.below_curve.empty:
        tables.append("<h3>Queries below the curve</h3>" + table_html(r.below_curve.head(12), BELOW_COLUMNS,
                                                                      BELOW_FORMATS))
    if not r.content_gaps.empty:
        tables.append("<h3>Content gaps</h3>" + table_html(r.gap_summary, GAP_COLUMNS, GAP_FORMATS))
    if not r.cannibalisation.empty:
        tables.append("<h3>Cannibalisation: one query, several pages</h3>"
                      + table_html(r.cannibalisation.head(8), CANNIBAL_COLUMNS, {"pages": "int", "impressions": "int"}))
    s.table = "".join(tables)
    s.notes += r.notes
    return [s]
