"""The store on Spark: a lake of Parquet datasets, one folder per table, read through Ibis.

`<lake>/events` is partitioned by event date (`event_date=YYYY-MM-DD`), the other tables
(`quarantine`, `identity_links`, `identities`, `event_moments`, `moments_by_text`, `personas`, ...)
are plain Parquet folders. The lake is a local folder or any URL Spark reads (`s3a://bucket/prefix`,
`hdfs://...`, `abfss://...`).

`LakeStore` offers what the batch commands use from the DuckDB `Store` - `ibis`, `table`,
`has_table`, `count`, `path` - so the same Ibis analytics run on either engine. Each table is a
temp view of the session; `events` is the stored events with `person_id` resolved through
`identities` at read time (stitching rewrites the small `identities`, never the events; the live
loader appends the ids whose person changed, and the latest row per id wins: `latest_identities`).
A table the lake does not hold yet reads as empty with the schema's columns, as in a new DuckDB store.

>>> # store = LakeStore("micromoments-lake", get_spark(load_config().spark)); store.count("events")
"""

from __future__ import annotations

import os
from typing import Any

import ibis
import pandas as pd
import pyarrow as pa

from micromoments.errors import StoreError
from micromoments.store import ibis_spark_fixes
from micromoments.store.schema import EVENTS_COLUMNS, TABLES

# The Spark type of each DuckDB type the schema uses.
SPARK_TYPES = {"VARCHAR": "string", "DOUBLE": "double", "BIGINT": "bigint", "TIMESTAMP": "timestamp",
               "INTEGER": "int", "BOOLEAN": "boolean", "DATE": "date"}
PARTITION_COLUMN = "event_date"
LIVE_PREFIX = "live-"  # the live loader's files (activation/lake_loader.py)


def spark_ddl(columns: dict[str, str]) -> str:
    """A Spark DDL schema string for a schema.py column dict.

    >>> spark_ddl({"a": "VARCHAR", "n": "BIGINT"})
    '`a` string, `n` bigint'
    """
    return ", ".join(f"`{c}` {SPARK_TYPES[t]}" for c, t in columns.items())


def is_local(url: str) -> bool:
    """True for a folder on this machine (no scheme, or file://)."""
    return "://" not in url or url.startswith("file://")


def prepare_lake(path: str, *, create: bool) -> None:
    """Make a local lake's folder (`create`), or fail with the fix when a command that reads finds none
    (checked before Spark starts, which takes seconds)."""
    folder = str(path).rstrip("/").removeprefix("file://")
    if is_local(str(path)) and not os.path.isdir(folder):
        if not create:
            raise StoreError("no lake at this path", where=str(path),
                             hint="ingest events first (micromoments --engine spark ingest FILE), "
                                  "or name the lake with --db or [store] lake in micromoments.toml")
        os.makedirs(folder, exist_ok=True)


