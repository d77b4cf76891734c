"""The sequential part of journeys as one vectorised numpy kernel: sessions and moment episodes.

Sessions and episodes are "walk each person's events in time order" computations. In SQL they
need four window sorts and a range join; over arrays already sorted by (person, ts, message_id)
they are a few linear passes (`np.diff`, `np.cumsum`, `np.maximum.accumulate`, `np.bincount`),
with no Python loop per row. `sequence_kernel` is that kernel: it takes one chunk of events
holding whole people and returns index arrays and numbers; `micromoments.journey.fastpath`
feeds it from DuckDB and writes the tables back. The semantics are those of
`sessions.sessionize`, `episodes.episodes_from_facts` and `stages.session_features_from_facts`
(the Ibis reference, which Spark runs); `tests/test_journey_kernel.py` checks they agree.

>>> import numpy as np
>>> k = sequence_kernel(new_person=np.array([1, 0, 0, 1], bool), secs=np.array([0, 60, 4000, 10]),
...     intent=np.array([1, 1, 0, 1], bool), moment=np.array([0, 0, -1, 1]),
...     has_query=np.array([1, 0, 0, 1], bool), conf=np.array([0.9, 0.8, 1.0, 0.7]),
...     is_conv=np.zeros(4, bool), is_cart=np.zeros(4, bool), is_view=np.zeros(4, bool),
...     is_support=np.zeros(4, bool), revenue=np.zeros(4), gap_s=1800, episode_gap_s=600)
>>> k["session_no"].tolist(), k["event_no"].tolist(), k["ep_interactions"].tolist()
([1, 1, 2, 1], [0, 1, 2, 0], [2, 1])
"""

from __future__ import annotations

import numpy as np

FAR_FUTURE = 2**62  # "no next episode" (as `episodes._FAR_FUTURE`)


def _run_starts(flags: np.ndarray) -> np.ndarray:
    """For each position, the index where its run (started by a True in `flags`) begins."""
    idx = np.arange(len(flags))
    return np.maximum.accumulate(np.where(flags, idx, 0)) if len(flags) else idx


def _firsts(keys: np.ndarray) -> np.ndarray:
    """True at the first element of each run of equal, sorted `keys`."""
    out = np.ones(len(keys), bool)
    if len(keys) > 1:
        out[1:] = keys[1:] != keys[:-1]
    return out


def round_half_away(x: np.ndarray, places: int) -> np.ndarray:
    """DuckDB's `round(double, n)`: `std::round(x * 10**n) / 10**n` (halves away from zero)."""
    m = 10.0**places
    v = x * m
    r = np.floor(np.abs(v))
    r = r + ((np.abs(v) - r) >= 0.5)
    return np.copysign(r, v) / m


