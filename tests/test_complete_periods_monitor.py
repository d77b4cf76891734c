"""The report's monitoring compares complete days only: trailing days the overview leaves out as
incomplete (journey.periods.complete_until) are neither checked nor in the drift window."""

from __future__ import annotations

import pandas as pd

from conftest import events_frame
from micromoments.config import Config
from micromoments.measure.monitoring import run_monitor
from micromoments.store import Store
from micromoments.store.schema import EVENTS_COLUMNS

START = pd.Timestamp("2026-04-01")
FULL_DAYS = 30


def rows() -> list[dict]:
    """30 full days (events until 23:30), then two nearly empty days whose data stops at 02:00."""
    out = []
    moments = ("know", "go", "do", "buy")
    for d in range(FULL_DAYS + 2):
        day = START + pd.Timedelta(days=d)
        hours = range(0, 24) if d < FULL_DAYS else range(0, 2)
        for h in hours:
            m = moments[h % 4]
            ts = day + pd.Timedelta(hours=h, minutes=30)
            out.append(dict(person_id=f"p{d}-{h}", ts=ts.to_pydatetime(), event="Products Searched",
                            query=f"{m} query {h}", moment=m, confidence=0.9))
    return out


def test_monitoring_leaves_out_every_partial_trailing_day(tmp_path) -> None:
    store = Store(tmp_path / "m.duckdb")
    frame = events_frame(rows())
    store.duck.register("_frame", frame)
    store.duck.execute(f"INSERT INTO events SELECT {', '.join(EVENTS_COLUMNS)} FROM _frame")
    store.duck.execute("CREATE TABLE event_moments AS SELECT message_id, moment, go_type, confidence FROM _frame")
    r = run_monitor(store, Config(), backtest=True)
    last_full = START + pd.Timedelta(days=FULL_DAYS - 1)
    assert pd.Timestamp(r.checks.day.max()) == last_full  # the two partial days are not checked
    mix = next(d for d in r.drift if d["check"] == "moment_mix")
    assert mix["last_day"] == str(last_full.date())
    assert mix["first_day"] == str((last_full - pd.Timedelta(days=6)).date())
    store.close()
