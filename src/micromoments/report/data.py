"""Everything the report shows, computed once from the store into small pandas frames."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from micromoments.journey.conversion import purchases, window_days_of, with_conversions
from micromoments.journey.faq import faq_for
from micromoments.journey.funnels import funnel
from micromoments.journey.heatmap import heatmap_for
from micromoments.journey.maps import journey_map, path_links, top_paths
from micromoments.journey.people import people_counts
from micromoments.journey.periods import complete_until, daily_tail
from micromoments.journey.pipeline import Journey, JourneySettings, build_journey, load_events, temp_table
from micromoments.journey.touchpoints import flag_touchpoints, touchpoints

log = logging.getLogger(__name__)

FUNNEL_CHAINS = (
    ("Products Searched", "Product Viewed", "Product Added", "Checkout Started", "Order Completed"),
    ("page_view", "view_item", "add_to_cart", "begin_checkout", "purchase"),
    ("view", "cart", "purchase"),
    ("$pageview", "Product Viewed", "Product Added", "Order Completed"),
)


@dataclass
class ReportData:
    has_events: bool
    has_moments: bool
    kpis: dict[str, Any] = field(default_factory=dict)
    # Panels whose computation failed: name -> "ErrorType: message". The rest still show.
    errors: dict[str, str] = field(default_factory=dict)
    moment_mix: pd.DataFrame | None = None
    journey_map: pd.DataFrame | None = None
    session_stages: pd.DataFrame | None = None
    links: pd.DataFrame | None = None
    paths: pd.DataFrame | None = None
    funnel_steps: list[str] = field(default_factory=list)
    funnel: pd.DataFrame | None = None
    funnel_by_channel: pd.DataFrame | None = None
    funnel_by_moment: pd.DataFrame | None = None
    heatmap: pd.DataFrame | None = None
    faq: pd.DataFrame | None = None
    touchpoints: pd.DataFrame | None = None
    conversion_window_days: float = 7.0


def pick_funnel(event_counts: pd.Series) -> list[str]:
    """The known event chain best covered by the data (at least two of its steps present)."""
    present = set(event_counts.index)
    best: list[str] = []
    for chain in FUNNEL_CHAINS:
        steps = [s for s in chain if s in present]
        if len(steps) >= 2 and len(steps) > len(best):
            best = steps
    if not best and len(event_counts) >= 2:
        best = list(event_counts.index[:3])
    return best


def collect(store: Any, config: Any | None = None, funnel_window: dt.timedelta | None = None) -> ReportData:
    """Everything the report shows, from `store` (a `Store` or anything with `.ibis`, `.table`,
    `.has_table` and `.count`)."""
    return collect_with_journey(store, config, funnel_window)[0]


def collect_with_journey(store: Any, config: Any | None = None,
                         funnel_window: dt.timedelta | None = None) -> tuple[ReportData, Journey | None]:
    """`collect`, plus the journey tables it was computed from (temp tables of `store.ibis`), so a
    caller such as the web app can run further views (funnels, example journeys) on them.

    >>> # data, journey = collect_with_journey(Store("micromoments.duckdb"))
    """
    # One configured window for the CLI, the report and the app ([journey] conversion_window_days).
    funnel_window = funnel_window or dt.timedelta(days=window_days_of(config))
    con = store.ibis
    if not store.has_table("events") or store.count("events") == 0:
        return ReportData(has_events=False, has_moments=False), None
    events, has_moments = load_events(store)
    settings = JourneySettings.from_config(config)
    j = build_journey(events, settings, con=con)
    data = ReportData(has_events=True, has_moments=has_moments, conversion_window_days=window_days_of(config))
    if has_moments:  # both conversion definitions on every episode, computed once (journey.conversion)
        flagged = with_conversions(j.episodes, purchases(j.sessionized, settings.vocab), data.conversion_window_days)
        j = Journey(j.sessionized, temp_table(con, "_mm_episodes_conv", flagged), j.sessions)

    sess = con.execute(j.sessions)
    s = j.sessionized
    k = con.execute(s.aggregate(events=s.count(), people=s.person_id.nunique(), first=s.ts.min(), last=s.ts.max()))
    people, anonymous = people_counts(store.table("events").filter(lambda t: t.person_id.notnull()), con)
    data.kpis = dict(
        events=int(k.events[0]), people=people, anonymous=anonymous, ids=int(k.people[0]), sessions=len(sess),
        conversion_rate=float(sess.converted.mean()) if len(sess) else 0.0,
        buyers=int(sess[sess.converted].person_id.nunique()), revenue=float(sess.revenue.sum()),
        first=pd.Timestamp(k["first"][0]), last=pd.Timestamp(k["last"][0]),
        complete_until=complete_until(daily_tail(store)),
    )
    data.session_stages = sess.groupby("stage").agg(sessions=("session_id", "size"),
                                                    conversion_rate=("converted", "mean")).reset_index()

    ep = j.episodes

    def moments() -> None:
        n_ep = con.execute(ep.count())
        data.kpis["episodes"] = int(n_ep)
        if n_ep:
            data.moment_mix = con.execute(ep.group_by("moment").aggregate(
                episodes=ep.count(), people=ep.person_id.nunique(),
                conversion_rate=ep.converted.cast("float64").mean(),
                same_session_rate=ep.converted_session.cast("float64").mean(),
                window_rate=ep.converted_window.cast("float64").mean(),
                abandoned=(ep.outcome == "abandoned").cast("float64").mean(),
                median_duration_s=ep.duration_s.cast("float64").median(),
            )).sort_values("episodes", ascending=False)
            data.journey_map = con.execute(journey_map(ep))
            data.links = con.execute(path_links(ep, by="moment", max_steps=4))
            data.paths = con.execute(top_paths(ep, by="moment", max_steps=4).limit(10))

    def stage_paths() -> None:
        if data.links is None or data.links.empty:
            staged_sessions = j.sessions.mutate(episode_no=0)
            data.links = con.execute(path_links(staged_sessions, by="stage", max_steps=4))
            data.paths = con.execute(top_paths(staged_sessions, by="stage", max_steps=4).limit(10))

    def funnels() -> None:
        counts = con.execute(s.filter(s.event.notnull()).group_by("event").aggregate(n=lambda t: t.count()))
        data.funnel_steps = pick_funnel(counts.set_index("event").n.sort_values(ascending=False))
        if data.funnel_steps:
            data.funnel = con.execute(funnel(s, data.funnel_steps, window=funnel_window))
            data.funnel_by_channel = con.execute(funnel(s, data.funnel_steps, window=funnel_window,
                                                        breakdown="channel"))
            if has_moments:
                data.funnel_by_moment = con.execute(funnel(s, data.funnel_steps, window=funnel_window,
                                                           breakdown="moment"))

    def heatmap() -> None:
        data.heatmap = con.execute(heatmap_for(s, moments_only=has_moments))

    def faq() -> None:
        data.faq = faq_for(s, con, settings.vocab)

    def pages() -> None:
        tp = con.execute(touchpoints(s, "page", settings.vocab))
        data.touchpoints = flag_touchpoints(tp) if not tp.empty else tp

    for name, compute in (("moments", moments if has_moments else None), ("paths", stage_paths),
                          ("funnel", funnels), ("heatmap", heatmap), ("faq", faq), ("touchpoints", pages)):
        if compute is not None:
            run_panel(data.errors, name, compute)
    return data, j


def run_panel(errors: dict[str, str], name: str, compute: Callable[[], Any]) -> Any:
    """`compute()`, or None with the error under `errors[name]`: one panel that fails leaves the rest.

    >>> errors = {}; run_panel(errors, "heatmap", lambda: 1 / 0), errors
    (None, {'heatmap': 'ZeroDivisionError: division by zero'})
    """
    try:
        return compute()
    except Exception as exc:  # one bad row or a bug in one analytic must not take the page or report down
        errors[name] = f"{type(exc).__name__}: {exc}"[:300]
        log.exception("the %s panel failed", name)
        return None
