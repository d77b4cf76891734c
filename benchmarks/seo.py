"""Search research on a 1M-row Search Console bulk export, against a plain DuckDB `GROUP BY query`.

Writes the demo site's `searchdata_url_impression` table as Parquet (`--rows`, default 1M), then
times, in one process and one run, on `--threads` DuckDB threads:

- baseline: `SELECT query, sum(impressions), sum(clicks), sum(sum_position) FROM the file GROUP BY query`;
- seo, cold: load (validate, quarantine) + classify every distinct query (empty cache) + every
  table of `analyse_search` (moments, weekly, devices, countries, curve, opportunities, themes,
  styles, content gaps, cannibalisation);
- seo, warm: the same file loaded again (its rows replaced) and analysed with the cache filled,
  which is what a weekly re-run on a store costs.

    .venv/bin/python benchmarks/seo.py              # 1M rows
    .venv/bin/python benchmarks/seo.py --rows 200000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import duckdb
import ibis

from micromoments.demo.search_console import write_search_console
from micromoments.seo import analyse_search
from micromoments.store.search_load import load_search_files


def _seo(ib: object, path: str) -> tuple[float, float, dict[str, float], object]:
    t0, c0 = time.perf_counter(), time.process_time()
    loaded = load_search_files(ib.con, [path])  # type: ignore[attr-defined]
    t_load = time.perf_counter() - t0
    result = analyse_search(ib)
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    parts = {"load": t_load, **result.seconds}
    assert loaded.quarantined == 0
    return total, cpu, parts, result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--draws", type=int, default=60_000, help="query draws from the demo grammar")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", default=None, help="folder to keep the export in (reused when it exists)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or tmp
        path = os.path.join(folder, "searchdata_url_impression.parquet")
        t0 = time.perf_counter()
        if not os.path.exists(path):
            write_search_console(folder, days=args.days, draws=args.draws, target_rows=args.rows, ui_zip=False)
        info = duckdb.sql(f"SELECT count(*), count(DISTINCT query), sum(impressions) FROM read_parquet('{path}')")
        rows, queries, impressions = info.fetchone()  # type: ignore[misc]
        print(f"export: {rows:,} rows, {queries:,} named queries, {impressions:,} impressions, "
              f"{os.path.getsize(path) / 1e6:.0f} MB Parquet, ready in {time.perf_counter() - t0:.1f} s")

        con = duckdb.connect()
        con.execute(f"SET threads = {args.threads}")
        t0, c0 = time.perf_counter(), time.process_time()
        groups = con.execute("SELECT count(*) FROM (SELECT query, sum(impressions), sum(clicks), sum(sum_position) "
                             f"FROM read_parquet('{path}') GROUP BY query)").fetchone()[0]
        baseline, baseline_cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"baseline  GROUP BY query:      {baseline:6.2f} s  (CPU {baseline_cpu:.2f} s; {groups:,} groups)")

        ib = ibis.duckdb.connect(threads=args.threads)
        cold, cold_cpu, parts, result = _seo(ib, path)
        print(f"seo cold  (classify all):      {cold:6.2f} s  = {cold / baseline:5.1f}x baseline  CPU {cold_cpu:.2f} s  "
              + "  ".join(f"{k} {v:.2f}" for k, v in parts.items())
              + f"  [{result.classification['classified']:,} queries classified]")  # type: ignore[attr-defined]
        warm, warm_cpu, parts, result = _seo(ib, path)
        print(f"seo warm  (cache filled):      {warm:6.2f} s  = {warm / baseline:5.1f}x baseline  CPU {warm_cpu:.2f} s  "
              + "  ".join(f"{k} {v:.2f}" for k, v in parts.items()))
        load = os.getloadavg()[0]
        print(f"under 10 s: cold {'yes' if cold < 10 else 'NO'}, warm {'yes' if warm < 10 else 'NO'} "
              f"({args.threads} threads, {os.cpu_count()} cores, load average {load:.1f} at the end)")


if __name__ == "__main__":
    main()