def sequence_kernel(
    *, new_person: np.ndarray, secs: np.ndarray, intent: np.ndarray, moment: np.ndarray,
    has_query: np.ndarray, conf: np.ndarray, is_conv: np.ndarray, is_cart: np.ndarray,
    is_view: np.ndarray, is_support: np.ndarray, revenue: np.ndarray, gap_s: int, episode_gap_s: int,
) -> dict[str, np.ndarray]:
    """Sessions, episodes and session features of a chunk of events sorted by (person, ts, id).

    Inputs (one entry per event): `new_person` (True at each person's first event; the chunk holds
    whole people), `secs` (int epoch seconds), `intent` (the event carries a moment other than
    `other`), `moment` (an integer code whose order is the order of the moment names), `has_query`
    (a non-blank query), `conf` (confidence, NULL already read as 1.0), the vocabulary flags and
    `revenue` (NaN for NULL).

    Returns per event `event_no` (0-based per person), `session_no` (1-based); per episode (in
    person, session, start order) `ep_first`/`ep_last`/`ep_trigger` (event indexes; -1 = none),
    `ep_session_no`, `ep_no`, `ep_secs_start`, `ep_duration`, `ep_interactions`, `ep_moment`,
    `ep_confidence`, `ep_next_moment` (-1 = none), counts and revenue of what followed,
    `ep_first_buy` (the person's first purchase secs, `ep_has_buy` False = none); per session
    `s_first` (event index), `s_no`, `s_events`, counts, `s_revenue`, `s_moment` (-1 = none),
    `s_episodes`, `s_first_buy`, `s_has_buy`.
    """
    n = len(secs)
    idx = np.arange(n)
    secs = secs.astype(np.int64, copy=False)
    prev = np.empty_like(secs)
    if n:
        prev[0] = secs[0]
        prev[1:] = secs[:-1]
    # Sessions: a new one at each person's first event and after a silence longer than the gap.
    new_sess = new_person | ((secs - prev) > gap_s)
    pstart = _run_starts(new_person)
    event_no = idx - pstart
    sess_gid = np.cumsum(new_sess) - 1
    session_no = sess_gid - sess_gid[pstart] + 1 if n else sess_gid
    person_gid = np.cumsum(new_person) - 1

    # Episodes over the intent events, in the same order: a new one at the session's first intent
    # event, after more than `episode_gap_s` silence, or at a search of another moment type.
    ii = np.flatnonzero(intent)
    s_i, secs_i, m_i, q_i = sess_gid[ii], secs[ii], moment[ii], has_query[ii]
    start = _firsts(s_i)
    if len(ii) > 1:
        start[1:] |= (secs_i[1:] - secs_i[:-1]) > episode_gap_s
        start[1:] |= q_i[1:] & (m_i[1:] != m_i[:-1])
    ep_of_i = np.cumsum(start) - 1
    n_ep = int(ep_of_i[-1]) + 1 if len(ii) else 0
    ep_first = ii[start]
    last = np.ones(len(ii), bool)
    last[:-1] = start[1:]
    ep_last = ii[last]
    ep_sess = sess_gid[ep_first]
    ep_new_sess = _firsts(ep_sess)
    ep_no = np.arange(n_ep) - _run_starts(ep_new_sess) + 1
    ep_secs = secs[ep_first]
    ep_interactions = np.bincount(ep_of_i, minlength=n_ep)

    # The trigger query: the episode's first event with a query.
    ep_trigger = np.full(n_ep, -1, np.int64)
    jq = np.flatnonzero(q_i)
    if len(jq):
        first_q = _firsts(ep_of_i[jq])
        ep_trigger[ep_of_i[jq[first_q]]] = ii[jq[first_q]]

    # The dominant type: most summed confidence, then most events, then the smallest name.
    codes = np.unique(m_i) if len(ii) else np.array([], np.int64)
    best = np.full(n_ep, -1, np.int64)
    best_score = np.full(n_ep, -np.inf)
    best_n = np.zeros(n_ep, np.int64)
    conf_i = conf[ii]
    for c in codes:  # a handful of moment types: one vectorised pass each
        sel = m_i == c
        score = np.bincount(ep_of_i[sel], weights=conf_i[sel], minlength=n_ep)
        cnt = np.bincount(ep_of_i[sel], minlength=n_ep)
        better = (cnt > 0) & ((score > best_score) | ((score == best_score) & (cnt > best_n)))
        best = np.where(better, c, best)
        best_score = np.where(better, score, best_score)
        best_n = np.where(better, cnt, best_n)
    ep_conf = round_half_away(best_score / np.maximum(best_n, 1), 4)

    next_same = np.zeros(n_ep, bool)
    next_same[:-1] = ep_sess[1:] == ep_sess[:-1]
    ep_next_moment = np.full(n_ep, -1, np.int64)
    ep_next_moment[:-1] = np.where(next_same[:-1], best[1:], -1)

    # What followed: activity events between an episode's start and the next episode's start
    # (by seconds, within the session). An event belongs to the last episode of its session that
    # started at or before its second; ties on the second go to the later episode.
    new_group = new_sess.copy()
    if n > 1:
        new_group[1:] |= secs[1:] != secs[:-1]
    group_starts = np.flatnonzero(new_group)
    group_end = np.empty(len(group_starts), np.int64)
    group_end[:-1] = group_starts[1:] - 1
    if len(group_starts):
        group_end[-1] = n - 1
    marker = np.zeros(n, np.int64)
    marker[ep_first] = 1
    started = np.cumsum(marker)  # episodes started at positions <= i
    act = np.flatnonzero(is_conv | is_cart | is_view | is_support)
    sstart = _run_starts(new_sess)
    upto = started[group_end[np.cumsum(new_group)[act] - 1]]
    before_session = started[sstart[act]] - marker[sstart[act]]
    ok = upto > before_session
    a, e = act[ok], upto[ok] - 1
    rev = np.where(is_conv, np.nan_to_num(revenue, nan=0.0), 0.0)

    def by_ep(values: np.ndarray, dtype=np.int64) -> np.ndarray:
        return np.bincount(e, weights=values[a], minlength=n_ep).astype(dtype)

    # The person's first purchase.
    conv = np.flatnonzero(is_conv)
    n_person = int(person_gid[-1]) + 1 if n else 0
    first_buy = np.zeros(n_person, np.int64)
    has_buy = np.zeros(n_person, bool)
    fc = conv[_firsts(person_gid[conv])]
    first_buy[person_gid[fc]] = secs[fc]
    has_buy[person_gid[fc]] = True

    # Sessions: sums over their events; the moment of the episode with most interactions.
    s_first = np.flatnonzero(new_sess)
    n_sess = len(s_first)

    def by_sess(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, s_first) if n_sess else values[:0]

    order = np.lexsort((np.arange(n_ep), -ep_interactions, ep_sess))
    top = order[_firsts(ep_sess[order])]
    s_moment = np.full(n_sess, -1, np.int64)
    s_moment[ep_sess[top]] = best[top]
    s_person = person_gid[s_first]
    return {
        "event_no": event_no, "session_no": session_no,
        "ep_first": ep_first, "ep_last": ep_last, "ep_trigger": ep_trigger,
        "ep_session_no": session_no[ep_first], "ep_no": ep_no, "ep_secs_start": ep_secs,
        "ep_duration": secs[ep_last] - ep_secs, "ep_interactions": ep_interactions,
        "ep_moment": best, "ep_confidence": ep_conf, "ep_next_moment": ep_next_moment,
        "ep_conversions": by_ep(is_conv), "ep_revenue": by_ep(rev, np.float64),
        "ep_product_views": by_ep(is_view), "ep_cart_events": by_ep(is_cart),
        "ep_support_events": by_ep(is_support),
        "ep_first_buy": first_buy[person_gid[ep_first]], "ep_has_buy": has_buy[person_gid[ep_first]],
        "s_first": s_first, "s_no": session_no[s_first], "s_secs_start": secs[s_first],
        "s_events": np.diff(np.append(s_first, n)),
        "s_conversions": by_sess(is_conv.astype(np.int64)), "s_cart_events": by_sess(is_cart.astype(np.int64)),
        "s_product_views": by_sess(is_view.astype(np.int64)),
        "s_support_events": by_sess(is_support.astype(np.int64)), "s_revenue": by_sess(rev),
        "s_moment": s_moment, "s_episodes": np.bincount(ep_sess, minlength=n_sess),
        "s_first_buy": first_buy[s_person], "s_has_buy": has_buy[s_person],
    }


__all__ = ["FAR_FUTURE", "round_half_away", "sequence_kernel"]
