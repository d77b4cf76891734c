"""The live loader on the lake vs on DuckDB: the same WAL rounds, events per second, then `lake compact`.

Demo events (`micromoments.demo.generate`), in time order, are written to a WAL in `--rounds`
rounds, as the collector would; each round is flushed by DuckDB's `StoreLoader` into a DuckDB file
and by `LakeLoader` into a Parquet lake (the two in turn, on the same cores). Prints both rates
and the ratio lake / DuckDB, the lake's file count, and (unless `--no-compact`) the time of
`compact_lake` on Spark local mode (`--cores`, Spark's start not counted) with the files after.

    .venv/bin/python benchmarks/lake_live.py --users 3000 --rounds 50
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import orjson

from micromoments.activation.lake_loader import LakeLoader
from micromoments.activation.wal import WriteAheadLog
from micromoments.activation.wal_loader import StoreLoader
from micromoments.config import SparkConfig
from micromoments.demo import generate
from micromoments.store.lake_files import LakeFiles


def rounds_of(lines: list[bytes], rounds: int) -> list[bytes]:
    """The events in time order, cut into `rounds` WAL writes."""
    lines = sorted(lines, key=lambda line: orjson.loads(line).get("timestamp", ""))
    step = -(-len(lines) // rounds)
    return [b"\n".join(lines[i:i + step]) + b"\n" for i in range(0, len(lines), step)]


def load(cls: type, wal_dir: Path, target: Path, batches: list[bytes]) -> tuple[float, int, float]:
    """Wall seconds to flush every batch, events loaded, and the median round."""
    wal = WriteAheadLog(wal_dir)
    loader = cls(wal, target)
    times = []
    for batch in batches:
        wal.write_sync(batch)
        t = time.perf_counter()
        loader.flush()
        times.append(time.perf_counter() - t)
    loaded = loader.loaded
    loader.close()
    wal.close()
    return sum(times), loaded, sorted(times)[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--no-compact", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mm-lake-live-"))
    lines = generate(tmp / "data", users=args.users, days=args.days, seed=3).events.read_bytes().splitlines()
    batches = rounds_of(lines, args.rounds)
    print(f"{len(lines):,} events in {len(batches)} rounds ({tmp})")
    duck = load(StoreLoader, tmp / "wal-duck", tmp / "s.duckdb", batches)
    lake = load(LakeLoader, tmp / "wal-lake", tmp / "lake", batches)
    for name, (secs, n, median) in (("duckdb", duck), ("lake", lake)):
        print(f"{name:>6}: {secs:6.2f} s, {n / secs:,.0f} events/s, median round {median * 1000:.0f} ms, loaded {n:,}")
    assert duck[1] == lake[1], "the two loaders loaded different counts"
    print(f"lake / duckdb rate: {(lake[1] / lake[0]) / (duck[1] / duck[0]):.2f}x")
    files = LakeFiles(str(tmp / "lake"))
    before = sum(len(files.visible(t)) for t in ("events", "quarantine", "identity_links"))
    print(f"lake files (events, quarantine, identity_links): {before:,}")
    if args.no_compact:
        return
    from micromoments.store.lake import LakeStore
    from micromoments.store.lake_compact import compact_lake
    from micromoments.store.spark_session import get_spark

    spark = get_spark(SparkConfig(master=f"local[{args.cores}]",
                                  conf={"spark.sql.shuffle.partitions": str(args.cores * 2)}))
    spark.range(1).count()  # the JVM's start is not the compaction's
    store = LakeStore(str(tmp / "lake"), spark)
    t = time.perf_counter()
    done = compact_lake(store)
    secs = time.perf_counter() - t
    after = sum(len(files.visible(t)) for t in ("events", "quarantine", "identity_links"))
    print(f"lake compact: {secs:.1f} s on local[{args.cores}]; files {before:,} -> {after:,}; "
          f"{sum(d.duplicates for d in done):,} duplicates dropped; events {store.count('events'):,}")


if __name__ == "__main__":
    main()
