"""Peak engagement times: hour × weekday per moment type, in the person's local time.

Engines disagree on converting a timestamp to a per-row time zone, so the conversion is a join
with a small table of UTC offsets (`utc_offsets`): one row per time zone and period between
daylight-saving changes, computed in Python from `zoneinfo`. Events without a (known) time zone
stay in UTC. Hour and weekday then come from integer arithmetic, identical on every engine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import ibis
import ibis.expr.types as ir
import pandas as pd

from micromoments.journey.clock import whole_seconds

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EPOCH = dt.datetime(1970, 1, 1)


def utc_offsets(timezones: Iterable[str | None], start_year: int, end_year: int) -> pd.DataFrame:
    """Periods `[valid_from, valid_to)` (epoch seconds, UTC) with a constant offset per zone.

    >>> utc_offsets(["Europe/Paris"], 2026, 2026).offset_s.tolist()
    [3600, 7200, 3600]
    """
    rows = []
    start = dt.datetime(start_year, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(end_year + 1, 1, 1, tzinfo=dt.UTC)
    for name in sorted({tz for tz in timezones if tz}):
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue  # unknown zone: its events stay in UTC
        period_start, offset = start, start.astimezone(zone).utcoffset()
        t = start
        while t < end:
            nxt = t + dt.timedelta(days=1)
            if nxt.astimezone(zone).utcoffset() != offset:
                # The change happened within this day: find the hour.
                h = t
                while h.astimezone(zone).utcoffset() == offset:
                    h += dt.timedelta(hours=1)
                rows.append((name, int(period_start.timestamp()), int(h.timestamp()), int(offset.total_seconds())))
                period_start, offset = h, h.astimezone(zone).utcoffset()
            t = nxt
        rows.append((name, int(period_start.timestamp()), int(end.timestamp()), int(offset.total_seconds())))
    frame = pd.DataFrame(rows, columns=["tz", "valid_from", "valid_to", "offset_s"])
    return frame.astype({"tz": "string", "valid_from": "int64", "valid_to": "int64", "offset_s": "int64"})


def local_hour_weekday(events: ir.Table, offsets: ir.Table) -> ir.Table:
    """Add `local_hour` (0-23) and `local_weekday` (0 = Monday) to events."""
    t = events.mutate(_secs=whole_seconds(events.ts))
    o = offsets
    t = t.left_join(o, (t.timezone == o.tz) & (t._secs >= o.valid_from) & (t._secs < o.valid_to))
    local = t._secs + t.offset_s.fill_null(0)
    # 1970-01-01 was a Thursday (weekday 3 when Monday is 0).
    t = t.mutate(local_hour=((local // 3600) % 24).cast("int32"),
                 local_weekday=(((local // 86400) + 3) % 7).cast("int32"))
    return t.drop("_secs", "tz", "valid_from", "valid_to", "offset_s")


def heatmap(events: ir.Table, offsets: ir.Table | pd.DataFrame | None = None,
            moments_only: bool = False) -> ir.Table:
    """Per moment type × local weekday × local hour: events and distinct people.

    `offsets` comes from `utc_offsets` (pass a memtable or DataFrame); `heatmap_for` builds it
    from the zones and years found in the events. Events without a moment count under `(none)`
    unless `moments_only`.
    """
    if offsets is None:
        offsets = utc_offsets([], 2000, 2000)
    if isinstance(offsets, pd.DataFrame):
        offsets = ibis.memtable(offsets)
    t = events.filter(events.ts.notnull())
    if moments_only:
        t = t.filter(t.moment.notnull() & (t.moment != "other"))
    t = local_hour_weekday(t, offsets)
    t = t.mutate(moment=t.moment.fill_null("(none)"))
    return t.group_by(["moment", "local_weekday", "local_hour"]).aggregate(
        events=t.count(), people=t.person_id.nunique()
    ).rename(weekday="local_weekday", hour="local_hour")


def heatmap_for(events: ir.Table, moments_only: bool = False) -> ir.Table:
    """`heatmap` with the offsets table built from the events' own zones and years (runs one query)."""
    found = events.group_by("timezone").aggregate(lo=events.ts.min().year(), hi=events.ts.max().year()).execute()
    found = found[found.lo.notna()]
    if found.empty:
        return heatmap(events, None, moments_only)
    # Offsets for 1970-2100 at most: a year-1 or year-9999 time (bad data) stays in UTC instead of
    # overflowing the time-zone arithmetic or looping over millennia.
    lo, hi = max(int(found.lo.min()), 1970), min(int(found.hi.max()), 2100)
    offsets = utc_offsets(found.timezone.dropna().tolist(), min(lo, hi), max(lo, hi))
    return heatmap(events, offsets, moments_only)