class LakeStore:
    """The lake at `path` on the SparkSession `spark` (see the module docstring)."""

    engine = "spark"

    def __init__(self, path: str, spark: Any, *, read_only: bool = False, create: bool = True):
        self.path = str(path).rstrip("/")
        self.spark = spark
        self.read_only = read_only
        prepare_lake(self.path, create=create and not read_only)
        ibis_spark_fixes.apply()
        self.ibis = ibis.pyspark.connect(spark)
        self._present: set[str] = set(self._listed())
        self._views: set[str] = set()

    # -- where tables live
    def url(self, name: str) -> str:
        """The folder (or URL) of table `name`."""
        return f"{self.path}/{name}"

    def _stored(self, name: str) -> Any | None:
        """The table's Parquet as a Spark DataFrame, or None when the lake has no such table."""
        url = self.url(name)
        if is_local(url) and not _has_parquet(url.removeprefix("file://")):
            return None
        try:
            return self.spark.read.parquet(url)
        except Exception as exc:  # AnalysisException PATH_NOT_FOUND (or an empty folder)
            if "PATH_NOT_FOUND" in str(exc) or "UNABLE_TO_INFER_SCHEMA" in str(exc):
                return None
            raise StoreError(f"cannot read lake table '{name}': {str(exc).splitlines()[0][:300]}", where=url,
                             hint="check [store] lake and the object store credentials in [spark.conf]") from exc

    def refresh(self, *names: str) -> None:
        """Register the views of `names` (default: every view so far) again after the lake changed
        (so SQL on a view never reads the files it had before); `events` follows `identities`."""
        names = names or tuple(self._views)
        if "identities" in names:
            names = (*names, "events")
        for name in dict.fromkeys(names):
            self._views.discard(name)
            self.view(name)

    def view(self, name: str) -> Any:
        """Table `name` as a Spark DataFrame (registered as the temp view `name`)."""
        if name not in self._views:
            frame = self._stored(name)
            if frame is None:
                self._present.discard(name)
                if name not in TABLES:
                    raise StoreError(f"table '{name}' does not exist", where=self.url(name),
                                     hint="run `micromoments ingest` (or the step that builds it) first")
                frame = self.spark.createDataFrame([], spark_ddl(TABLES[name]))
            else:
                self._present.add(name)
                if name == "identities":
                    frame = latest_identities(frame)
            if name == "events":
                frame = self._events_view(frame)
            frame.createOrReplaceTempView(name)
            self._views.add(name)
        return self.spark.table(name)

    def _listed(self) -> list[str]:
        # The tables a local lake holds, from its folder (no Spark job); a remote lake is asked per table.
        folder = self.path.removeprefix("file://")
        if not is_local(self.path):
            return [name for name in [*TABLES, "predict_runs"] if self._stored(name) is not None]
        if not os.path.isdir(folder):
            return []
        return sorted(f for f in os.listdir(folder) if not f.startswith(("_", ".")) and _has_parquet(os.path.join(folder, f)))

    def _events_view(self, events: Any) -> Any:
        """The events with `person_id` from `identities` (the stored one when the id is unknown)."""
        from pyspark.sql import functions as F

        columns = [c for c in EVENTS_COLUMNS if c in events.columns]
        extra = [c for c in events.columns if c not in EVENTS_COLUMNS and c != PARTITION_COLUMN]
        ids = self._stored("identities")
        if ids is None:
            return events.select(*columns, *extra)
        ids = latest_identities(ids)
        ids = ids.select(F.col("id").alias("_id"), F.col("person_id").alias("_pid"))
        joined = events.join(ids, F.coalesce(events.user_id, events.anonymous_id) == ids._id, "left")
        return joined.select(*[F.coalesce("_pid", "person_id").alias("person_id") if c == "person_id" else c
                               for c in columns], *extra)

    @property
    def duck(self) -> Any:
        """The steps still written in DuckDB SQL (search data, the /app pages, `declared_features`) say so."""
        raise StoreError("this command runs on DuckDB only, not on the lake", where=self.path,
                         hint="run it with --engine duckdb (docs/deploy.md lists what runs on Spark)")

    # -- what the commands use
    def has_table(self, name: str) -> bool:
        """True for a table the lake holds, and for every schema table (empty until written)."""
        return name in self._present or name in TABLES

    def table(self, name: str) -> ibis.Table:
        """Table `name` as an Ibis table on the Spark backend."""
        self.view(name)
        return self.ibis.table(name)

    def count(self, name: str) -> int:
        """Rows in table `name` (0 for a schema table not written yet)."""
        return int(self.view(name).count()) if self.has_table(name) else 0

    def execute(self, expr: Any) -> pd.DataFrame:
        return self.ibis.execute(expr)

    def write_table(self, name: str, data: Any, *, mode: str = "overwrite", partition_by: str | None = None) -> None:
        """Write `data` (pandas, Arrow or a Spark DataFrame) as table `name`, replacing it or (`mode="append"`)
        adding to it, then refresh its view."""
        if self.read_only:
            raise StoreError(f"cannot write '{name}': the store was opened read-only", where=self.path)
        frame = self.to_spark(data)
        writer = frame.write.mode(mode)
        if partition_by:
            writer = writer.partitionBy(partition_by)
        writer.parquet(self.url(name))
        self._present.add(name)
        self.refresh(name)

    def to_spark(self, data: Any) -> Any:
        """A Spark DataFrame from pandas, Arrow or a Spark DataFrame (sent through Arrow)."""
        if isinstance(data, pa.Table):
            data = data.to_pandas(types_mapper=pd.ArrowDtype) if data.num_rows else data.to_pandas()
        if isinstance(data, pd.DataFrame):
            if data.empty:
                return self.spark.createDataFrame(data.astype(object).where(data.notna(), None).head(0),
                                                  _pandas_ddl(data))
            return self.spark.createDataFrame(data)
        return data

    def close(self) -> None:
        """Nothing to release: the SparkSession belongs to the process (and may be shared)."""

    def __enter__(self) -> "LakeStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def latest_identities(ids: Any) -> Any:
    """`identities` with one row per id: the live loader appends the ids whose person changed as
    `live-<round>.parquet` files (their names sort by time); the latest of those wins over older ones
    and over the table a compaction or ingest wrote (which deleted every delta it had folded in).
    Without delta files the table is returned as it is (no extra job).

    >>> # latest_identities(spark.read.parquet("micromoments-lake/identities")).count()
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if not any(os.path.basename(f).startswith(LIVE_PREFIX) for f in ids.inputFiles()):
        return ids
    name = F.col("_metadata.file_name")
    order = F.when(name.startswith(LIVE_PREFIX), name).otherwise(F.lit(""))
    ranked = ids.select("*", order.alias("_order")).withColumn(
        "_n", F.row_number().over(Window.partitionBy("id").orderBy(F.col("_order").desc())))
    return ranked.where("_n = 1").select(*ids.columns)


def _has_parquet(folder: str) -> bool:
    return os.path.isdir(folder) and any(
        f.endswith(".parquet") or f.startswith(f"{PARTITION_COLUMN}=") for f in os.listdir(folder))


def _pandas_ddl(frame: pd.DataFrame) -> str:
    kinds = []
    for col, dtype in frame.dtypes.items():
        kind = ("double" if pd.api.types.is_float_dtype(dtype) else "bigint" if pd.api.types.is_integer_dtype(dtype)
                else "boolean" if pd.api.types.is_bool_dtype(dtype)
                else "timestamp" if pd.api.types.is_datetime64_any_dtype(dtype) else "string")
        kinds.append(f"`{col}` {kind}")
    return ", ".join(kinds)
