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

from micromoments.journey.clock import whole_seconds
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
    secs = whole_seconds(t.ts)
    t = t.mutate(secs=secs, _prev_secs=secs.lag().over(w), event_no=ibis.row_number().over(w))
    new = ibis.ifelse(t._prev_secs.isnull() | ((t.secs - t._prev_secs) > gap_minutes * 60), 1, 0)
    t = t.mutate(_new_session=new)
    # `event_no` follows (ts, message_id), so the running count sorts on one integer instead.
    cum = ibis.window(group_by="person_id", order_by="event_no", rows=(None, 0))
    t = t.mutate(session_no=t._new_session.sum().over(cum).cast("int64"))
    return t.mutate(session_id=t.person_id.concat(":", t.session_no.cast("string"))).drop(
        "_prev_secs", "_new_session"
    )


def with_session_keys(events: ir.Table, keys: ir.Table) -> ir.Table:
    """`sessionize(events)` from `events` and a materialised table holding `message_id, [secs,]
    event_no, session_no` of each event (such as `event_facts(sessionize(...))`): the same rows
    and columns, by a join on `message_id` (which must be unique, as in the store)."""
    # Without `secs` in `keys` (the kernel's narrower keys) it is computed as `sessionize` does.
    k = keys.select(_k_mid=keys.message_id, event_no=keys.event_no.cast("int64"),
                    session_no=keys.session_no.cast("int64"),
                    **({"secs": keys.secs} if "secs" in keys.columns else {}))
    t = events.filter(events.person_id.notnull() & events.ts.notnull())
    t = t.join(k, t.message_id == k._k_mid)
    secs = t.secs if "secs" in keys.columns else whole_seconds(t.ts)
    return t.select(*events.columns, secs=secs, event_no=t.event_no, session_no=t.session_no,
                    session_id=t.person_id.concat(":", t.session_no.cast("string")))


# The columns of `event_facts`: what sessions, episodes and stages read of each event.
FACT_COLUMNS = ("message_id", "person_id", "session_no", "ts", "secs", "event_no", "channel", "query",
                "moment", "confidence", "revenue", "is_conv", "is_cart", "is_view", "is_support")


def event_kinds(events: ir.Table, vocab: EventVocabulary | None = None) -> ir.Table:
    """The vocabulary's flags for each distinct (`event`, `page_path`) pair of `events`.

    The flags depend only on those two columns, which take few distinct values: testing each
    pair once and joining the answers back (`with_event_flags`) was 3x cheaper on DuckDB than
    testing every event (it runs each long IN list as a join of its own).
    """
    vocab = vocab or EventVocabulary()
    k = events.select("event", "page_path").distinct()
    return k.select(
        _k_event=k.event, _k_path=k.page_path,
        is_conv=vocab.is_conversion(k), is_cart=vocab.is_cart(k),
        is_view=vocab.is_product_view(k), is_support=vocab.is_support(k),
    )


def with_event_flags(events: ir.Table, vocab: EventVocabulary | None = None, kinds: ir.Table | None = None) -> ir.Table:
    """`events` plus the boolean flags `is_conv`, `is_cart`, `is_view`, `is_support`, looked up in
    `kinds` (`event_kinds` of these same events, best materialised) or else evaluated on every row."""
    if kinds is None:
        vocab = vocab or EventVocabulary()
        return events.mutate(
            is_conv=vocab.is_conversion(events), is_cart=vocab.is_cart(events),
            is_view=vocab.is_product_view(events), is_support=vocab.is_support(events),
        )
    t = events.join(kinds, events.event.identical_to(kinds._k_event) & events.page_path.identical_to(kinds._k_path))
    return t.drop("_k_event", "_k_path")


def event_facts(sessionized: ir.Table, vocab: EventVocabulary | None = None) -> ir.Table:
    """Per event, the few columns the journey steps read (`FACT_COLUMNS`), with the vocabulary's
    flags evaluated once (`is_conv`, `is_cart`, `is_view`, `is_support`) instead of in every step.

    >>> # event_facts(sessionize(events)).columns[-4:] == ('is_conv', 'is_cart', 'is_view', 'is_support')
    """
    s = sessionized
    if not {"is_conv", "is_cart", "is_view", "is_support"} <= set(s.columns):
        s = with_event_flags(s, vocab)
    return s.select(*FACT_COLUMNS)


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
