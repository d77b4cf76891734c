"""Funnel counts for every mode and window on a hand-built set with known answers."""

from __future__ import annotations

import datetime as dt

import ibis
import pytest

from conftest import events_frame
from micromoments.errors import InputError
from micromoments.journey.funnels import funnel, funnel_people

pytestmark = pytest.mark.filterwarnings("ignore:The .future.infer_string. option")

STEPS = ["view", "cart", "purchase"]
HOUR = dt.timedelta(hours=1)


def funnel_rows() -> list[dict]:
    def e(p: str, ts: str, event: str, channel: str = "web") -> dict:
        return dict(person_id=p, ts=f"2026-02-10 {ts}", event=event, channel=channel)

    return [
        # P1: the whole funnel in 20 minutes, nothing in between.
        e("P1", "10:00", "view"), e("P1", "10:10", "cart"), e("P1", "10:20", "purchase"),
        # P2: a page view between view and cart; the purchase comes 2 h after the view.
        e("P2", "10:00", "view"), e("P2", "10:05", "page"), e("P2", "10:10", "cart"), e("P2", "12:00", "purchase"),
        # P3: all three steps, but cart before view.
        e("P3", "09:00", "cart"), e("P3", "09:10", "view"), e("P3", "09:20", "purchase"),
        # P4: an old view (social) that times out, then a full run from an email visit.
        e("P4", "08:00", "view", "social"), e("P4", "11:00", "view", "email"),
        e("P4", "11:30", "cart", "email"), e("P4", "11:50", "purchase", "email"),
        # P5: only a purchase.
        e("P5", "10:00", "purchase"),
    ]


@pytest.fixture
def events() -> ibis.Table:
    return ibis.memtable(events_frame(funnel_rows()))


def counts(events: ibis.Table, **kwargs) -> list[int]:
    out = ibis.duckdb.connect().execute(funnel(events, STEPS, **kwargs)).sort_values(["breakdown", "step"])
    return out.people.tolist()


@pytest.mark.parametrize(
    ("mode", "window", "expected"),
    [
        ("ordered", HOUR, [4, 3, 2]),
        ("ordered", 3 * HOUR, [4, 3, 3]),
        ("ordered", dt.timedelta(minutes=15), [4, 2, 0]),
        ("strict", HOUR, [4, 2, 2]),
        ("strict", 3 * HOUR, [4, 2, 2]),
        ("unordered", HOUR, [5, 4, 3]),
        ("unordered", 3 * HOUR, [5, 4, 4]),
    ],
)
def test_people_per_step(events: ibis.Table, mode: str, window: dt.timedelta, expected: list[int]) -> None:
    assert counts(events, mode=mode, window=window) == expected


def test_drop_off_rates_and_time_to_convert(events: ibis.Table) -> None:
    out = ibis.duckdb.connect().execute(funnel(events, STEPS, window=HOUR)).sort_values("step")
    assert out.dropoff.tolist() == [1, 1, 0]
    assert out.conversion_from_start.tolist() == pytest.approx([1.0, 0.75, 0.5])
    assert out.conversion_from_previous.tolist() == pytest.approx([1.0, 0.75, 2 / 3])
    # P1 converts in 1200 s, P4 in 3000 s.
    assert out.median_s_from_start.tolist()[2] == 2100
    # view -> cart: P1 600, P2 600, P4 1800.
    assert out.median_s_from_previous.tolist()[1] == 600


def test_breakdown_is_first_touch_of_the_best_attempt(events: ibis.Table) -> None:
    out = ibis.duckdb.connect().execute(funnel(events, STEPS, window=HOUR, breakdown="channel"))
    table = out.pivot(index="breakdown", columns="step", values="people")
    assert table.loc["web"].tolist() == [3, 2, 1]
    assert table.loc["email"].tolist() == [1, 1, 1]
    assert "social" not in table.index


def test_steps_as_moment_types() -> None:
    from test_journey import scenario_rows

    events = ibis.memtable(events_frame(scenario_rows()))
    out = ibis.duckdb.connect().execute(funnel(events, ["know", "buy", "do"], by="moment", window=dt.timedelta(days=7)))
    assert out.sort_values("step").people.tolist() == [1, 1, 1]
    # Mixed: a moment step then an event step, within 1 day: A only.
    out = ibis.duckdb.connect().execute(funnel(events, ["moment:know", "event:Order Completed"], window=dt.timedelta(days=1)))
    assert out.sort_values("step").people.tolist() == [1, 1]


def test_each_person_counts_once(events: ibis.Table) -> None:
    people = ibis.duckdb.connect().execute(funnel_people(events, STEPS, window=HOUR))
    assert not people.duplicated(["person_id", "level"]).any()
    assert people.groupby("person_id")["level"].max().to_dict() == {"P1": 3, "P2": 2, "P3": 1, "P4": 3}


def test_bad_arguments_say_how_to_fix(events: ibis.Table) -> None:
    with pytest.raises(InputError, match="at least 2 steps"):
        funnel(events, ["view"])
    with pytest.raises(InputError, match="unknown funnel mode 'loose'"):
        funnel(events, STEPS, mode="loose")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="no column 'persona'"):
        funnel(events, STEPS, breakdown="persona")
