"""Funnels with PostHog semantics: ordered, strict and unordered; a conversion window counted
from the first step; steps given as event names or moment types; breakdowns; time to convert.

* **ordered** (PostHog "sequential"): the steps happen in order, other events may come between.
* **strict**: the steps happen in order with *no other event* of that person between them.
* **unordered** ("any order"): step k counts people who did any k of the steps.

Every step must fall within `window` of the first step of the same attempt. Each person counts
once: their best attempt (most steps, then the earliest start). A breakdown value comes from the
first step of that attempt (PostHog's first-touch attribution).

>>> # funnel(events, ["Product Viewed", "Product Added", "Order Completed"], window=dt.timedelta(days=1))
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import ibis
import ibis.expr.types as ir

from micromoments.errors import InputError
from micromoments.journey.clock import whole_seconds

FunnelMode = Literal["ordered", "strict", "unordered"]
MODES = ("ordered", "strict", "unordered")
NO_VALUE = "(none)"


def _match(t: ir.Table, step: str, by: str) -> ir.BooleanValue:
    """`moment:buy` matches the moment type, `event:x` the event name; otherwise `by` decides."""
    kind, _, name = step.partition(":") if step.split(":", 1)[0] in ("moment", "event") else (by, "", step)
    column = t.moment if kind == "moment" else t.event
    return (column == name).fill_null(False)


def _prepare(events: ir.Table, breakdown: str | None) -> ir.Table:
    t = events.filter(events.person_id.notnull() & events.ts.notnull())
    w = ibis.window(group_by="person_id", order_by=["ts", "message_id"])
    bkd = t[breakdown].cast("string").fill_null(NO_VALUE) if breakdown else ibis.literal("all")
    return t.mutate(seq=ibis.row_number().over(w), secs=whole_seconds(t.ts), bkd=bkd)


def _sequential_levels(t: ir.Table, steps: list[str], by: str, window_s: int, strict: bool) -> ir.Table:
    """(person_id, a_seq, bkd, level, secs): every attempt and the time it reached each level."""
    first = t.filter(_match(t, steps[0], by))
    cur = first.select("person_id", "bkd", a_seq=first.seq, a_secs=first.secs,
                       p_seq=first.seq, p_secs=first.secs)
    levels = [cur.select("person_id", "a_seq", "bkd", level=ibis.literal(1), secs=cur.p_secs)]
    for k, step in enumerate(steps[1:], start=2):
        ev = t.filter(_match(t, step, by))
        ev = ev.select(e_person=ev.person_id, e_seq=ev.seq, e_secs=ev.secs)
        order = (ev.e_seq == cur.p_seq + 1) if strict else (ev.e_seq > cur.p_seq)
        joined = cur.join(ev, (cur.person_id == ev.e_person) & order & (ev.e_secs <= cur.a_secs + window_s))
        # Greedy: the earliest next step keeps the most room for the steps after it.
        cur = joined.group_by(["person_id", "bkd", "a_seq", "a_secs"]).aggregate(
            p_seq=joined.e_seq.min(), p_secs=joined.e_secs.min()
        )
        levels.append(cur.select("person_id", "a_seq", "bkd", level=ibis.literal(k), secs=cur.p_secs))
    return ibis.union(*levels)


def _unordered_levels(t: ir.Table, steps: list[str], by: str, window_s: int) -> ir.Table:
    matches = []
    for k, step in enumerate(steps, start=1):
        m = t.filter(_match(t, step, by))
        matches.append(m.select("person_id", "seq", "secs", "bkd", step_k=ibis.literal(k)))
    hits = ibis.union(*matches)
    anchors = hits.select("person_id", "bkd", a_seq=hits.seq, a_secs=hits.secs).distinct()
    ev = hits.select(e_person=hits.person_id, e_seq=hits.seq, e_secs=hits.secs, e_step=hits.step_k)
    joined = anchors.join(ev, (anchors.person_id == ev.e_person) & (ev.e_seq >= anchors.a_seq)
                          & (ev.e_secs <= anchors.a_secs + window_s))
    per_step = joined.group_by(["person_id", "bkd", "a_seq", "e_step"]).aggregate(
        secs=joined.e_secs.min(), f_seq=joined.e_seq.min())
    w = ibis.window(group_by=["person_id", "a_seq"], order_by=["secs", "f_seq", "e_step"])
    ranked = per_step.mutate(level=(ibis.row_number().over(w) + 1).cast("int32"))
    return ranked.select("person_id", "a_seq", "bkd", level=ranked.level, secs=ranked.secs)


def funnel_people(
    events: ir.Table,
    steps: list[str],
    *,
    mode: FunnelMode = "ordered",
    window: dt.timedelta = dt.timedelta(days=14),
    by: Literal["event", "moment"] = "event",
    breakdown: str | None = None,
) -> ir.Table:
    """One row per person and level reached in their best attempt:
    `(person_id, breakdown, level, secs, secs_from_previous, secs_from_start)`."""
    if len(steps) < 2:
        raise InputError(f"a funnel needs at least 2 steps, got {len(steps)}", where="steps",
                         hint="e.g. --steps 'Product Viewed,Product Added,Order Completed'")
    if mode not in MODES:
        raise InputError(f"unknown funnel mode '{mode}'", where="mode", hint=f"use one of {', '.join(MODES)}")
    if breakdown and breakdown not in events.columns:
        raise InputError(f"no column '{breakdown}' to break down by", where="breakdown",
                         hint="use channel, moment, device_type, persona (join personas first) …")
    t = _prepare(events, breakdown)
    window_s = int(window.total_seconds())
    if mode == "unordered":
        levels = _unordered_levels(t, steps, by, window_s)
    else:
        levels = _sequential_levels(t, steps, by, window_s, strict=(mode == "strict"))
    attempts = levels.group_by(["person_id", "a_seq"]).aggregate(_reached=levels.level.max())
    w = ibis.window(group_by="person_id", order_by=[ibis.desc("_reached"), "a_seq"])
    best = attempts.mutate(_rk=ibis.row_number().over(w)).filter(lambda x: x._rk == 0)
    best = best.select(_b_person=best.person_id, _b_seq=best.a_seq)
    mine = levels.join(best, (levels.person_id == best._b_person) & (levels.a_seq == best._b_seq))
    wl = ibis.window(group_by="person_id", order_by="level")
    mine = mine.mutate(
        secs_from_previous=mine.secs - mine.secs.lag().over(wl),
        secs_from_start=mine.secs - mine.secs.min().over(ibis.window(group_by="person_id")),
    )
    return mine.select("person_id", breakdown=mine.bkd, level=mine.level.cast("int32"), secs=mine.secs,
                       secs_from_previous=mine.secs_from_previous, secs_from_start=mine.secs_from_start)


def funnel(
    events: ir.Table,
    steps: list[str],
    *,
    mode: FunnelMode = "ordered",
    window: dt.timedelta = dt.timedelta(days=14),
    by: Literal["event", "moment"] = "event",
    breakdown: str | None = None,
) -> ir.Table:
    """Per breakdown value and step: people, conversion from the first step and from the previous
    one, the drop-off to the next step, and median seconds from the previous step and from the start.

    Steps are event names (`by="event"`) or moment types (`by="moment"`); a step written
    `moment:buy` or `event:Order Completed` overrides `by` for that step.
    """
    people = funnel_people(events, steps, mode=mode, window=window, by=by, breakdown=breakdown)
    names = [f"any {k} of {len(steps)}" if mode == "unordered" else s for k, s in enumerate(steps, 1)]
    grid = ibis.memtable({"step": list(range(1, len(steps) + 1)), "step_name": names})
    grid = grid.mutate(step=grid.step.cast("int32"))
    values = people.select(_value=people.breakdown).distinct()
    grid = values.cross_join(grid)
    counted = people.group_by(["breakdown", "level"]).aggregate(
        _people=people.count(),
        median_s_from_previous=people.secs_from_previous.cast("float64").median(),
        median_s_from_start=people.secs_from_start.cast("float64").median(),
    )
    out = grid.left_join(counted, (grid._value == counted.breakdown) & (grid.step == counted.level))
    out = out.select(
        breakdown=out._value, step=out.step, step_name=out.step_name,
        people=out._people.fill_null(0).cast("int64"),
        median_s_from_previous=out.median_s_from_previous, median_s_from_start=out.median_s_from_start,
    )
    w = ibis.window(group_by="breakdown", order_by="step")
    first = out.people.max().over(ibis.window(group_by="breakdown"))
    prev = out.people.lag().over(w)
    nxt = out.people.lead().over(w)
    return out.mutate(
        conversion_from_start=ibis.ifelse(first > 0, out.people.cast("float64") / first, 0.0),
        conversion_from_previous=ibis.ifelse(prev.isnull(), 1.0,
                                             ibis.ifelse(prev > 0, out.people.cast("float64") / prev, 0.0)),
        dropoff=(out.people - nxt.fill_null(out.people)).cast("int64"),
    )
