"""Conversion of a micro-moment, defined once for every view (report, app, CLI).

A moment (an episode) has two conversion flags:

* `converted_session`: a purchase followed it **in the same session** (at or after its start);
* `converted_window`: a purchase followed it **within the conversion window** (default 7 days,
  `[journey] conversion_window_days`), in any session: the *assisted* view.

Each is counted once per episode however many purchases followed, so a rate is "the share of
these moments followed by a purchase". The older `converted` flag of `journey.episodes` (a
purchase before the *next* moment) credits only the last moment before a purchase: a know or
do moment then reads as 0% although people went on to buy.

>>> import ibis
>>> ep = ibis.memtable({"person_id": ["p", "p"], "session_no": [1, 2], "episode_no": [1, 1],
...                     "secs_start": [0, 90_000], "moment": ["know", "buy"]})
>>> buys = ibis.memtable({"person_id": ["p"], "session_no": [2], "secs": [90_100]})
>>> t = with_conversions(ep, buys, window_days=7).order_by("secs_start").execute()
>>> t.converted_session.tolist(), t.converted_window.tolist()
([False, True], [True, True])
"""

from __future__ import annotations

from typing import Any

import ibis.expr.types as ir
import pandas as pd

from micromoments.journey.vocab import EventVocabulary

DEFAULT_WINDOW_DAYS = 7.0
SAME_SESSION = "converted_session"
IN_WINDOW = "converted_window"

# One line per definition, shown wherever a conversion rate appears.
SAME_SESSION_LABEL = "bought same session"
IN_WINDOW_LABEL = "bought within {days}"


def window_text(days: float) -> str:
    """`7 days`, `1 day`, `36 hours`: the window as the explanations write it.

    >>> window_text(7.0), window_text(1.5)
    ('7 days', '36 hours')
    """
    if float(days).is_integer():
        n = int(days)
        return f"{n} day" + ("" if n == 1 else "s")
    return f"{days * 24:,.0f} hours"


def explanation(days: float = DEFAULT_WINDOW_DAYS) -> str:
    """The one-line explanation of both rates (plain words, no jargon).

    >>> explanation(7)[:40]
    'Same visit: the share of these moments f'
    """
    return (f"Same visit: the share of these moments followed by a purchase before the visit ended. "
            f"Within {window_text(days)}: followed by a purchase within {window_text(days)}, "
            "in any visit (each moment counted once).")


def purchases(sessionized: ir.Table, vocab: EventVocabulary | None = None) -> ir.Table:
    """`(person_id, session_no, secs)` of every purchase (the vocabulary's conversion events)."""
    vocab = vocab or EventVocabulary()
    s = sessionized
    return s.filter(vocab.is_conversion(s)).select("person_id", "session_no", "secs")


def with_conversions(episodes: ir.Table, buys: ir.Table, window_days: float = DEFAULT_WINDOW_DAYS) -> ir.Table:
    """`episodes` plus the boolean columns `converted_session` and `converted_window`.

    `episodes` needs person_id, session_no, episode_no and secs_start; `buys` is `purchases(...)`.
    """
    window = int(round(float(window_days) * 86400))
    ep = episodes.select(_p=episodes.person_id, _s=episodes.session_no, _e=episodes.episode_no,
                         _from=episodes.secs_start)
    b = buys.select(_bp=buys.person_id, _bs=buys.session_no, _bt=buys.secs)
    hits = ep.join(b, (ep._p == b._bp) & (b._bt >= ep._from) & (b._bt <= ep._from + window))
    flags = hits.group_by(["_p", "_s", "_e"]).aggregate(
        _same=(hits._bs == hits._s).cast("int64").max(), _any=hits.count())
    out = episodes.left_join(flags, (episodes.person_id == flags._p) & (episodes.session_no == flags._s)
                             & (episodes.episode_no == flags._e))
    out = out.drop("_p", "_s", "_e")
    out = out.mutate(**{SAME_SESSION: out._same.fill_null(0) > 0, IN_WINDOW: out._any.fill_null(0) > 0})
    return out.drop("_same", "_any")


def add_conversions(journey: Any, vocab: EventVocabulary | None = None,
                    window_days: float = DEFAULT_WINDOW_DAYS) -> Any:
    """`journey` (a `journey.pipeline.Journey`) with both flags on its episodes (an expression:
    materialise it when several views read it)."""
    from dataclasses import replace

    return replace(journey, episodes=with_conversions(journey.episodes, purchases(journey.sessionized, vocab),
                                                      window_days))


def rates(frame: pd.DataFrame, by: str | list[str]) -> pd.DataFrame:
    """Per group of an episodes frame: episodes, people, and both conversion rates (0..1).

    >>> f = pd.DataFrame({"moment": ["know", "know", "buy"], "person_id": ["a", "b", "a"],
    ...                   "converted_session": [False, True, True], "converted_window": [True, True, True]})
    >>> rates(f, "moment").set_index("moment").loc["know", ["same_session_rate", "window_rate"]].tolist()
    [0.5, 1.0]
    """
    keys = [by] if isinstance(by, str) else list(by)
    if frame.empty:
        return pd.DataFrame(columns=[*keys, "episodes", "people", "same_session_rate", "window_rate"])
    f = frame.assign(_s=frame[SAME_SESSION].astype(float), _w=frame[IN_WINDOW].astype(float))
    g = f.groupby(keys)
    return pd.DataFrame({"episodes": g.size(), "people": g.person_id.nunique(),
                         "same_session_rate": g._s.mean(), "window_rate": g._w.mean()}).reset_index()


def window_days_of(config: Any | None) -> float:
    """`[journey] conversion_window_days` of `config` (7 when unset)."""
    journey = getattr(config, "journey", None)
    return float(getattr(journey, "conversion_window_days", DEFAULT_WINDOW_DAYS) or DEFAULT_WINDOW_DAYS)
