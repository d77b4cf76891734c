"""Complete days: where a store's data stops being a whole day (a store still being written to, or a
data set cut mid-day), so period comparisons (the overview's KPIs, the report's monitoring) leave the
partial trailing days out.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def complete_until(daily: pd.DataFrame, *, late_hour: int = 23, share: float = 0.5, max_days: int = 3) -> pd.Timestamp:
    """The end (exclusive) of the last complete day, from `daily` (`day`, `events`, `last` = the day's
    last event). A trailing day is partial when its data stops before `late_hour` (UTC) *and* it has
    under `share` x the median events of the 7 days before it: a store being written to, or a data
    set cut mid-day. Up to `max_days` trailing days are dropped.

    >>> d = pd.DataFrame({"day": pd.date_range("2026-05-01", periods=9), "events": [100] * 8 + [7],
    ...                   "last": pd.date_range("2026-05-01 23:50", periods=9)})
    >>> d.loc[8, "last"] = pd.Timestamp("2026-05-09 03:10")
    >>> complete_until(d)
    Timestamp('2026-05-09 00:00:00')
    """
    d = daily.sort_values("day").reset_index(drop=True)
    end = len(d)
    while end > 1 and len(d) - end < max_days:
        row, before = d.iloc[end - 1], d.iloc[max(0, end - 8):end - 1]
        late = pd.Timestamp(row["last"]) >= pd.Timestamp(row["day"]) + pd.Timedelta(hours=late_hour)
        if late or row["events"] >= share * float(before.events.median()):
            break
        end -= 1
    return pd.Timestamp(d.day.iloc[end - 1]) + pd.Timedelta(days=1)


def daily_tail(store: Any, days: int = 11) -> pd.DataFrame:
    """Events and the last event's time of the store's last `days` days (for `complete_until`)."""
    e = store.table("events")
    e = e.filter(e.ts.notnull()).mutate(day=e.ts.truncate("D"))
    t = e.group_by("day").aggregate(events=e.count(), last=e.ts.max()).order_by(lambda t: t.day.desc()).limit(days)
    return store.ibis.execute(t)
