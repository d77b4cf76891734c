"""`micromoments ingest` with engine = "spark": the same reading, mapping, quarantine and keying as
DuckDB, then the lake's own steps as Spark jobs.

1. The file is read, mapped, validated and keyed by `store.ingest.ingest_file` into a scratch DuckDB
   store (seeded with the lake's id links, so events are keyed to the people already known): one
   implementation of every reader, mapping and quarantine reason for both engines.
2. Spark appends the new events (an anti-join on `message_id` drops those the lake holds: re-ingesting
   is harmless) to `<lake>/events`, partitioned by event date, and the rejected rows to `<lake>/quarantine`.
3. New id links are appended to `<lake>/identity_links` and `identities` is recomputed by label
   propagation on Spark (`lake_identity`); events get their person through it when read.

>>> # result = ingest_to_lake(store, "events.jsonl", config=cfg)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from micromoments.config import Config
from micromoments.store import Store
from micromoments.store.ingest import IngestResult, Progress, ingest_file
from micromoments.store.lake import PARTITION_COLUMN
from micromoments.store.lake_identity import write_identities

UPLOAD_ROWS = 500_000  # rows per Arrow batch sent to a session that cannot read this machine's files


def ingest_to_lake(store: Any, path: str | Path, *, fmt: str | None = None, mapping: str | dict[str, str] | None = None,
                   config: Config | None = None, on_progress: Progress | None = None) -> IngestResult:
    """Load one file into the lake of `store` (a `LakeStore`); see the module docstring."""
    from pyspark.sql import functions as F

    spark = store.spark
    with tempfile.TemporaryDirectory(prefix="mm-lake-ingest-") as tmp:
        scratch = Store(os.path.join(tmp, "scratch.duckdb"))
        try:
            if "identity_links" in store._present:  # keyed to the people the lake knows
                scratch.duck.register("_lake_links", _to_arrow(store.view("identity_links")))
                scratch.duck.execute("INSERT INTO identity_links SELECT a, b, via FROM _lake_links")
                scratch.duck.unregister("_lake_links")
            result = ingest_file(scratch, path, fmt=fmt, mapping=mapping, config=config, on_progress=on_progress)
            staged = {}
            for name in ("events", "quarantine", "identity_links"):
                out = os.path.join(tmp, f"{name}.parquet")
                scratch.duck.execute(f"COPY {name} TO '{out}' (FORMAT PARQUET)")
                staged[name] = out
        finally:
            scratch.close()

        before = store.count("events")
        events = _upload(store, staged["events"])
        if "events" in store._present:
            events = events.join(spark.read.parquet(store.url("events")).select("message_id"), "message_id", "left_anti")
        events = events.withColumn(PARTITION_COLUMN, F.to_date("ts"))
        events.write.mode("append").partitionBy(PARTITION_COLUMN).parquet(store.url("events"))
        store.refresh("events")
        added = store.count("events") - before
        result.duplicates += result.loaded - added
        result.loaded = added

        if pq.read_metadata(staged["quarantine"]).num_rows:
            _upload(store, staged["quarantine"]).write.mode("append").parquet(store.url("quarantine"))
        links = _upload(store, staged["identity_links"])
        if "identity_links" in store._present:
            links = links.join(spark.read.parquet(store.url("identity_links")).select("a", "b"), ["a", "b"], "left_anti")
        links.write.mode("append").parquet(store.url("identity_links"))
    store._present.update(("identity_links", "quarantine"))
    store.refresh()
    write_identities(store)
    return result


def _upload(store: Any, parquet: str) -> Any:
    """A Spark DataFrame of a Parquet file on this machine: read in place by a local session,
    sent through Arrow to a cluster (Spark Connect or a remote master cannot see this disk)."""
    spark = store.spark
    if _sees_local_files(spark):
        return spark.read.parquet(parquet)
    table = pq.read_table(parquet)
    parts = [spark.createDataFrame(table.slice(i, UPLOAD_ROWS).to_pandas())
             for i in range(0, max(table.num_rows, 1), UPLOAD_ROWS)]
    frame = parts[0]
    for p in parts[1:]:
        frame = frame.unionByName(p)
    return frame


def _sees_local_files(spark: Any) -> bool:
    try:
        return str(spark.sparkContext.master).startswith("local")
    except Exception:  # Spark Connect has no SparkContext: the server does not see our disk
        return False


def _to_arrow(frame: Any) -> pa.Table:
    return pa.Table.from_pandas(frame.toPandas(), preserve_index=False)
