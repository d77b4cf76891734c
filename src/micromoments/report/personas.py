"""Report sections for personas: one card per persona with its journey map, and the funnel split
by persona. Built from the `personas` / `persona_descriptions` tables (`micromoments personas build`).

>>> # sections = persona_sections(store, config)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from micromoments.journey.people import anonymous_note
from micromoments.report import charts
from micromoments.report.sections import Section, figure_html, section_provider


@section_provider(order=10)
def persona_sections(store: Any, config: Any | None = None, funnel_window: dt.timedelta | None = None) -> list:
    """`Section`s for the report; [] when no personas were built."""
    from micromoments.journey.conversion import window_days_of

    funnel_window = funnel_window or dt.timedelta(days=window_days_of(config))  # the configured window
    from micromoments.journey.conversion import purchases, window_days_of, with_conversions
    from micromoments.journey.funnels import funnel
    from micromoments.journey.maps import journey_map
    from micromoments.journey.pipeline import JourneySettings, build_journey, load_events
    from micromoments.report.data import pick_funnel

    if not store.has_table("persona_descriptions") or store.count("persona_descriptions") == 0:
        return []
    con = store.ibis
    desc = con.execute(store.table("persona_descriptions").order_by("persona_id"))
    events, has_moments = load_events(store)
    settings = JourneySettings.from_config(config)
    j = build_journey(events, settings, con=con)
    days = window_days_of(config)
    if has_moments:  # both conversion definitions, as in the rest of the report
        j.episodes = with_conversions(j.episodes, purchases(j.sessionized, settings.vocab), days)
    labels = store.table("personas").select(_lp="person_id", persona_id="persona_id", persona="persona")
    ep = j.episodes.join(labels, j.episodes.person_id == labels._lp).drop("_lp")

    overview = Section("personas", "Personas", intro=(
        "People grouped by how they behave: their mix of micro-moments, channels, devices, active hours and days, "
        "searches, spending and where they live. Names come from what sets each group apart."))
    # People as every headline counts them (journey.people); older tables have no `anonymous`.
    anonymous = desc.anonymous.fillna(0).astype(int) if "anonymous" in desc else pd.Series(0, index=desc.index)
    overview.kpis = [(r.persona, f"{r.people:,} people · {charts.pct(r.share)}") for r in desc.itertuples()]
    if anonymous.sum():
        overview.notes = [anonymous_note(int(anonymous.sum()))]
    out = [overview]
    s = j.sessionized
    counts = con.execute(s.filter(s.event.notnull()).group_by("event").aggregate(n=lambda t: t.count()))
    steps = pick_funnel(counts.set_index("event").n.sort_values(ascending=False)) if len(counts) else []
    if steps:
        st = s.join(labels, s.person_id == labels._lp).drop("_lp")
        fun = con.execute(funnel(st, steps, window=funnel_window, breakdown="persona"))
        if fun.breakdown.nunique() > 1:
            fig, notes = charts.breakdown_chart(fun, "persona", top=12)
            overview.figure = "<h3>Funnel by persona</h3>" + figure_html(fig, "chart-funnel-persona")
            overview.notes += notes

    for r in desc.itertuples():
        sec = Section(f"persona-{int(r.persona_id)}", r.persona, intro=str(r.description))
        sec.kpis = [("people", f"{r.people:,}"), *([("anonymous ids not linked", f"{int(anonymous[r.Index]):,}")]
                                                    if anonymous[r.Index] else []), ("share", charts.pct(r.share)),
                    ("mean lifetime value", f"{r.mean_clv:,.0f}"), ("mean revenue so far", f"{r.mean_revenue:,.0f}")]
        if r.typical_path:
            sec.notes = [f"Typical path: <b>{r.typical_path}</b>"]
        if has_moments:
            jm = con.execute(journey_map(ep.filter(ep.persona_id == int(r.persona_id))))
            if not jm.empty:
                fig, notes = charts.journey_matrix(jm, days)
                sec.figure = figure_html(fig, f"chart-journey-persona-{int(r.persona_id)}")
                sec.notes += [*notes[:2], notes[-1]]
        out.append(sec)
    return out
