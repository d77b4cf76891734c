"""`build_report(store, output_path)`: one self-contained HTML file (plotly.js inlined, no CDN)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader

from micromoments.frames import blank_missing
from micromoments.journey.faq import faq_rows
from micromoments.report import charts
from micromoments.report import measure, personas, predict, seo  # noqa: F401  (they register their sections)
from micromoments.report.data import ReportData, collect, run_panel
from micromoments.report.markup import built_html, rich
from micromoments.report.sections import Section, figure_html, providers

NO_MOMENTS = ("Micro-moments have not been classified yet, so this section is empty. Run "
              "<code>micromoments classify</code> (or <code>micromoments demo</code>) and build the report again.")


_figure_html = figure_html  # the short private name the core sections below use


def _table(frame: pd.DataFrame, columns: dict[str, str], flag: str | None = None) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for label in columns.values())
    rows = []
    for _, r in frame.iterrows():
        cells = []
        for col in columns:
            v = r[col]
            if isinstance(v, np.generic):  # numpy scalars from the frame: format them as Python numbers
                v = v.item()
            cls = ' class="num"' if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
            if isinstance(v, float) and pd.isna(v):
                v = "—"
            elif isinstance(v, float):
                v = charts.pct(v) if col.endswith("rate") or col == "share" else f"{v:,.0f}"
            elif isinstance(v, int) and not isinstance(v, bool):
                v = f"{v:,}"
            elif isinstance(v, bool):
                v = "content gap" if v else ""
                cls = ' class="flag-gap"' if v else ""
            elif col == flag and v:
                cls = f' class="flag-{html.escape(str(v))}"'
            cells.append(f"<td{cls}>{html.escape(str(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def people_line(k: dict[str, Any]) -> str:
    """What "people" counts, in plain words (the headline counts stitched people only)."""
    if not k.get("anonymous"):
        return "<b>People</b> counts every visitor id (the data has no sign-ins to link devices)."
    return (f"<b>People</b> are customers who signed in at least once, with all their devices linked "
            f"({k['people']:,}); another {k['anonymous']:,} anonymous ids never signed in, so they are not "
            "linked to anyone yet and are not counted as people.")


def _sections(d: ReportData) -> list[Section]:
    if not d.has_events:
        return [Section("overview", "Overview", note="The store holds no events yet. Run <code>micromoments ingest FILE</code> first.")]
    k = d.kpis
    overview = Section("overview", "Overview", intro=(
        f"Activity from {k['first']:%d %b %Y} to {k['last']:%d %b %Y}. A <b>session</b> is a visit (a pause of 30 minutes "
        "ends it); a <b>micro-moment</b> is a short burst of intent: wanting to know, go, do or buy something. "
        + people_line(k) + " <b>Sessions that buy</b>: the share of visits with a purchase in them."))
    overview.kpis = [("people", f"{k['people']:,}")]
    if k.get("anonymous"):
        overview.kpis.append(("anonymous ids not linked", f"{k['anonymous']:,}"))
    overview.kpis += [("sessions", f"{k['sessions']:,}"), ("events", f"{k['events']:,}"),
                     ("sessions that buy", charts.pct(k["conversion_rate"])), ("buyers", f"{k['buyers']:,}"),
                     ("revenue", f"{k['revenue']:,.0f}")]
    if "episodes" in k:
        overview.kpis.append(("micro-moments", f"{k['episodes']:,}"))
    out = [overview]

    mix = Section("moments", "Moment mix", intro="Which kinds of intent people show, and how often a purchase follows each.")
    if d.moment_mix is not None and not d.moment_mix.empty:
        fig, mix.notes = charts.moment_mix(d.moment_mix, d.conversion_window_days)
        mix.figure = _figure_html(fig, "chart-moments")
    else:
        mix.note = NO_MOMENTS
    out.append(mix)

    jm = Section("journey", "Journey map", intro=(
        "Each cell is a kind of micro-moment at a stage of the journey: <b>awareness</b> (first look), "
        "<b>consideration</b> (comparing), <b>decision</b> (cart, checkout, purchase) and <b>post-purchase</b> "
        "(how-to and support after buying). Colour shows how often a purchase follows within the conversion window."))
    if d.journey_map is not None and not d.journey_map.empty:
        fig, jm.notes = charts.journey_matrix(d.journey_map, d.conversion_window_days)
        jm.figure = _figure_html(fig, "chart-journey")
    elif d.session_stages is not None and not d.session_stages.empty:
        jm.note = NO_MOMENTS.replace("this section is empty", "this map shows sessions by stage only")
        fig, jm.notes = charts.stage_bars(d.session_stages)
        jm.figure = _figure_html(fig, "chart-journey")
    out.append(jm)

    flows = Section("paths", "Paths people take", intro=(
        "How people move from one micro-moment to the next (repeats merged), and whether they end up buying. "
        "Read left to right; the thicker the band, the more people."))
    if d.links is not None and not d.links.empty:
        fig, flows.notes = charts.sankey(d.links, d.paths)
        flows.figure = _figure_html(fig, "chart-sankey")
        if d.paths is not None and not d.paths.empty:
            flows.table = _table(d.paths, {"path": "path", "people": "people", "conversion_rate": "bought"})
    else:
        flows.note = "Not enough data to draw paths yet."
    out.append(flows)

    fun = Section("funnels", "Funnel", intro=(
        "People who did each step in order within 7 days of the first one (each person counted once)."))
    if d.funnel is not None and not d.funnel.empty:
        fig, fun.notes = charts.funnel_chart(d.funnel)
        fun.figure = _figure_html(fig, "chart-funnel")
        for name, frame, label in (("channel", d.funnel_by_channel, "channel"), ("moment", d.funnel_by_moment, "moment type")):
            if frame is not None and frame.breakdown.nunique() > 1:
                bfig, bnotes = charts.breakdown_chart(frame, label)
                fun.figure += f"<h3>By {label} of the first step</h3>" + _figure_html(bfig, f"chart-funnel-{name}")
                fun.notes += bnotes
    else:
        fun.note = "No recognisable funnel events (such as Product Viewed → Product Added → Order Completed) were found."
    out.append(fun)

    hm = Section("peaks", "Peak times", intro=(
        "When each kind of micro-moment happens, by weekday and hour in the person's own time zone "
        "(UTC when unknown). Use it to time campaigns and staffing."))
    if d.heatmap is not None and not d.heatmap.empty:
        fig, hm.notes = charts.heatmap_chart(d.heatmap)
        hm.figure = _figure_html(fig, "chart-heatmap")
        if not d.has_moments:
            hm.note = "Moments are not classified yet: this shows all activity."
    out.append(hm)

    faq = Section("faq", "Questions people ask", intro=(
        "Searches phrased as questions or long, specific searches, grouped into themes named after a typical "
        "question; searches that fit no theme are listed last as <i>other questions</i>. "
        "<span class='flag-gap'>Red</span> marks a <b>content gap</b>: asked often, and the visits that ask it buy "
        "less than half as often as other search visits (a binomial test says it is not chance)."))
    if d.faq is not None and not d.faq.empty:
        fig, faq.notes = charts.faq_chart(d.faq)
        faq.figure = _figure_html(fig, "chart-faq")
        faq.table = _table(faq_rows(d.faq), {"label": "theme", "example": "most asked", "searches": "searches",
                                             "conversion_rate": "visits that bought", "content_gap": "",
                                             "gap_reason": "why"})
    else:
        faq.note = "No question-like or long-tail searches in the data (the events carry no search queries)."
    out.append(faq)

    tp = Section("touchpoints", "Pages that peak or falter", intro=(
        "For the most visited pages: how often a session that sees the page goes on to buy, and how often people leave "
        "from it. <span class='flag-peak'>Green</span> and <span class='flag-gap'>red</span> bars differ from the "
        "other pages by more than chance (a two-proportion z-test, which asks whether the gap could be luck; with so "
        "many pages tested, at most 5% of the flags may be false alarms)."))
    if d.touchpoints is not None and not d.touchpoints.empty:
        fig, tp.notes = charts.touchpoint_chart(d.touchpoints)
        tp.figure = _figure_html(fig, "chart-touchpoints")
        flagged = d.touchpoints[d.touchpoints.flag != ""].head(10)
        if not flagged.empty:
            tp.table = _table(flagged, {"touchpoint": "page", "flag": "verdict", "why": "why", "sessions": "sessions"},
                              flag="flag")
    else:
        tp.note = "The events carry no page paths."
    out.append(tp)
    for sec in out:  # a panel whose analytic failed says so; the other sections are unaffected
        err = d.errors.get(PANEL_OF_SECTION.get(sec.id, ""))
        if err:
            sec.note = f"This panel could not be computed ({err}). The rest of the report is unaffected."
    return out


# Which `ReportData.errors` panel each section shows.
PANEL_OF_SECTION = {"moments": "moments", "journey": "moments", "paths": "paths", "funnels": "funnel",
                    "peaks": "heatmap", "faq": "faq", "touchpoints": "touchpoints"}


# The `ReportData` fields each panel's sections draw from.
PANEL_FIELDS = {"moments": ("moment_mix", "journey_map"), "paths": ("links", "paths"),
                "funnel": ("funnel", "funnel_by_channel", "funnel_by_moment"), "heatmap": ("heatmap",),
                "faq": ("faq",), "touchpoints": ("touchpoints",)}


def _core_sections(data: ReportData, errors: dict[str, str]) -> list[Section]:
    """`_sections`; when drawing one panel fails, the sections again without it (its error shown)."""
    first: dict[str, str] = {}
    out = run_panel(first, "core", lambda: _sections(data))
    if out is not None:
        return out
    for panel, names in PANEL_FIELDS.items():  # which panel's chart or notes failed?
        trial = dataclasses.replace(data, errors={**data.errors, panel: first["core"]},
                                    **{n: None for n in names})
        out = run_panel({}, panel, lambda: _sections(trial))
        if out is not None:
            return out
    errors.update(first)
    return []


def _all_sections(data: ReportData) -> list[Section]:
    """The core sections and those of the hooks; a part that fails becomes a section saying so."""
    errors: dict[str, str] = {}
    out = _core_sections(data, errors)
    out += list(getattr(data, "extra_sections", []))
    out += [Section(f"failed-{name}", f"Not shown: {name}",
                    note=f"This part could not be computed ({err}). The rest of the report is unaffected.")
            for name, err in {**errors, **getattr(data, "hook_errors", {})}.items()]
    return out


def render(data: ReportData, title: str = "Micro-moments report") -> str:
    import plotly
    from plotly.offline import get_plotlyjs

    import micromoments

    env = Environment(loader=FileSystemLoader(str(Path(__file__).parent)), autoescape=True,
                      finalize=blank_missing)  # never "None"/"nan" in the report
    env.filters["rich"] = rich
    template = env.get_template("report.html.j2")
    sections = [dataclasses.replace(s, figure=built_html(s.figure), table=built_html(s.table))
                for s in _all_sections(data)]
    subtitle = "Where people want to know, go, do and buy — and what happens next."
    return template.render(
        title=title, subtitle=subtitle, sections=sections,
        plotly_js=built_html(get_plotlyjs()),  # the installed plotly.js itself, not data
        version=f"{micromoments.__version__} (plotly {plotly.__version__})",
        generated=dt.datetime.now().strftime("%d %b %Y %H:%M"),
    )


def build_report(store: Any, output_path: str | Path, config: Any | None = None) -> Path:
    """Write the HTML report for `store` to `output_path` and return the path.

    >>> # from micromoments.store import Store; build_report(Store("micromoments.duckdb"), "report.html")
    """
    output = Path(output_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    data = collect(store, config)
    # personas, measure and predict (and any plugin) add theirs through `report.sections`;
    # a provider that fails becomes a section saying so, the others still show
    errors: dict[str, str] = {}
    data.extra_sections = [sec for provide in providers()  # type: ignore[attr-defined]
                           for sec in run_panel(errors, provide.__name__, lambda: provide(store, config)) or []]
    data.hook_errors = errors  # type: ignore[attr-defined]
    output.write_text(render(data), encoding="utf-8")
    return output
