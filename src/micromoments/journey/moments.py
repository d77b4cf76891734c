"""Join the intent engine's `event_moments` onto events.

The intent engine writes one row per intent-bearing event: `event_moments(message_id,
moment, go_type, confidence, cues, basis)`. Journey analytics only need `moment`,
`go_type` and `confidence` on the events table; events without intent get NULLs. The intent
engine also stamps those three onto `events` (`has_stamped_moments`): then no join is needed.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from micromoments.store.schema import STAMPED_MOMENT_COLUMNS

NO_INTENT = ("other",)  # moment values that do not start or extend an episode
MOMENT_COLUMNS = tuple(STAMPED_MOMENT_COLUMNS)  # what analytics read of an event's moment


def has_stamped_moments(events: ir.Table) -> bool:
    """True when `events` carries the moment columns (the intent engine stamps them on)."""
    return set(MOMENT_COLUMNS) <= set(events.columns)


def events_with_moments(events: ir.Table, event_moments: ir.Table, *, dedupe: bool = False) -> ir.Table:
    """Left-join `moment`, `go_type` and `confidence` onto `events` by `message_id`.

    >>> import ibis
    >>> ev = ibis.memtable({"message_id": ["a", "b"], "event": ["x", "y"]})
    >>> em = ibis.memtable({"message_id": ["a"], "moment": ["buy"], "go_type": [None], "confidence": [0.9]})
    >>> events_with_moments(ev, em).order_by("message_id").moment.to_list()
    ['buy', None]
    """
    em = event_moments.select(
        _mid=event_moments.message_id,
        moment=event_moments.moment,
        go_type=event_moments.go_type.cast("string") if "go_type" in event_moments.columns else ibis.null("string"),
        confidence=event_moments.confidence.cast("float64"),
    )
    if dedupe:
        # The intent engine writes one row per event; `dedupe` keeps the most confident row if a
        # table holds duplicates (costs a window over the whole table).
        w = ibis.window(group_by="_mid", order_by=[ibis.desc("confidence"), "moment"])
        em = em.mutate(_rk=ibis.row_number().over(w)).filter(lambda t: t._rk == 0).drop("_rk")
    base = events.drop(*[c for c in MOMENT_COLUMNS if c in events.columns])
    joined = base.left_join(em, base.message_id == em._mid)
    return joined.drop("_mid")


def without_moments(events: ir.Table) -> ir.Table:
    """`events` with NULL moment columns: what analytics see before the intent engine has run."""
    return events.mutate(
        moment=ibis.null("string"), go_type=ibis.null("string"), confidence=ibis.null("float64")
    )
