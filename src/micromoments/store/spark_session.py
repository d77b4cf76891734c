"""The SparkSession behind engine = "spark": local mode, a master URL or Spark Connect, from `[spark]`.

A cluster is a config change: `remote = "sc://host:15002"` (Spark Connect) or `master = "spark://host:7077"`
(or "yarn", "k8s://..."), with any Spark conf under `[spark.conf]`. One session per process: a later
call returns the running one (tests share theirs the same way).

>>> from micromoments.config import SparkConfig
>>> session_options(SparkConfig(master="local[2]"))["spark.sql.session.timeZone"]
'UTC'
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from micromoments.errors import ConfigError

# What every micromoments session needs, whatever the cluster: UTC wall times (the store's
# timestamps are naive UTC), Arrow transfers, and timestamps read from Parquet as instants
# (DuckDB writes naive ones; NTZ would make Spark and DuckDB disagree on types).
BASE_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.parquet.inferTimestampNTZ.enabled": "false",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
}
# Runtime settings applied to an existing session too (a shared or remote one).
RUNTIME_CONF = ("spark.sql.session.timeZone", "spark.sql.parquet.inferTimestampNTZ.enabled",
                "spark.sql.execution.arrow.pyspark.enabled")


def local_cores(master: str) -> int | None:
    """The cores of a local-mode master URL, or None for a cluster.

    >>> local_cores("local[2]"), local_cores("local"), local_cores("spark://host:7077")
    (2, 1, None)
    """
    m = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\d+)?\])?", master.strip())
    if m is None:
        return None
    return (os.cpu_count() or 1) if m.group(1) == "*" else int(m.group(1) or 1)


def session_options(spark: Any) -> dict[str, str]:
    """The conf a new session gets: the base settings, then `[spark] conf` (which wins)."""
    conf = dict(BASE_CONF)
    conf.setdefault("spark.ui.showConsoleProgress", "false")
    cores = None if spark.remote else local_cores(spark.master)
    if cores:
        # Spark's 200 shuffle partitions are one Python task each in the journey kernel: on one machine
        # that is minutes of overhead for small data (a 2.4k-event `monitor` took 105 s). Two per core.
        conf["spark.sql.shuffle.partitions"] = str(2 * cores)
    conf.update({str(k): _text(v) for k, v in (spark.conf or {}).items()})
    return conf


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def get_spark(spark: Any) -> Any:
    """The running SparkSession, or a new one built from `[spark]` (a `SparkConfig`)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigError("engine = \"spark\" needs pyspark", where="[store] engine",
                          hint="pip install 'micromoments[spark]' (and Java 17 for local mode)") from exc
    active = SparkSession.getActiveSession()
    if active is not None and not spark.remote:
        session = active
    else:
        builder = SparkSession.builder.appName(spark.app_name)
        builder = builder.remote(spark.remote) if spark.remote else builder.master(spark.master)
        if not spark.remote:  # local workers run this interpreter (pyarrow, duckdb, micromoments)
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        for key, value in session_options(spark).items():
            builder = builder.config(key, value)
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # Java missing, a bad master URL, an unreachable Connect server
            where = "[spark] remote" if spark.remote else "[spark] master"
            raise ConfigError(f"cannot start Spark: {str(exc).splitlines()[0][:300]}", where=where,
                              hint="check the URL, that the cluster is up, and JAVA_HOME (Java 17) for local mode") from exc
        if not spark.remote:
            session.sparkContext.setLogLevel("ERROR")
    for key in RUNTIME_CONF:
        session.conf.set(key, session_options(spark)[key])
    return session
