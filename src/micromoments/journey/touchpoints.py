"""Touchpoints that peak or falter: engagement, exit rate and conversion per page, content or
channel, with the significant outliers flagged.

`touchpoints` (Ibis) counts; `flag_touchpoints` (pandas, on the small result) tests each
touchpoint against all the others with a two-proportion z-test, and controls the false
discovery rate over all touchpoints with Benjamini-Hochberg, so a page with a handful of visits
is not flagged by chance.
"""

from __future__ import annotations

from typing import Literal

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from micromoments.journey.vocab import EventVocabulary

TouchpointKind = Literal["page", "content", "channel"]
_COLUMNS = {"page": "page_path", "content": "page_title", "channel": "channel"}


def touchpoints(sessionized: ir.Table, kind: TouchpointKind = "page",
                vocab: EventVocabulary | None = None) -> ir.Table:
    """Per touchpoint: views, sessions, people, exits, converted sessions, exit rate, conversion
    rate and engagement (views per session, mean events in the sessions that touched it).

    The exit touchpoint of a session is its last event with a value; conversion events themselves
    are not touchpoints (a thank-you page would convert 100% by definition). Also carries
    `all_sessions` and `all_conversions` over sessions with any touchpoint, for the tests.
    """
    vocab = vocab or EventVocabulary()
    col = _COLUMNS[kind]
    s = sessionized.mutate(_conv=vocab.is_conversion(sessionized).cast("int64"))
    per_session = s.group_by("session_id").aggregate(_s_conv=s._conv.max(), _s_events=s.count())
    per_session = per_session.rename(_ps_session="session_id")
    t = s.filter(s[col].notnull() & (s._conv == 0)).mutate(touchpoint=s[col].cast("string"))
    w = ibis.window(group_by="session_id", order_by=ibis.desc("event_no"))
    t = t.mutate(_is_exit=ibis.ifelse(ibis.row_number().over(w) == 0, 1, 0))
    visits = t.group_by(["touchpoint", "session_id", "person_id"]).aggregate(_views=t.count(), _exit=t._is_exit.max())
    visits = visits.join(per_session, visits.session_id == per_session._ps_session).drop("_ps_session")
    out = visits.group_by("touchpoint").aggregate(
        views=visits._views.sum(), sessions=visits.count(), people=visits.person_id.nunique(),
        exits=visits._exit.sum(), conversions=visits._s_conv.sum(),
        avg_session_events=visits._s_events.mean(),
    )
    touched = visits.select("session_id", "_s_conv").distinct()
    totals = touched.aggregate(all_sessions=touched.count(), all_conversions=touched._s_conv.sum())
    out = out.cross_join(totals)
    return out.mutate(
        kind=ibis.literal(kind),
        exit_rate=out.exits.cast("float64") / out.sessions,
        conversion_rate=out.conversions.cast("float64") / out.sessions,
        views_per_session=out.views.cast("float64") / out.sessions,
    )


def _ztest(hits: np.ndarray, n: np.ndarray, hits_rest: np.ndarray, n_rest: np.ndarray) -> np.ndarray:
    from statsmodels.stats.proportion import proportions_ztest

    p = np.ones(len(n))
    for i in range(len(n)):
        if n[i] > 0 and n_rest[i] > 0 and 0 < hits[i] + hits_rest[i] < n[i] + n_rest[i]:
            p[i] = proportions_ztest([hits[i], hits_rest[i]], [n[i], n_rest[i]])[1]
    return p


def flag_touchpoints(frame: pd.DataFrame, *, min_sessions: int = 20, alpha: float = 0.05) -> pd.DataFrame:
    """Add `p_conversion`, `p_exit` (BH-adjusted), `flag` (`peak` / `falters` / '') and `why`.

    A touchpoint *peaks* when its sessions convert significantly more than sessions elsewhere; it
    *falters* when they convert significantly less, or when people leave from it significantly
    more often. Touchpoints with fewer than `min_sessions` sessions are not tested.
    """
    from statsmodels.stats.multitest import multipletests

    df = frame.copy()
    df["p_conversion"] = np.nan
    df["p_exit"] = np.nan
    df["flag"] = ""
    df["why"] = ""
    test = df[df.sessions >= min_sessions]
    if not test.empty:
        n = test.sessions.to_numpy(float)
        n_rest = (test.all_sessions - test.sessions).to_numpy(float)
        conv = test.conversions.to_numpy(float)
        conv_rest = (test.all_conversions - test.conversions).to_numpy(float)
        exits = test.exits.to_numpy(float)
        exits_rest = (test.all_sessions - test.exits).to_numpy(float)  # one exit per session
        p_conv = multipletests(_ztest(conv, n, conv_rest, n_rest), method="fdr_bh")[1]
        p_exit = multipletests(_ztest(exits, n, np.clip(exits_rest, 0, None), n_rest), method="fdr_bh")[1]
        df.loc[test.index, "p_conversion"] = p_conv
        df.loc[test.index, "p_exit"] = p_exit
        rate_rest = np.divide(conv_rest, n_rest, out=np.zeros_like(n_rest), where=n_rest > 0)
        exit_rest = np.divide(exits_rest, n_rest, out=np.zeros_like(n_rest), where=n_rest > 0)
        for j, idx in enumerate(test.index):
            rate, ex = conv[j] / n[j], exits[j] / n[j]
            if p_conv[j] < alpha and rate > rate_rest[j]:
                df.loc[idx, ["flag", "why"]] = ["peak", f"converts {rate:.0%} vs {rate_rest[j]:.0%} elsewhere"]
            elif p_conv[j] < alpha and rate < rate_rest[j]:
                df.loc[idx, ["flag", "why"]] = ["falters", f"converts {rate:.0%} vs {rate_rest[j]:.0%} elsewhere"]
            elif p_exit[j] < alpha and ex > exit_rest[j]:
                df.loc[idx, ["flag", "why"]] = ["falters", f"{ex:.0%} leave here vs {exit_rest[j]:.0%} elsewhere"]
    return df.sort_values(["flag", "sessions"], ascending=[False, False]).reset_index(drop=True)
