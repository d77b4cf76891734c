"""Shared fixtures: hand-built events in the store's `events` schema, and one SparkSession."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from micromoments.store.schema import EVENTS_COLUMNS

_PANDAS_TYPES = {"VARCHAR": "string", "TIMESTAMP": "datetime64[us]", "DOUBLE": "float64", "BIGINT": "Int64"}
EXTRA_COLUMNS = {"moment": "VARCHAR", "go_type": "VARCHAR", "confidence": "DOUBLE"}


def events_frame(rows: list[dict[str, Any]], *, with_moments: bool = True) -> pd.DataFrame:
    """A DataFrame with every `events` column (plus moment columns), filled from `rows`.

    Rows give `person_id`, `ts` (datetime or 'YYYY-MM-DD HH:MM[:SS]') and whatever else they need;
    `message_id` defaults to a running number and `type` to 'track'.
    """
    columns = dict(EVENTS_COLUMNS, **(EXTRA_COLUMNS if with_moments else {}))
    records = []
    for i, row in enumerate(rows):
        rec: dict[str, Any] = {c: None for c in columns}
        rec.update(message_id=f"m{i:05d}", type="track")
        rec.update(row)
        if isinstance(rec["ts"], str):
            rec["ts"] = dt.datetime.fromisoformat(rec["ts"])
        if isinstance(rec.get("properties"), dict):
            rec["properties"] = json.dumps(rec["properties"])
        if rec.get("user_id") is None:
            rec["user_id"] = rec["person_id"]
        records.append(rec)
    frame = pd.DataFrame.from_records(records, columns=list(columns))
    return frame.astype({c: _PANDAS_TYPES[t] for c, t in columns.items()})


def classified_demo_store(out: Path, *, users: int = 300, days: int = 14, seed: int = 5,
                          config: Any = None) -> tuple[Any, Any]:
    """(store, paths): generated demo events under `out`, ingested and classified by the intent engine."""
    from micromoments.demo import generate
    from micromoments.intent import classify_store
    from micromoments.store import Store
    from micromoments.store.ingest import ingest_file

    paths = generate(out / "data", users=users, days=days, seed=seed, workers=1)
    store = Store(out / "m.duckdb")
    ingest_file(store, paths.events, config=config)
    classify_store(store, config)
    return store, paths


@pytest.fixture
def make_events():
    """`make_events(rows)` -> DataFrame in the events schema (see `events_frame`)."""
    return events_frame


@pytest.fixture(scope="session")
def spark_session():
    """One local SparkSession for the whole test run (2 cores, few shuffle partitions, UTC)."""
    pyspark = pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers need this venv's pyarrow and duckdb
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("micromoments-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    assert pyspark.__version__.startswith("4.0")
    yield spark
    spark.stop()
