"""The measure metrics expressions give the same result on DuckDB and on PySpark (local mode)."""

from __future__ import annotations


import ibis
import pandas as pd
import pyarrow as pa
import pytest

from micromoments.journey import assign_stages, episodes, sessionize
from micromoments.journey.sessions import sessions
from micromoments.measure import metrics as mx
from test_measure_metrics import _activation
from test_report import journey_events
from test_spark import _normal

pytestmark = [pytest.mark.slow, pytest.mark.spark,
              pytest.mark.filterwarnings("ignore:The .future.infer_string. option"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning")]


@pytest.fixture(scope="module")
def engines(spark_session):
    duck = ibis.duckdb.connect()
    spark = ibis.pyspark.connect(spark_session)
    frames = _activation()
    ev, em = journey_events(people=150)
    ev = ev.merge(em[["message_id", "moment", "go_type", "confidence"]], on="message_id", how="left")
    frames["events"] = ev.astype({"moment": "string", "go_type": "string", "confidence": "float64"})
    for name, frame in frames.items():
        duck.create_table(name, frame)
        # Through Arrow: pandas string columns are chunked Arrow arrays, which the pandas path cannot convert.
        spark_session.createDataFrame(pa.Table.from_pandas(frame, preserve_index=False)).createOrReplaceTempView(name)
    return duck, spark


def _both(engines, build):
    duck, spark = engines
    a = _normal(duck.execute(build(duck)))
    b = _normal(spark.execute(build(spark)))
    assert len(a) > 1
    pd.testing.assert_frame_equal(a, b[a.columns], check_dtype=False, rtol=1e-9, atol=1e-9)
    return a


def test_activation_metrics_same_on_spark(engines):
    def build(con):
        return mx.activation_metrics(con.table("decisions"), con.table("exposures"), con.table("outcomes"),
                                     ["moment", "channel"])

    a = _both(engines, build)
    frames = _activation()
    assert a.exposures.sum() == len(frames["exposures"])
    assert a.clicks.sum() == (frames["outcomes"].kind == "click").sum()
    assert ((a.ctr_low <= a.ctr) & (a.ctr <= a.ctr_high)).all()


def test_moment_metrics_and_engagement_same_on_spark(engines):
    def build_moments(con):
        s = sessionize(con.table("events"))
        ep = assign_stages(episodes(s))
        return mx.moment_metrics(ep, s, ["moment", "stage"]).drop("median_minutes_to_conversion")  # approx on Spark

    a = _both(engines, build_moments)
    assert a.moments.sum() > 100 and a.conversions.sum() > 0

    def build_eng(con):
        return mx.engagement(sessions(sessionize(con.table("events"))), ["channel"])

    e = _both(engines, build_eng)
    assert (e.return_rate <= 1).all()
