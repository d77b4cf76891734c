"""Metrics expressions on DuckDB: activation logs, the journey fallback, engagement — checked by hand."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from conftest import events_frame
from micromoments.errors import InputError
from micromoments.journey import assign_stages, episodes, sessionize
from micromoments.journey.sessions import sessions
from micromoments.measure import metrics as mx


def _activation(n: int = 3000, seed: int = 4) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    t0 = dt.datetime(2026, 3, 1)
    dec = pd.DataFrame({
        "decision_id": [f"d{i}" for i in range(n)],
        "ts": [t0 + dt.timedelta(minutes=int(m)) for m in rng.integers(0, 60 * 24 * 20, n)],
        "person_id": [f"p{i % 700}" for i in range(n)],
        "playbook": rng.choice(["nearby-store", "how-to", None], n),
        "content_id": rng.choice(["c1", "c2", "c3"], n),
        "channel": rng.choice(["web", "email", "push"], n),
        "moment": rng.choice(["know", "go", "do", "buy"], n),
        "stage": rng.choice(["awareness", "decision"], n),
        "persona": rng.choice(["diy", "pro"], n),
    })
    shown = rng.random(n) < 0.9
    exp = pd.DataFrame({"exposure_id": [f"e{i}" for i in range(shown.sum())], "decision_id": dec.decision_id[shown].to_numpy(),
                        "ts": dec.ts[shown].to_numpy(), "person_id": dec.person_id[shown].to_numpy()})
    clicked = exp.sample(frac=0.2, random_state=1)
    conv = clicked.sample(frac=0.3, random_state=2)
    out = pd.concat([clicked.assign(kind="click", revenue=0.0),
                     conv.assign(kind="conversion", revenue=rng.gamma(2, 30, len(conv)))], ignore_index=True)
    out = out.assign(outcome_id=[f"o{i}" for i in range(len(out))])[["outcome_id", "decision_id", "ts", "person_id", "kind", "revenue"]]
    return {"decisions": dec, "exposures": exp, "outcomes": out}


@pytest.fixture(scope="module")
def con():
    c = ibis.duckdb.connect()
    for name, frame in _activation().items():
        c.create_table(name, frame)
    return c


def test_activation_metrics_match_pandas(con):
    frames = _activation()
    got = con.execute(mx.activation_metrics(con.table("decisions"), con.table("exposures"), con.table("outcomes"),
                                            ["content", "playbook"])).set_index(["content", "playbook"]).sort_index()
    d = frames["decisions"].assign(playbook=frames["decisions"].playbook.fillna("(none)"))
    e = frames["exposures"].merge(d[["decision_id", "content_id", "playbook"]], on="decision_id")
    o = frames["outcomes"].merge(d[["decision_id", "content_id", "playbook"]], on="decision_id")
    want = pd.DataFrame({
        "exposures": e.groupby(["content_id", "playbook"]).size(),
        "clicks": o[o.kind == "click"].groupby(["content_id", "playbook"]).size(),
        "revenue": o[o.kind == "conversion"].groupby(["content_id", "playbook"]).revenue.sum(),
    })
    want.index.names = ["content", "playbook"]
    assert got.exposures.tolist() == want.exposures.tolist()
    assert got.clicks.tolist() == want.clicks.tolist()
    assert np.allclose(got.revenue, want.revenue)
    lo, hi = proportion_confint(got.clicks, got.exposures, method="wilson")
    assert np.allclose(got.ctr_low, lo, atol=1e-9) and np.allclose(got.ctr_high, hi, atol=1e-9)
    assert np.allclose(got.revenue_per_exposure, got.revenue / got.exposures)


def test_period_filter_and_bad_dimension(con):
    d = con.table("decisions")
    t = mx.activation_metrics(d, con.table("exposures"), con.table("outcomes"), [],
                              start=dt.datetime(2026, 3, 5), end=dt.datetime(2026, 3, 6))
    frames = _activation()["decisions"]
    assert con.execute(t).decisions.iloc[0] == ((frames.ts >= "2026-03-05") & (frames.ts < "2026-03-06")).sum()
    with pytest.raises(InputError, match="cannot break down by colour"):
        mx.activation_metrics(d, con.table("exposures"), con.table("outcomes"), ["colour"])


def _shop_events():
    rows = [
        # p1: a buy moment, cart, order 6 minutes after the moment starts
        dict(person_id="p1", ts="2026-03-02 10:00", event="Products Searched", query="buy drill", moment="buy", confidence=0.9, channel="email"),
        dict(person_id="p1", ts="2026-03-02 10:02", event="Product Added", channel="email"),
        dict(person_id="p1", ts="2026-03-02 10:06", event="Order Completed", revenue=120.0, channel="email"),
        # p1 comes back two days later: a know moment, no purchase
        dict(person_id="p1", ts="2026-03-04 09:00", event="Products Searched", query="how to use a drill", moment="know", confidence=0.8, channel="app"),
        # p2: a buy moment that does not convert
        dict(person_id="p2", ts="2026-03-02 11:00", event="Products Searched", query="cheap drill", moment="buy", confidence=0.9, channel="social"),
        dict(person_id="p2", ts="2026-03-02 11:01", event="Product Viewed", channel="social"),
    ]
    return events_frame(rows)


def test_moment_metrics_and_time_to_conversion_by_hand():
    c = ibis.duckdb.connect()
    c.create_table("events", _shop_events())
    s = sessionize(c.table("events"))
    ep = assign_stages(episodes(s))
    got = c.execute(mx.moment_metrics(ep, s, ["moment"])).set_index("moment")
    assert got.loc["buy", "moments"] == 2 and got.loc["buy", "conversions"] == 1
    assert got.loc["buy", "conversion_rate"] == 0.5 and got.loc["buy", "revenue"] == 120.0
    assert got.loc["buy", "minutes_to_conversion"] == pytest.approx(6.0)
    assert got.loc["know", "conversions"] == 0 and np.isnan(got.loc["know", "minutes_to_conversion"])
    lo, hi = proportion_confint(1, 2, method="wilson")
    assert got.loc["buy", "conversion_rate_low"] == pytest.approx(lo)


def test_engagement_by_hand():
    c = ibis.duckdb.connect()
    c.create_table("events", _shop_events())
    got = c.execute(mx.engagement(sessions(sessionize(c.table("events"))), ["channel"])).set_index("channel")
    assert got.loc["email", "events_per_session"] == 3
    assert got.loc["email", "dwell_seconds_per_session"] == 360
    assert got.loc["email", "return_rate"] == 1.0  # p1 came back
    assert got.loc["social", "return_rate"] == 0.0 and got.loc["app", "return_rate"] == 0.0
