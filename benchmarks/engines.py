"""DuckDB vs Spark local mode on the same events and cores: the journey map, end to end.

Synthesises N demo-shaped events with their moments (`benchmarks/journey.py`'s generator) in a
DuckDB file, writes the same events and moments as a lake (Parquet partitioned by event date,
what `micromoments ingest` writes with engine = "spark"), then times on each engine in the same
run what `micromoments journey-map` does: load the events with their moments, build the journey
(DuckDB: the numpy kernel; Spark: the same kernel on partitions of people) and compute the map.
Spark runs in local mode on `--cores` cores (default 2, the build machine's), after a warm-up
query (the JVM's start is not counted; it is printed). Prints both times and the ratio
Spark / DuckDB, and checks the two maps are equal.

    .venv/bin/python benchmarks/engines.py --events 1000000
    .venv/bin/python benchmarks/engines.py --events 10000000 --cores 2
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

from journey import synthesise  # noqa: E402  (benchmarks/journey.py)

from micromoments.config import Config, SparkConfig  # noqa: E402
from micromoments.journey.maps import journey_map  # noqa: E402
from micromoments.journey.pipeline import JourneySettings, build_journey, load_events  # noqa: E402
from micromoments.store import Store  # noqa: E402
from micromoments.store.lake import LakeStore  # noqa: E402
from micromoments.store.spark_session import get_spark  # noqa: E402


def journey_map_on(store: object) -> tuple[float, object]:
    """Wall seconds of the journey map on `store` (DuckDB Store or LakeStore), and the map."""
    t = time.perf_counter()
    events, _ = load_events(store)
    j = build_journey(events, JourneySettings.from_config(Config()), con=store.ibis)  # type: ignore[attr-defined]
    frame = store.ibis.execute(journey_map(j.episodes).order_by(["stage", "moment"]))  # type: ignore[attr-defined]
    return time.perf_counter() - t, frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events to synthesise (target: 10000000)")
    parser.add_argument("--cores", type=int, default=2, help="cores for both engines (DuckDB threads, local[N])")
    parser.add_argument("--dir", default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--driver-memory", default="4g", help="Spark driver memory (local mode runs in the driver)")
    args = parser.parse_args()
    work = args.dir or tempfile.mkdtemp(prefix="mm-engines-")
    db = os.path.join(work, "events.duckdb")
    lake = os.path.join(work, "lake")
    os.makedirs(os.path.join(lake, "event_moments"), exist_ok=True)

    store = Store(db)
    store.duck.execute(f"SET threads = {args.cores}")
    t = time.perf_counter()
    synthesise(store, args.events)
    n = store.count("events")
    # The lake: the same events (moments stamped on them) and moments, as ingest lays them out.
    store.duck.execute(f"COPY (SELECT *, CAST(ts AS DATE) AS event_date FROM events) TO '{lake}/events' "
                       "(FORMAT PARQUET, PARTITION_BY (event_date))")
    store.duck.execute(f"COPY event_moments TO '{lake}/event_moments/part-0.parquet' (FORMAT PARQUET)")
    print(f"{n:,} events synthesised and written to the lake in {time.perf_counter() - t:.1f} s ({work})")

    t = time.perf_counter()
    spark = get_spark(SparkConfig(master=f"local[{args.cores}]", conf={
        "spark.driver.memory": args.driver_memory, "spark.ui.enabled": False,
        "spark.sql.shuffle.partitions": str(args.cores * 4)}))
    lake_store = LakeStore(lake, spark, read_only=True)
    lake_store.count("events")  # warm-up: the JVM, the lake's file listing
    print(f"Spark local[{args.cores}] started and warmed up in {time.perf_counter() - t:.1f} s (not counted)")

    duck_s, duck_map = journey_map_on(store)
    print(f"DuckDB ({args.cores} threads): {duck_s:.1f} s")
    spark_s, spark_map = journey_map_on(lake_store)
    print(f"Spark local[{args.cores}]: {spark_s:.1f} s")
    same = len(duck_map) == len(spark_map) and all(
        math.isclose(float(a), float(b), rel_tol=1e-9) if isinstance(a, float) else a == b
        for col in duck_map.columns for a, b in zip(duck_map[col], spark_map[col])
        if not (isinstance(a, float) and a != a))
    print(f"maps equal: {same}")
    print(f"ratio Spark / DuckDB: {spark_s / duck_s:.1f}x on {n:,} events, {args.cores} cores, "
          f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
