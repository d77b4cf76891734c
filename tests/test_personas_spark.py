"""The person-features Ibis expression gives the same result on DuckDB and on PySpark."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest

from micromoments.journey.pipeline import build_journey
from micromoments.personas.features import FeatureSettings, person_features
from micromoments.journey.heatmap import utc_offsets
from test_report import journey_events

pytestmark = [pytest.mark.slow, pytest.mark.spark,
              pytest.mark.filterwarnings("ignore:The .future.infer_string. option"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning")]


def _events() -> pd.DataFrame:
    frame, em = journey_events(people=60)
    frame = frame.merge(em[["message_id", "moment", "go_type", "confidence"]], on="message_id", how="left")
    frame["lat"] = 51.5 + (frame.person_id.str.len() % 7) * 0.05
    frame["lon"] = -0.12
    frame["timezone"] = "Europe/London"
    return frame.astype({"moment": "string", "go_type": "string", "confidence": "float64"})


def test_person_features_same_on_duckdb_and_spark(spark_session):
    frame = _events()
    duck = ibis.duckdb.connect()
    duck.create_table("ev", frame)
    spark = ibis.pyspark.connect(spark_session)
    spark_session.createDataFrame(frame).createOrReplaceTempView("ev")
    stores = pd.DataFrame({"store_id": ["S1", "S2"], "lat": [51.5, 53.8], "lon": [-0.12, -1.55]})
    settings = FeatureSettings(stores=stores)
    offsets = utc_offsets(["Europe/London"], 2026, 2026)

    def run(con):
        ev = con.table("ev")
        expr = person_features(ev, build_journey(ev), settings, offsets=offsets)
        out = con.execute(expr)
        for c in out.columns:
            if pd.api.types.is_datetime64_any_dtype(out[c]):
                out[c] = pd.to_datetime(out[c]).dt.tz_localize(None).astype("datetime64[us]")
            elif pd.api.types.is_numeric_dtype(out[c]) or pd.api.types.is_bool_dtype(out[c]):
                out[c] = pd.to_numeric(out[c]).astype("float64")
            else:
                out[c] = out[c].astype(object).where(out[c].notna(), None)
        return out.sort_values("person_id").reset_index(drop=True)

    a, b = run(duck), run(spark)
    assert len(a) == frame.person_id.nunique() > 0
    assert a.moment_buy.sum() > 0 and a.orders.sum() > 0 and a.store_km.notna().all()
    pd.testing.assert_frame_equal(a, b[a.columns], check_dtype=False, rtol=1e-9, atol=1e-9)
