"""Rows without an id: identical rows of one file are separate events, re-ingesting adds nothing,
and the summary says how rows were keyed. Plus the REES46 preset's revenue."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from micromoments.config import Config
from micromoments.predict.rees46 import REES46_MAPPING, write_rees46_csv
from micromoments.store import Store
from micromoments.store.ingest import ingest_file

ROWS = [  # a transaction log with dates and no order id: rows 1 and 2 are a real same-day repeat
    ("c1", "2026-01-05", "29.33"), ("c1", "2026-01-05", "29.33"), ("c2", "2026-01-05", "12.00"),
    ("c1", "2026-01-06", "29.33"), ("c2", "2026-01-05", "12.00"), ("c2", "2026-01-05", "12.00"),
]


def _csv(path: Path, rows=ROWS) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "timestamp", "revenue", "event"])
        w.writerows([(*r, "Order Completed") for r in rows])
    return path


def test_identical_rows_are_kept_and_reingest_adds_nothing(tmp_path):
    store = Store(str(tmp_path / "s.duckdb"))
    path = _csv(tmp_path / "orders.csv")
    first = ingest_file(store, path)
    assert (first.loaded, first.duplicates) == (6, 0)
    assert (first.content_keyed, first.repeats_kept) == (6, 3)
    assert first.keying() == "keyed by content + occurrence (no id): 6 rows, 3 identical repeats kept as events of their own"
    again = ingest_file(store, path)
    assert (again.loaded, again.duplicates) == (0, 6)
    assert store.count("events") == 6
    revenue = store.duck.execute("SELECT sum(revenue) FROM events").fetchone()[0]
    assert revenue == pytest.approx(sum(float(r[2]) for r in ROWS))


def test_occurrences_are_counted_across_chunks(tmp_path):
    """A chunk boundary between two identical rows must not turn the second into a duplicate."""
    path = _csv(tmp_path / "big.csv", ROWS * 50)  # 300 rows, 50 copies of each
    small = Config()
    small.ingest.chunk_lines = 7
    store = Store(":memory:")
    r = ingest_file(store, path, config=small)
    assert (r.loaded, r.duplicates) == (300, 0)
    assert ingest_file(store, path, config=small).loaded == 0
    # ... and the keys do not depend on where the chunks were cut
    other = Store(":memory:")
    ingest_file(other, path)
    ids = lambda s: sorted(x for (x,) in s.duck.execute("SELECT message_id FROM events").fetchall())  # noqa: E731
    assert ids(store) == ids(other)


def test_whole_parquet_keeps_repeats(tmp_path):
    path = tmp_path / "orders.parquet"
    pq.write_table(pa.table({"user_id": [r[0] for r in ROWS], "timestamp": [r[1] for r in ROWS],
                             "revenue": [float(r[2]) for r in ROWS], "event": ["Order Completed"] * len(ROWS)}), path)
    store = Store(":memory:")
    assert ingest_file(store, path).loaded == 6
    assert ingest_file(store, path).loaded == 0
    # the same keys as the CSV of the same rows would not be expected (the text differs), but unique ones
    assert store.duck.execute("SELECT count(DISTINCT message_id) FROM events").fetchone()[0] == 6


def test_jsonl_identical_lines_without_message_id_are_kept(tmp_path):
    line = json.dumps({"type": "track", "event": "Order Completed", "userId": "u1",
                       "timestamp": "2026-01-05T10:00:00Z", "properties": {"revenue": 5}})
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join([line, line, line]) + "\n")
    store = Store(":memory:")
    r = ingest_file(store, path)
    assert (r.loaded, r.repeats_kept) == (3, 2)
    assert ingest_file(store, path).duplicates == 3


def test_rows_with_ids_are_still_deduplicated(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("message_id,user_id,timestamp,event\nm1,u1,2026-01-05,A\nm1,u1,2026-01-05,A\n")
    r = ingest_file(Store(":memory:"), path)
    assert (r.loaded, r.duplicates, r.content_keyed) == (1, 1, 0)
    assert r.keying() == "keyed by message id"


def test_rees46_preset_revenue_is_price_over_purchases(tmp_path):
    path = write_rees46_csv(tmp_path / "r.csv", users=40, days=4, seed=3)
    with path.open() as f:
        rows = list(csv.DictReader(f))
    expected = sum(float(r["price"]) for r in rows if r["event_type"] == "purchase")
    assert expected > 0
    store = Store(":memory:")
    ingest_file(store, path, fmt="csv", mapping=REES46_MAPPING)
    total, on_others, price_kept = store.duck.execute(
        "SELECT sum(revenue), count(revenue) FILTER (WHERE event <> 'purchase'), "
        "count(*) FILTER (WHERE json_extract_string(properties, '$.price') IS NOT NULL) FROM events").fetchone()
    assert total == pytest.approx(expected)
    assert on_others == 0                 # a view's price is not revenue
    assert price_kept == len(rows)        # and every row keeps its price as a property
