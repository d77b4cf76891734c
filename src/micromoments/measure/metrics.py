"""Metrics as Ibis expressions over the store: they run on DuckDB and on PySpark unchanged.

Two sources, one shape:

* **activation logs** (`decisions` → `exposures` → `outcomes`): exposures, clicks, CTR, conversions,
  conversion rate, revenue and revenue per exposure by moment, stage, channel, content, playbook,
  persona;
* **journeys** (when nothing was activated yet): the moment episodes found in the events are the
  "exposures" — how many moments, how many converted, the revenue that followed, and the time from
  the moment to the purchase.

Every rate carries a Wilson interval, computed in the expression itself. `engagement` gives events
and dwell per session and the return rate.

>>> # t = activation_metrics(store.table("decisions"), store.table("exposures"), store.table("outcomes"), ["moment"])
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import ibis.expr.types as ir

from micromoments.errors import InputError

# user-facing dimension -> column in decisions (activation) / episodes (journeys)
ACTIVATION_DIMS = {"moment": "moment", "stage": "stage", "channel": "channel", "content": "content_id",
                   "playbook": "playbook", "persona": "persona", "experiment": "experiment", "variant": "variant"}
EPISODE_DIMS = {"moment": "moment", "stage": "stage", "channel": "channel", "persona": "persona",
                "day": "day"}
SESSION_DIMS = {"stage": "stage", "channel": "channel", "moment": "moment", "persona": "persona", "day": "day"}
Z95 = 1.959963984540054


def wilson(x: ir.NumericValue, n: ir.NumericValue, z: float = Z95) -> tuple[ir.FloatingValue, ir.FloatingValue]:
    """Wilson score interval (Wilson 1927) as two Ibis expressions (low, high); (0, 1) when n = 0."""
    n = n.cast("float64")
    p = x.cast("float64") / ibis.ifelse(n > 0, n, 1.0)
    z2 = z * z
    denom = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z * ((p * (1 - p) / n + z2 / (4 * n * n)).sqrt()) / denom
    lo = ibis.ifelse((n > 0) & (x > 0), ibis.greatest(center - half, 0.0), 0.0)  # exact 0 at x = 0
    hi = ibis.ifelse(n > 0, ibis.ifelse(x.cast("float64") >= n, 1.0, ibis.least(center + half, 1.0)), 1.0)
    return lo, hi


def _dims(by: list[str], allowed: dict[str, str], where: str) -> list[str]:
    bad = [b for b in by if b not in allowed]
    if bad:
        raise InputError(f"cannot break down by {', '.join(bad)} here", where=where,
                         hint=f"choose from {', '.join(allowed)}")
    return list(by)


def _window(t: ir.Table, col: str, start: dt.datetime | None, end: dt.datetime | None) -> ir.Table:
    if start is not None:
        t = t.filter(t[col] >= start)
    if end is not None:
        t = t.filter(t[col] < end)
    return t


def _rate(t: ir.Table, name: str, x: str, n: str) -> ir.Table:
    lo, hi = wilson(t[x], t[n])
    return t.mutate(**{name: ibis.ifelse(t[n] > 0, t[x].cast("float64") / t[n], None),
                       f"{name}_low": lo, f"{name}_high": hi})


def activation_metrics(decisions: ir.Table, exposures: ir.Table, outcomes: ir.Table, by: list[str],
                       start: dt.datetime | None = None, end: dt.datetime | None = None) -> ir.Table:
    """Exposures, clicks, CTR, conversions, conversion rate, revenue, revenue per exposure per group.

    A decision's dimensions (moment, stage, channel, content, playbook, persona, experiment, variant)
    label its exposures and outcomes; the period filters on the decision time.
    """
    by = _dims(by, ACTIVATION_DIMS, "--by")
    d = _window(decisions, "ts", start, end)
    d = d.select("decision_id", **{k: d[ACTIVATION_DIMS[k]].cast("string").fill_null("(none)") for k in by})
    e = exposures.group_by("decision_id").aggregate(exposures=exposures.count())
    o = outcomes.filter(outcomes.decision_id.notnull())
    o = o.group_by("decision_id").aggregate(
        clicks=(o.kind == "click").cast("int64").sum(),
        conversions=(o.kind == "conversion").cast("int64").sum(),
        revenue=o.revenue.fill_null(0.0).sum(where=o.kind == "conversion"),
    )
    j = d.left_join(e, "decision_id").drop("decision_id_right")
    j = j.left_join(o, "decision_id").drop("decision_id_right")
    g = j.group_by(by) if by else j
    t = g.aggregate(
        decisions=j.count(),
        exposures=j.exposures.fill_null(0).sum().cast("int64"),
        clicks=j.clicks.fill_null(0).sum().cast("int64"),
        conversions=j.conversions.fill_null(0).sum().cast("int64"),
        revenue=j.revenue.fill_null(0.0).sum(),
    )
    t = _rate(_rate(t, "ctr", "clicks", "exposures"), "conversion_rate", "conversions", "exposures")
    t = t.mutate(revenue=t.revenue.fill_null(0.0))
    return t.mutate(revenue_per_exposure=ibis.ifelse(t.exposures > 0, t.revenue / t.exposures, None))


def _with_persona(t: ir.Table, personas: ir.Table | None) -> ir.Table:
    if personas is None:
        return t.mutate(persona=ibis.literal("(none)"))
    p = personas.select(_pp="person_id", persona=personas.persona)
    return t.left_join(p, t.person_id == p._pp).drop("_pp").mutate(
        persona=lambda x: x.persona.fill_null("(none)"))


def moment_metrics(episodes: ir.Table, sessionized: ir.Table, by: list[str], vocab: Any = None,
                   personas: ir.Table | None = None, start: dt.datetime | None = None,
                   end: dt.datetime | None = None) -> ir.Table:
    """The journey-level fallback: per group, moments (episodes), conversions, conversion rate (Wilson),
    revenue, revenue per moment and the mean / median minutes from the moment to the purchase.

    With `journey.conversion`'s flags on the episodes, a moment converts when a purchase followed in
    the same visit (`converted_session`), and `window_conversions` / `window_rate` count the
    purchases within the conversion window; without them, when one followed before the next moment."""
    from micromoments.journey.vocab import EventVocabulary

    by = _dims(by, EPISODE_DIMS, "--by")
    vocab = vocab or EventVocabulary()
    ep = _window(episodes, "start", start, end)
    if "persona" in by:
        ep = _with_persona(ep, personas)
    ep = ep.mutate(day=ep.start.date().cast("string"))
    conv = sessionized.filter(vocab.is_conversion(sessionized)).select(_sid="session_id", _secs="secs")
    j = ep.left_join(conv, (ep.session_id == conv._sid) & (conv._secs >= ep.secs_start))
    first = j.group_by("episode_id").aggregate(_conv_secs=j._secs.min())
    ep = ep.left_join(first, "episode_id").drop("episode_id_right")
    flagged = "converted_session" in ep.columns
    ep = ep.mutate(_ok=ep.converted_session if flagged else ep.converted)
    ep = ep.mutate(_minutes=ibis.ifelse(ep._ok & ep._conv_secs.notnull(),
                                        (ep._conv_secs - ep.secs_start).cast("float64") / 60.0, None))
    ep = ep.mutate(**{k: ep[EPISODE_DIMS[k]].cast("string").fill_null("(none)") for k in by})
    g = ep.group_by(by) if by else ep
    t = g.aggregate(
        moments=ep.count(),
        conversions=ep._ok.cast("int64").sum(),
        revenue=ep.revenue.fill_null(0.0).sum(where=ep._ok),
        minutes_to_conversion=ep._minutes.mean(),
        median_minutes_to_conversion=ep._minutes.median(),  # exact: engines' approximations differ
        **({"window_conversions": ep.converted_window.cast("int64").sum()} if flagged else {}),
    )
    t = _rate(t, "conversion_rate", "conversions", "moments")
    if flagged:
        t = _rate(t, "window_rate", "window_conversions", "moments")
    t = t.mutate(revenue=t.revenue.fill_null(0.0))
    return t.mutate(revenue_per_moment=t.revenue / t.moments)


def engagement(sessions: ir.Table, by: list[str], personas: ir.Table | None = None,
               start: dt.datetime | None = None, end: dt.datetime | None = None) -> ir.Table:
    """Per group: sessions, people, events and dwell (seconds) per session, and the return rate —
    the share of people whose session in this group was followed by another session of theirs.

    Takes `journey.sessions.sessions(...)` output (or any table with person_id, session_no, start,
    events, duration_s) plus any of the `by` columns.
    """
    by = _dims(by, SESSION_DIMS, "--by")
    s = _window(sessions, "start", start, end)
    if "persona" in by:
        s = _with_persona(s, personas)
    s = s.mutate(day=s.start.date().cast("string"))
    last = sessions.group_by("person_id").aggregate(_last=sessions.session_no.max()).rename(_lp="person_id")
    s = s.left_join(last, s.person_id == last._lp).drop("_lp")
    s = s.mutate(_returned=(s.session_no < s._last).cast("int64"),
                 **{k: s[SESSION_DIMS[k]].cast("string").fill_null("(none)") for k in by})
    g = s.group_by(by) if by else s
    t = g.aggregate(sessions=s.count(), people=s.person_id.nunique(),
                    events_per_session=s.events.mean(), dwell_seconds_per_session=s.duration_s.mean(),
                    returned=s._returned.sum())
    return _rate(t, "return_rate", "returned", "sessions")


def metrics_frame(store: Any, by: list[str], *, config: Any = None, start: dt.datetime | None = None,
                  end: dt.datetime | None = None, journey: Any = None) -> tuple[Any, str]:
    """`(pandas frame, source)` for the CLI and the report: activation metrics when the store holds
    decisions, else moment metrics from the journeys (`source` says which). Pass an already built
    `journey` (journey.pipeline.build_journey) to skip rebuilding it."""
    if store.has_table("decisions") and store.count("decisions") > 0:
        bad = [b for b in by if b not in ACTIVATION_DIMS]
        if not bad:
            expr = activation_metrics(store.table("decisions"), store.table("exposures"), store.table("outcomes"),
                                      by, start, end)
            return store.ibis.execute(expr.order_by(by) if by else expr), "activation"
    from micromoments.journey.pipeline import JourneySettings, build_journey, load_events

    settings = JourneySettings.from_config(config)
    j = journey if journey is not None else build_journey(load_events(store)[0], settings, con=store.ibis)
    personas = store.table("personas") if "persona" in by and store.has_table("personas") else None
    expr = moment_metrics(j.episodes, j.sessionized, by, settings.vocab, personas, start, end)
    return store.ibis.execute(expr.order_by(by) if by else expr), "journeys"
