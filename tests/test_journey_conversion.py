"""Both conversion definitions (`journey.conversion`) on hand-built journeys, for every moment and stage."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest

from conftest import events_frame
from micromoments.journey.conversion import explanation, purchases, rates, window_text, with_conversions
from micromoments.journey.maps import journey_map
from micromoments.journey.pipeline import JourneySettings, build_journey

pytestmark = pytest.mark.filterwarnings("ignore:The .future.infer_string. option")


def rows() -> list[dict]:
    """Five people; the comment on each first event says what each moment should count as."""
    return [
        # K: know (day 1), gone; back on day 3 to buy -> know: not same visit, within 7 days.
        dict(person_id="K", ts="2026-03-02 09:00", event="Products Searched", query="how do heat pumps work", moment="know"),
        dict(person_id="K", ts="2026-03-04 10:00", event="Products Searched", query="buy heat pump", moment="buy"),
        dict(person_id="K", ts="2026-03-04 10:05", event="Product Added", page_path="/p/hp"),
        dict(person_id="K", ts="2026-03-04 10:09", event="Order Completed", revenue=900.0),
        # G: go, then do, then a purchase, one visit -> both moments bought in the same visit (the
        # old "before the next moment" rule credited only `do`).
        dict(person_id="G", ts="2026-03-02 12:00", event="Products Searched", query="diy store near me", moment="go"),
        dict(person_id="G", ts="2026-03-02 12:05", event="Products Searched", query="how to fit a shelf", moment="do"),
        dict(person_id="G", ts="2026-03-02 12:20", event="Order Completed", revenue=30.0),
        # D: do, a purchase ten days later -> outside the 7-day window: neither.
        dict(person_id="D", ts="2026-03-02 08:00", event="Products Searched", query="how to paint a door", moment="do"),
        dict(person_id="D", ts="2026-03-12 08:00", event="Order Completed", revenue=20.0),
        # B: buy search and product views, never buys -> neither.
        dict(person_id="B", ts="2026-03-03 15:00", event="Products Searched", query="buy oak door", moment="buy"),
        dict(person_id="B", ts="2026-03-03 15:02", event="Product Viewed", page_path="/p/oak", moment="buy"),
        # P: bought on day 1; a know moment on day 2 (post-purchase), then buys again on day 4 and
        # twice more that day: counted once -> know: not same visit, within 7 days.
        dict(person_id="P", ts="2026-03-02 07:00", event="Order Completed", revenue=10.0),
        dict(person_id="P", ts="2026-03-03 07:00", event="Products Searched", query="how to clean a filter", moment="know"),
        dict(person_id="P", ts="2026-03-05 07:00", event="Order Completed", revenue=10.0),
        dict(person_id="P", ts="2026-03-05 07:01", event="Order Completed", revenue=10.0),
        dict(person_id="P", ts="2026-03-05 19:00", event="Order Completed", revenue=10.0),
    ]


# (person, moment) -> (bought same visit, bought within 7 days)
EXPECTED = {
    ("K", "know"): (False, True), ("K", "buy"): (True, True),
    ("G", "go"): (True, True), ("G", "do"): (True, True),
    ("D", "do"): (False, False),
    ("B", "buy"): (False, False),
    ("P", "know"): (False, True),
}


@pytest.fixture(params=["ibis", "kernel"])
def flagged(request) -> pd.DataFrame:
    con = ibis.duckdb.connect()
    events = con.create_table("events", events_frame(rows()))  # the kernel reads a table of `con`
    j = build_journey(events, JourneySettings(), con=con, method=request.param)
    t = with_conversions(j.episodes, purchases(j.sessionized), window_days=7)
    return con.execute(t).sort_values(["person_id", "secs_start"])


def test_every_episode_gets_both_definitions(flagged: pd.DataFrame) -> None:
    got = {(r.person_id, r.moment): (bool(r.converted_session), bool(r.converted_window)) for r in flagged.itertuples()}
    assert got == EXPECTED
    # The old flag credits only the moment right before the purchase: G's go reads as not converted.
    old = flagged.set_index(["person_id", "moment"]).converted
    assert not old[("G", "go")] and old[("G", "do")]


def test_rates_for_every_moment_and_stage(flagged: pd.DataFrame) -> None:
    exp = pd.DataFrame([(p, m, s, w) for (p, m), (s, w) in EXPECTED.items()],
                       columns=["person_id", "moment", "same", "window"])
    by_moment = rates(flagged, "moment").set_index("moment")
    assert set(by_moment.index) == {"know", "go", "do", "buy"}
    for m, grp in exp.groupby("moment"):
        assert by_moment.loc[m, "episodes"] == len(grp)
        assert by_moment.loc[m, "same_session_rate"] == pytest.approx(grp.same.mean())
        assert by_moment.loc[m, "window_rate"] == pytest.approx(grp.window.mean())
    # know: K not same visit / within window, P the same -> 0% and 100%, not the "0% convert" of old.
    assert by_moment.loc["know", "same_session_rate"] == 0 and by_moment.loc["know", "window_rate"] == 1

    staged = flagged.merge(exp, on=["person_id", "moment"])
    assert set(staged.stage) == {"awareness", "consideration", "decision", "post-purchase"}
    by_stage = rates(flagged, "stage").set_index("stage")
    for st, grp in staged.groupby("stage"):
        assert by_stage.loc[st, "same_session_rate"] == pytest.approx(grp.same.mean())
        assert by_stage.loc[st, "window_rate"] == pytest.approx(grp.window.mean())
    assert staged.set_index("person_id").loc["P", "stage"] == "post-purchase"


def test_window_length_is_honoured() -> None:
    con = ibis.duckdb.connect()
    j = build_journey(ibis.memtable(events_frame(rows())), JourneySettings(), con=con, method="ibis")
    wide = con.execute(with_conversions(j.episodes, purchases(j.sessionized), window_days=14))
    narrow = con.execute(with_conversions(j.episodes, purchases(j.sessionized), window_days=1))
    assert wide.set_index("person_id").loc["D", "converted_window"]  # ten days: inside 14
    n = narrow.set_index(["person_id", "moment"])
    assert not n.loc[("K", "know"), "converted_window"]  # two days: outside 1
    assert n.loc[("G", "go"), "converted_window"]  # 20 minutes
    assert window_text(1) == "1 day" and "14 days" in explanation(14)


def test_journey_map_carries_both_rates() -> None:
    con = ibis.duckdb.connect()
    j = build_journey(ibis.memtable(events_frame(rows())), JourneySettings(), con=con, method="ibis")
    jm = con.execute(journey_map(with_conversions(j.episodes, purchases(j.sessionized))))
    cell = jm.set_index(["stage", "moment"])
    know = cell.xs("know", level="moment")
    assert (know.window_rate == 1).all() and (know.same_session_rate == 0).all()
    assert {"same_session_rate", "window_rate"} <= set(jm.columns)
