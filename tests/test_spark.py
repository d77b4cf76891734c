"""Every journey analytic gives the same result on DuckDB and on Spark (local mode).

One SparkSession for the whole run (see conftest); the same hand-built events are loaded into
both engines and every analytic's output is compared row by row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import ibis
import pandas as pd
import pytest

from conftest import events_frame
from micromoments.journey import assign_stages, episodes, journey_map, path_links, session_features, sessionize, sessions, top_paths
from micromoments.journey.faq import query_stats
from micromoments.journey.funnels import funnel
from micromoments.journey.heatmap import heatmap, utc_offsets
from micromoments.journey.touchpoints import touchpoints
from test_journey import scenario_rows
from test_journey_funnels import STEPS, funnel_rows
from test_journey_insights import touchpoint_rows
from test_report import journey_events

pytestmark = [pytest.mark.slow, pytest.mark.spark,
              pytest.mark.filterwarnings("ignore:The .future.infer_string. option"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning")]


def _shop() -> pd.DataFrame:
    frame, em = journey_events(people=150)
    frame = frame.merge(em[["message_id", "moment", "go_type", "confidence"]], on="message_id", how="left")
    return frame.astype({"moment": "string", "go_type": "string", "confidence": "float64"})


DATASETS: dict[str, Callable[[], pd.DataFrame]] = {
    "journey": lambda: events_frame(scenario_rows()),
    "funnel": lambda: events_frame(funnel_rows()),
    "touch": lambda: events_frame(touchpoint_rows()),
    "shop": _shop,
}


@pytest.fixture(scope="module")
def engines(spark_session):
    duck = ibis.duckdb.connect()
    spark = ibis.pyspark.connect(spark_session)
    for name, make in DATASETS.items():
        frame = make()
        duck.create_table(name, frame)
        spark_session.createDataFrame(frame).createOrReplaceTempView(name)
    return duck, spark


def _normal(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            out[col] = pd.to_datetime(s).dt.tz_localize(None) if getattr(s.dt, "tz", None) else pd.to_datetime(s)
            out[col] = out[col].astype("datetime64[us]")
        elif pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            out[col] = pd.to_numeric(s, errors="coerce").astype("float64")
        else:
            out[col] = s.astype(object).where(s.notna(), None)
    # Mean confidences are rounded to 4 places for display, and parallel sums may differ in their
    # last bit between engines (or runs), which can flip that rounding: keep them out of the sort key.
    keys = [c for c in out.columns if c not in ROUNDED_MEANS] or list(out.columns)
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


ROUNDED_MEANS = ("confidence",)


def same_on_both(engines, table: str, analytic: Callable[[ibis.Table], ibis.Table]) -> pd.DataFrame:
    duck, spark = engines
    a = _normal(duck.execute(analytic(duck.table(table))))
    b = _normal(spark.execute(analytic(spark.table(table))))
    assert len(a) > 0, "the analytic returned nothing: the comparison would prove nothing"
    exact = [c for c in a.columns if c not in ROUNDED_MEANS]
    pd.testing.assert_frame_equal(a[exact], b[exact], check_dtype=False, rtol=1e-9, atol=1e-9)
    for c in set(a.columns) & set(ROUNDED_MEANS):  # one unit in the 4th place, at most
        pd.testing.assert_series_equal(a[c], b[c], check_dtype=False, rtol=0, atol=1.01e-4)
    return a


def staged(t: ibis.Table) -> ibis.Table:
    return assign_stages(episodes(sessionize(t)))


ANALYTICS: dict[str, tuple[str, Callable[[ibis.Table], ibis.Table]]] = {
    "sessionize": ("shop", lambda t: sessionize(t).select("message_id", "session_id", "event_no", "secs")),
    "sessions": ("shop", lambda t: sessions(sessionize(t))),
    "episodes": ("shop", lambda t: staged(t)),
    "session_stages": ("shop", lambda t: assign_stages(session_features(sessionize(t), episodes(sessionize(t))))),
    "journey_map": ("shop", lambda t: journey_map(staged(t))),
    "path_links": ("shop", lambda t: path_links(staged(t))),
    "top_paths": ("shop", lambda t: top_paths(staged(t))),
    "stage_paths": ("journey", lambda t: top_paths(staged(t), by="stage")),
    "funnel_ordered": ("funnel", lambda t: funnel(t, STEPS, window=dt.timedelta(hours=1), breakdown="channel")),
    "funnel_strict": ("funnel", lambda t: funnel(t, STEPS, mode="strict", window=dt.timedelta(hours=1))),
    "funnel_unordered": ("funnel", lambda t: funnel(t, STEPS, mode="unordered", window=dt.timedelta(hours=3))),
    "funnel_moments": ("shop", lambda t: funnel(t, ["know", "buy"], by="moment", window=dt.timedelta(days=3),
                                                breakdown="channel")),
    "funnel_shop": ("shop", lambda t: funnel(t, ["Products Searched", "Product Viewed", "Product Added", "Order Completed"],
                                             window=dt.timedelta(days=1), breakdown="moment")),
    "heatmap": ("shop", lambda t: heatmap(t, ibis.memtable(utc_offsets(
        ["Europe/Paris", "America/New_York", "Asia/Tokyo"], 2026, 2026)))),
    "touchpoints": ("touch", lambda t: touchpoints(sessionize(t), "page")),
    "touchpoints_channel": ("shop", lambda t: touchpoints(sessionize(t), "channel")),
    "query_stats": ("shop", lambda t: query_stats(sessionize(t))),
}


@pytest.mark.parametrize("name", list(ANALYTICS))
def test_duckdb_and_spark_agree(engines, name: str) -> None:
    table, analytic = ANALYTICS[name]
    same_on_both(engines, table, analytic)


def test_spark_episodes_match_the_known_answer(engines) -> None:
    out = same_on_both(engines, "journey", staged)
    assert out.sort_values("episode_id").stage.tolist() == ["awareness", "decision", "post-purchase", "awareness", "awareness"]
