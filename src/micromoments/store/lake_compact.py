"""`micromoments lake compact`: rewrite the lake's many small files into few, as Spark jobs.

The live loader appends a file per table (and per event date) every round, and each batch ingest
adds its own: reads slow down with the file count. Compaction, per table:

- reads exactly the files listed at its start (files the live loader appends meanwhile stay as they are);
- `events`: keeps one row per `message_id` (the earliest received), one file per event date
  (more when a date holds over `max_rows_per_file` rows); `identity_links`: one row per link;
  `quarantine`: exact repeats dropped (a refused row stored twice by a crash); other tables keep every row;
- writes the result to `<lake>/_compact/<id>/` (readers skip `_` folders), commits a journal naming
  the new files and the old ones, moves the new files in and deletes the old (`lake_files`): a crash
  before the journal leaves the lake as it was, after it the next `compact` finishes the swap;
- then recomputes `identities` from all links (`lake_identity`), swapped in the same way.

A table already compact (one file per partition, no duplicates) is left alone, so a second run
changes nothing.

>>> # for t in compact_lake(store): print(t.table, t.files_before, t.files_after, t.duplicates)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from micromoments.store.lake import PARTITION_COLUMN
from micromoments.store.lake_files import JOURNALS, LakeFiles
from micromoments.store.lake_identity import identities_frame

STAGING = "_compact"
PREFIX = "compact-"


@dataclass
class Compacted:
    """What compaction did to one table."""

    table: str
    files_before: int
    files_after: int
    rows_before: int
    rows_after: int
    duplicates: int = 0
    rewritten: bool = False


def compact_lake(store: Any, *, max_rows_per_file: int = 5_000_000) -> list[Compacted]:
    """Compact every table of the lake of `store` (a `LakeStore`); see the module docstring."""
    files = LakeFiles(store.path)
    files.replay(PREFIX)  # a compaction that crashed after its commit: finish it
    _clear_staging(files)
    run = f"{PREFIX}{time.time_ns():020d}"
    done = []
    for table in [t for t in store._listed() if t != "identities"]:
        done.append(_compact_table(store, files, table, run, max_rows_per_file))
    if "identity_links" in store._listed():
        done.append(_restitch(store, files, run))
    _clear_staging(files)
    store._present = set(store._listed())
    store.refresh(*store._present)
    return done


def _compact_table(store: Any, files: LakeFiles, table: str, run: str, max_rows: int) -> Compacted:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    old = files.visible(table)
    frame = store.spark.read.option("basePath", store.url(table)).parquet(*[store.url(f) for f in old])
    rows = frame.count()
    out = frame
    if table == "events":
        first = Window.partitionBy("message_id").orderBy(
            F.col("received_at").asc_nulls_last(), F.col("ts").asc_nulls_last(), F.col("_file"))
        out = (frame.withColumn("_file", F.input_file_name()).withColumn("_n", F.row_number().over(first))
               .where("_n = 1").drop("_n", "_file"))
    elif table == "identity_links":
        out = frame.groupBy("a", "b").agg(F.min("via").alias("via")).select(*frame.columns)
    elif table == "quarantine":
        out = frame.dropDuplicates()
    out = out.cache()
    kept = out.count()
    partitioned = PARTITION_COLUMN in frame.columns
    per_part: dict[str, int] = {}
    for f in old:
        per_part[os.path.dirname(f)] = per_part.get(os.path.dirname(f), 0) + 1
    result = Compacted(table, len(old), len(old), rows, kept, duplicates=rows - kept)
    if kept == rows and max(per_part.values(), default=0) <= 1:
        out.unpersist()
        return result  # already compact
    staged = f"{STAGING}/{run}/{table}"
    writer = (out.repartition(PARTITION_COLUMN) if partitioned else out.coalesce(1)).write.mode("overwrite")
    writer = writer.option("maxRecordsPerFile", max_rows)
    (writer.partitionBy(PARTITION_COLUMN) if partitioned else writer).parquet(store.url(staged))
    out.unpersist()
    moves = _moves(files, staged, table, run)
    files.commit(f"{run}-{table}.json", {"moves": moves, "deletes": old})
    result.files_after, result.rewritten = len(moves), True
    return result


def _restitch(store: Any, files: LakeFiles, run: str) -> Compacted:
    """Recompute `identities` from every link; swap it in when it changed."""
    spark = store.spark
    old = files.visible("identities")
    links = spark.read.parquet(*[store.url(f) for f in files.visible("identity_links")])
    fresh = identities_frame(links).cache()
    n = fresh.count()
    result = Compacted("identities", len(old), len(old), n, n)
    if old:
        before = spark.read.parquet(*[store.url(f) for f in old]).select("id", "id_type", "person_id")
        if len(old) == 1 and before.count() == n and not fresh.exceptAll(before).limit(1).count():
            fresh.unpersist()
            return result  # nobody's person changed
        result.rows_before = before.count()
    staged = f"{STAGING}/{run}/identities"
    fresh.coalesce(1).write.mode("overwrite").parquet(store.url(staged))
    fresh.unpersist()
    moves = _moves(files, staged, "identities", run)
    files.commit(f"{run}-identities.json", {"moves": moves, "deletes": old})
    result.files_after, result.rewritten = len(moves), True
    return result


def _moves(files: LakeFiles, staged: str, table: str, run: str) -> list[list[str]]:
    """[staged file, final name] for each Parquet file Spark wrote under `staged`."""
    moves = []
    for i, f in enumerate(files.visible(staged)):
        folder = os.path.dirname(os.path.relpath(f, staged))
        name = f"part-{run}-{i:05d}.parquet"
        moves.append([f, f"{table}/{folder}/{name}" if folder else f"{table}/{name}"])
    return moves


def _clear_staging(files: LakeFiles) -> None:
    """Delete what a compaction left in `_compact` (after `replay`, nothing there is committed)."""
    if files.fs is None:
        import shutil

        shutil.rmtree(files.path(STAGING), ignore_errors=True)
        return
    for f in files.listing(STAGING):
        files.delete(f)


__all__ = ["JOURNALS", "Compacted", "compact_lake"]
