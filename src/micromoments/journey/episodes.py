"""Moment episodes: short runs of intent-bearing interactions with one dominant moment type.

Within a session, consecutive intent-bearing events (a `moment` other than `other`) form one
episode until either
  * the person is silent for more than `episode_gap_minutes` (default 10), or
  * a new *search* (an event with a `query`) carries a different moment type.
So "a query, two result clicks and a store-locator view" is one `go` episode, while a `know`
search followed by a `buy` search is two. Non-query events of another type (a how-to page
inside a buy run) do not split: the episode's type is the one with the most summed confidence.

What followed: the episode `converted` when a conversion event happens after its start and
before the next episode of the session; otherwise it led to a `next_moment`, or was `abandoned`.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from micromoments.journey.moments import NO_INTENT
from micromoments.journey.sessions import event_facts
from micromoments.journey.vocab import EventVocabulary

DEFAULT_EPISODE_GAP_MINUTES = 10
_FAR_FUTURE = 2**62


# The output columns of `episodes`, in order.
EPISODE_COLUMNS = (
    "person_id", "session_id", "session_no", "episode_no", "start", "end", "secs_start", "duration_s",
    "interactions", "trigger_query", "channel", "moment", "confidence", "next_moment", "conversions",
    "revenue", "product_views", "cart_events", "support_events", "episode_id", "converted", "outcome",
    "first_session", "purchased_before",
)
_SESSION = ["person_id", "session_no"]  # a session's key (`session_id` is its text form)


def episode_events(sessionized: ir.Table, episode_gap_minutes: int = DEFAULT_EPISODE_GAP_MINUTES) -> ir.Table:
    """The intent-bearing events of `sessionized`, each with the `episode_no` of its episode.

    This is the event-level view of `episodes`: join it on `message_id` to see which
    episode an event fell in (scoring against ground truth does exactly that).
    """
    s = sessionized
    intent = s.filter(s.moment.notnull() & ~s.moment.isin(list(NO_INTENT)))
    intent = intent.mutate(
        _conf=intent.confidence.fill_null(1.0),
        _has_query=(intent.query.notnull() & (intent.query.strip().length() > 0)),
    )
    # `event_no` numbers a person's events in (ts, message_id) order: one integer to sort on.
    w = ibis.window(group_by=_SESSION, order_by="event_no")
    prev_secs = intent.secs.lag().over(w)
    prev_moment = intent.moment.lag().over(w)
    start = (
        prev_secs.isnull()
        | ((intent.secs - prev_secs) > episode_gap_minutes * 60)
        | (intent._has_query & (intent.moment != prev_moment))
    )
    intent = intent.mutate(_start=ibis.ifelse(start, 1, 0))
    cum = ibis.window(group_by=_SESSION, order_by="event_no", rows=(None, 0))
    return intent.mutate(episode_no=intent._start.sum().over(cum).cast("int64"))


def episodes(
    sessionized: ir.Table,
    episode_gap_minutes: int = DEFAULT_EPISODE_GAP_MINUTES,
    vocab: EventVocabulary | None = None,
) -> ir.Table:
    """One row per moment episode, from the output of `sessionize` (needs `moment`, `confidence`).

    Columns: person_id, session_id, session_no, episode_no, episode_id, start, end, duration_s,
    moment, confidence, interactions, trigger_query, channel, next_moment, converted, revenue,
    product_views, cart_events, support_events, outcome (converted / next_moment / abandoned),
    first_session, purchased_before.

    >>> # see tests/test_journey_episodes.py for worked examples
    """
    return episodes_from_facts(event_facts(sessionized, vocab), episode_gap_minutes)


def episodes_from_facts(facts: ir.Table, episode_gap_minutes: int = DEFAULT_EPISODE_GAP_MINUTES) -> ir.Table:
    """`episodes` from `sessions.event_facts` (the vocabulary flags already evaluated): the
    pipeline materialises the facts once and builds episodes and session stages from them."""
    f = facts
    intent = episode_events(f, episode_gap_minutes)

    keys = [*_SESSION, "episode_no"]
    base = intent.group_by(keys).aggregate(
        start=intent.ts.min(),
        end=intent.ts.max(),
        secs_start=intent.secs.min(),
        duration_s=intent.secs.max() - intent.secs.min(),
        interactions=intent.count(),
        trigger_query=intent.query.argmin(intent.event_no, where=intent._has_query),
        channel=intent.channel.argmin(intent.event_no),
    )
    by_type = intent.group_by([*keys, "moment"]).aggregate(
        _score=intent._conf.sum(), _n=intent.count(), _mean_conf=intent._conf.mean()
    )

    # The dominant type: most summed confidence, then most events, then name (deterministic).
    rank = ibis.window(group_by=keys, order_by=[ibis.desc("_score"), ibis.desc("_n"), "moment"])
    dominant = by_type.mutate(_rk=ibis.row_number().over(rank)).filter(lambda t: t._rk == 0)
    dominant = dominant.select(
        _d_person=dominant.person_id, _d_session=dominant.session_no, _d_ep=dominant.episode_no,
        moment=dominant.moment, confidence=dominant._mean_conf.round(4),
    )
    ep = base.join(dominant, (base.person_id == dominant._d_person) & (base.session_no == dominant._d_session)
                   & (base.episode_no == dominant._d_ep))
    ep = ep.drop("_d_person", "_d_session", "_d_ep")

    wn = ibis.window(group_by=_SESSION, order_by="episode_no")
    ep = ep.mutate(
        next_moment=ep.moment.lead().over(wn),
        _next_secs=ep.secs_start.lead().over(wn),
    )
    ep = ep.mutate(_until=ep._next_secs.fill_null(_FAR_FUTURE))

    # What happened between the episode's start and the next episode of the session.
    act = f.filter(f.is_conv | f.is_cart | f.is_view | f.is_support)
    act = act.select(
        a_person=act.person_id, a_session=act.session_no, a_secs=act.secs,
        a_conv=act.is_conv.cast("int64"), a_cart=act.is_cart.cast("int64"),
        a_view=act.is_view.cast("int64"), a_support=act.is_support.cast("int64"),
        a_revenue=ibis.ifelse(act.is_conv, act.revenue.fill_null(0.0), 0.0),
    )
    spans = ep.select(_p=ep.person_id, _s=ep.session_no, _ep=ep.episode_no, _from=ep.secs_start, _to=ep._until)
    hits = spans.join(act, (spans._p == act.a_person) & (spans._s == act.a_session)
                      & (act.a_secs >= spans._from) & (act.a_secs < spans._to))
    followed = hits.group_by(["_p", "_s", "_ep"]).aggregate(
        conversions=hits.a_conv.sum(), revenue=hits.a_revenue.sum(),
        product_views=hits.a_view.sum(), cart_events=hits.a_cart.sum(),
        support_events=hits.a_support.sum(),
    )
    ep = ep.left_join(followed, (ep.person_id == followed._p) & (ep.session_no == followed._s)
                      & (ep.episode_no == followed._ep))
    ep = ep.drop("_p", "_s", "_ep")
    counts = ["conversions", "product_views", "cart_events", "support_events"]
    ep = ep.mutate(**{c: ep[c].fill_null(0).cast("int64") for c in counts}, revenue=ep.revenue.fill_null(0.0))

    # The person's first purchase, for "after purchase" rules.
    conv = f.filter(f.is_conv)
    first_buy = conv.group_by("person_id").aggregate(_first_buy=conv.secs.min()).rename(_fb_person="person_id")
    ep = ep.left_join(first_buy, ep.person_id == first_buy._fb_person).drop("_fb_person")
    return finish_episodes(ep)


def finish_episodes(ep: ir.Table) -> ir.Table:
    """The derived columns of `episodes` (ids, outcome, first session, purchased before) from the
    per-episode numbers and `_first_buy` (the person's first purchase, epoch seconds or NULL);
    shared by the Ibis path above and the numpy kernel (`journey.fastpath`)."""
    session_id = ep.person_id.concat(":", ep.session_no.cast("string"))
    return ep.mutate(
        session_id=session_id,
        episode_id=session_id.concat("#", ep.episode_no.cast("string")),
        converted=ep.conversions > 0,
        outcome=ibis.cases(
            (ep.conversions > 0, "converted"),
            (ep.next_moment.notnull(), "next_moment"),
            else_="abandoned",
        ),
        first_session=ep.session_no == 1,
        purchased_before=(ep._first_buy < ep.secs_start).fill_null(False),
    ).select(*EPISODE_COLUMNS)
