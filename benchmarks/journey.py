"""Journey analytics speed: sessions + episodes + stages + journey map vs one plain GROUP BY.

Synthesises N demo-like events in DuckDB SQL (people with a few sessions each, ~45% of events
carrying a moment, searches, product views, carts and purchases), then times in the same run:

  baseline: CREATE TABLE AS SELECT person_id, count(*), min(ts), max(ts), sum(revenue),
            count(DISTINCT event) FROM events GROUP BY person_id
  journey:  sessionize -> episodes -> stages (episodes and sessions) -> journey map, each
            materialised, exactly as the report computes them

and prints the ratio and the peak resident memory of the process.

    .venv/bin/python benchmarks/journey.py            # 1M events
    .venv/bin/python benchmarks/journey.py --events 10000000
    .venv/bin/python benchmarks/journey.py --events 10000000 --db /tmp/j.duckdb --memory-limit 2GB
"""

from __future__ import annotations

import argparse
import resource
import time

from micromoments.journey.maps import journey_map
from micromoments.journey.pipeline import build_journey
from micromoments.journey.moments import events_with_moments
from micromoments.store import Store
from micromoments.store.schema import EVENTS_COLUMNS

EVENTS_PER_PERSON = 24


def synthesise(store: Store, n: int, seed: float = 0.42) -> None:
    """`events` and `event_moments` with n events: 24 per person, sessions of 8 events 1-3 days apart."""
    people = max(1, n // EVENTS_PER_PERSON)
    con = store.duck
    con.execute(f"SELECT setseed({seed})")
    cols = {c: f"NULL::{t}" for c, t in EVENTS_COLUMNS.items()}
    cols.update({
        "message_id": "'m' || i",
        "person_id": "'p' || (i // 24)",
        "user_id": "'p' || (i // 24)",
        "type": "CASE WHEN k % 3 = 1 THEN 'page' ELSE 'track' END",
        "event": "CASE WHEN k % 8 = 0 THEN 'Products Searched' WHEN k % 8 IN (2, 3, 4) THEN 'Product Viewed' "
                 "WHEN k % 8 = 5 AND h % 3 = 0 THEN 'Product Added' "
                 "WHEN k % 8 = 6 AND h % 6 = 0 THEN 'Order Completed' ELSE NULL END",
        "ts": "TIMESTAMP '2026-01-01' + to_seconds((h % 5000000) + (k // 8) * 172800 + (k % 8) * 95 + (h % 40))",
        "channel": "['organic-search', 'paid-search', 'email', 'social', 'direct'][1 + h % 5]",
        "query": "CASE WHEN k % 8 = 0 THEN ['how to clean suede shoes', 'shoe store near me', "
                 "'buy trail running shoes', 'what is heel drop', 'best running shoes 2026'][1 + ((h // 7) + k // 8) % 5] END",
        "page_path": "CASE WHEN k % 3 = 1 THEN '/p/' || (h % 200) END",
        "timezone": "['Europe/Paris', 'America/New_York', NULL][1 + h % 3]",
        "revenue": "CASE WHEN k % 8 = 6 AND h % 6 = 0 THEN 20 + h % 180 END",
    })
    select = ", ".join(f"{expr} AS {c}" for c, expr in cols.items())
    con.execute(f"""
        INSERT INTO events
        SELECT {select} FROM (
          SELECT i, i % 24 AS k, (hash(i // 24) % 1000000007)::BIGINT AS h FROM range({people * EVENTS_PER_PERSON}) t(i)
        )""")
    con.execute("""
        CREATE OR REPLACE TABLE event_moments AS
        SELECT message_id,
               CASE WHEN query IS NOT NULL THEN
                      CASE WHEN query LIKE 'how%' THEN 'do' WHEN query LIKE '%near me' THEN 'go'
                           WHEN query LIKE 'what%' THEN 'know' ELSE 'buy' END
                    ELSE 'buy' END AS moment,
               NULL::VARCHAR AS go_type, 0.6 + (hash(message_id) % 40) / 100.0 AS confidence,
               NULL::VARCHAR AS cues, 'bench' AS basis
        FROM events WHERE query IS NOT NULL OR event = 'Product Viewed'""")


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events to synthesise (target: 10000000)")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    parser.add_argument("--db", default=":memory:", help="store file (default: in memory, so RSS includes the data)")
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 2GB (it spills beyond)")
    args = parser.parse_args()

    store = Store(args.db)
    if args.memory_limit:
        store.duck.execute(f"SET memory_limit = '{args.memory_limit}'")
    if args.threads:
        store.duck.execute(f"SET threads = {args.threads}")
    t0 = time.perf_counter()
    synthesise(store, args.events)
    n = store.count("events")
    print(f"synthesised {n:,} events, {store.count('event_moments'):,} with a moment in {time.perf_counter() - t0:.1f} s")
    rss_after_data = peak_rss_gb()

    t0 = time.perf_counter()
    store.duck.execute("""CREATE OR REPLACE TEMP TABLE _baseline AS
        SELECT person_id, count(*) AS events, min(ts) AS first, max(ts) AS last, sum(revenue) AS revenue,
               count(DISTINCT event) AS kinds
        FROM events GROUP BY person_id""")
    baseline = time.perf_counter() - t0

    t0 = time.perf_counter()
    events = events_with_moments(store.table("events"), store.table("event_moments"))
    j = build_journey(events, con=store.ibis)
    jm = store.ibis.execute(journey_map(j.episodes))
    journey = time.perf_counter() - t0
    n_ep, n_sess = store.ibis.execute(j.episodes.count()), store.ibis.execute(j.sessions.count())

    print(f"baseline GROUP BY person_id : {baseline:7.2f} s")
    print(f"journey (sessions, episodes, stages, map): {journey:7.2f} s  "
          f"({n_sess:,} sessions, {n_ep:,} episodes, {len(jm)} map cells)")
    print(f"ratio journey / baseline    : {journey / baseline:7.2f}x   (target <= 5x)")
    print(f"peak RSS                    : {peak_rss_gb():7.2f} GB  (after loading data: {rss_after_data:.2f} GB; target < 4 GB)")


if __name__ == "__main__":
    main()
