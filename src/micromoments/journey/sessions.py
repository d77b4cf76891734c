"""Sessions: split each person's events on an inactivity gap (default 30 minutes).

`sessionize` adds columns to every event; `sessions` gives one row per session.
Both are Ibis expressions, so they run on DuckDB and on Spark unchanged.

>>> import ibis, datetime as dt
>>> t = ibis.memtable({"message_id": ["a", "b", "c"], "person_id": ["p", "p", "p"],
...     "ts": [dt.datetime(2026, 1, 1, 9), dt.datetime(2026, 1, 1, 9, 20), dt.datetime(2026, 1, 1, 11)]})
>>> sessionize(t, gap_minutes=30).order_by("ts").session_no.to_list()
[1, 1, 2]
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from micromoments.journey.vocab import EventVocabulary

DEFAULT_GAP_MINUTES = 30


def _person_window() -> ibis.Window:  # type: ignore[name-defined]
    return ibis.window(group_by="person_id", order_by=["ts", "message_id"])


def sessionize(events: ir.Table, gap_minutes: int = DEFAULT_GAP_MINUTES) -> ir.Table:
    """Add `event_no` (0-based per person), `secs` (epoch seconds), `session_no` (1-based per
    person) and `session_id` (`person_id:session_no`) to every event with a person and a time.

    A new session starts at a person's first event and after any silence longer than
    `gap_minutes`. Ties on `ts` are broken by `message_id`, so the result is deterministic.
    """
    t = events.filter(events.person_id.notnull() & events.ts.notnull())
    w = _person_window()
    secs = t.ts.epoch_seconds().cast("int64")
    t = t.mutate(secs=secs, _prev_secs=secs.lag().over(w), event_no=ibis.row_number().over(w))
    new = ibis.ifelse(t._prev_secs.isnull() | ((t.secs - t._prev_secs) > gap_minutes * 60), 1, 0)
    t = t.mutate(_new_session=new)
    cum = ibis.window(group_by="person_id", order_by=["ts", "message_id"], rows=(None, 0))
    t = t.mutate(session_no=t._new_session.sum().over(cum).cast("int64"))
    return t.mutate(session_id=t.person_id.concat(":", t.session_no.cast("string"))).drop(
        "_prev_secs", "_new_session"
    )


def sessions(sessionized: ir.Table, vocab: EventVocabulary | None = None) -> ir.Table:
    """One row per session: start, end, duration, events, entry channel, conversions, revenue.

    Takes the output of `sessionize`. `converted` is true when the session holds a
    conversion event (see `EventVocabulary`); revenue sums only those events.
    """
    vocab = vocab or EventVocabulary()
    t = sessionized.mutate(_conv=vocab.is_conversion(sessionized))
    return (
        t.group_by(["person_id", "session_id", "session_no"])
        .aggregate(
            start=t.ts.min(),
            end=t.ts.max(),
            duration_s=(t.secs.max() - t.secs.min()),
            events=t.count(),
            channel=t.channel.argmin(t.event_no),
            conversions=t._conv.cast("int64").sum(),
            revenue=t.revenue.sum(where=t._conv).fill_null(0.0),
        )
        .mutate(converted=lambda s: s.conversions > 0)
    )
