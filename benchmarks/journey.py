"""Journey analytics speed: sessions + episodes + stages + journey map vs one plain GROUP BY.

Synthesises N demo-shaped events in DuckDB SQL (32 events per person in 4 sessions; two searches
of different moment types per session, result pages, guides, how-tos, store locator, product
views, carts, purchases, order tracking and help pages; ~90% of events carry a moment of four
types, ~1.8 episodes per session, 15 stage x moment cells), then times in the same run:

  baseline: CREATE TABLE AS SELECT person_id, count(*), min(ts), max(ts), sum(revenue),
            count(DISTINCT event) FROM events GROUP BY person_id
  journey:  sessionize -> episodes -> stages (episodes and sessions) -> journey map, each
            materialised, exactly as `build_journey` (report, CLI) computes them
            (`--method kernel`, the default on DuckDB: the numpy kernel; `--method ibis`: window SQL)

and prints the ratio and the peak resident memory of the process.

    .venv/bin/python benchmarks/journey.py            # 1M events
    .venv/bin/python benchmarks/journey.py --events 10000000
    .venv/bin/python benchmarks/journey.py --events 10000000 --db /tmp/j.duckdb --memory-limit 2GB
    (--reuse: time an existing --db file again without synthesising; --floors: also time four lower
     bounds: the kernel's export alone, an ORDER BY person_id, ts of those two columns alone,
     sessions cut in window SQL on those two columns alone, and writing the results alone)
"""

from __future__ import annotations

import argparse
import resource
import time

import ibis

from micromoments.intent.store_step import stamp_moments
from micromoments.journey import fastpath
from micromoments.journey.maps import journey_map
from micromoments.journey.pipeline import FACT_INPUTS, build_journey, journey_columns, load_events
from micromoments.store import Store
from micromoments.store.schema import EVENTS_COLUMNS

EVENTS_PER_PERSON = 32  # 4 sessions of 8 events (the demo: ~38 events, ~4.5 sessions per person)

KNOW_Q = "['what is heel drop', 'why do shoes squeak', 'difference between trail and road shoes']"
DO_Q = "['how to clean suede shoes', 'how to lace running shoes', 'how to stretch leather boots']"
GO_Q = "['shoe store near me', 'running shop open now', 'outdoor store directions']"
BUY_Q = "['buy trail running shoes', 'best running shoes 2026', 'cheap hiking boots sale']"


def synthesise(store: Store, n: int, seed: float = 0.42) -> None:
    """`events` and `event_moments` with about n demo-shaped events, the moments stamped onto `events`."""
    people = max(1, n // EVENTS_PER_PERSON)
    con = store.duck
    con.execute(f"SELECT setseed({seed})")
    # per event: p = person, s = session (0..3), k = position in the session (0..7),
    # h = a hash of the person, g = a hash of the session; st/st2 = the session's two search types
    # (0 know, 1 do, 2 go, 3 buy).
    q = lambda t: f"[{KNOW_Q}, {DO_Q}, {GO_Q}, {BUY_Q}][1 + {t}][1 + (g // 16) % 3]"
    cols = {c: f"NULL::{t}" for c, t in EVENTS_COLUMNS.items()}
    cols.update({
        "message_id": "'gh' || to_hex(p) || '-' || to_hex(i % 32)",
        "person_id": "'u_' || lpad(to_hex(h), 12, '0')",
        "user_id": "'u_' || lpad(to_hex(h), 12, '0')",
        "type": "CASE WHEN k IN (1, 3, 7) OR (k = 2 AND st IN (0, 1)) THEN 'page' ELSE 'track' END",
        "event": """CASE WHEN k IN (0, 4) THEN 'Products Searched'
                         WHEN k = 2 AND st = 2 THEN 'Store Locator Viewed'
                         WHEN k = 2 AND st = 3 THEN 'Product Viewed'
                         WHEN k = 5 AND g % 3 = 0 THEN 'Product Added'
                         WHEN k = 5 THEN 'Product Viewed'
                         WHEN k = 6 AND g % 7 = 0 THEN 'Order Completed'
                         WHEN k = 6 AND s > 0 AND g % 5 = 1 THEN 'Order Tracked'
                         WHEN k = 6 THEN 'Product List Viewed' END""",
        "ts": "TIMESTAMP '2026-01-01' + to_seconds((h % 2000000) + s * (86400 + g % 172800) + k * (20 + g % 90) + CASE WHEN k >= 4 AND g % 5 = 0 THEN 700 ELSE 0 END)",
        "channel": "['organic-search', 'paid-search', 'email', 'social', 'direct', 'app'][1 + (g // 3) % 6]",
        "query": f"CASE WHEN k = 0 THEN {q('st')} WHEN k = 4 THEN {q('st2')} END",
        "page_path": """CASE WHEN k = 1 THEN '/search'
                             WHEN k = 2 AND st = 0 THEN '/guides/' || (g % 50)
                             WHEN k = 2 AND st = 1 THEN '/how-to/' || (g % 50)
                             WHEN k = 2 AND st = 2 THEN '/stores'
                             WHEN k = 3 THEN '/p/' || (g % 500)
                             WHEN k = 6 AND s > 0 AND g % 5 = 1 AND g % 7 <> 0 THEN '/track-order'
                             WHEN k = 7 AND g % 4 = 0 THEN '/help/returns'
                             WHEN k = 7 THEN '/' END""",
        "page_title": f"CASE WHEN k = 1 THEN {q('st')} WHEN k = 3 THEN 'Product ' || (g % 500) WHEN k = 2 AND st < 2 THEN 'Guide ' || (g % 50) END",
        "timezone": "['Europe/London', 'Europe/Paris', 'America/New_York', NULL][1 + h % 4]",
        "device_type": "['mobile', 'desktop', 'tablet'][1 + g % 3]",
        "revenue": "CASE WHEN k = 6 AND g % 7 = 0 THEN 20 + g % 180 END",
    })
    select = ", ".join(f"{expr} AS {c}" for c, expr in cols.items())
    con.execute(f"""
        INSERT INTO events
        SELECT {select} FROM (
          SELECT i, p, s, k, h, g, g % 4 AS st, (g // 4 + 1 + g % 3) % 4 AS st2 FROM (
            SELECT i, i // {EVENTS_PER_PERSON} AS p, (i % {EVENTS_PER_PERSON}) // 8 AS s, i % 8 AS k,
                   (hash(i // {EVENTS_PER_PERSON}, {seed}) % 281474976710656)::BIGINT AS h,
                   (hash(i // 8, {seed}) % 1000000007)::BIGINT AS g
            FROM range({people * EVENTS_PER_PERSON}) t(i)))""")
    # The intent engine's output: searches by their words, pages by path/title, product and cart
    # events are `buy`; the home page carries no moment (~9% of events; the demo: ~5%).
    con.execute("""
        CREATE OR REPLACE TABLE event_moments AS
        SELECT message_id, moment, NULL::VARCHAR AS go_type,
               round(0.55 + (hash(message_id) % 45) / 100.0, 2) AS confidence, NULL::VARCHAR AS cues, basis
        FROM (
          SELECT message_id,
                 CASE WHEN text IS NOT NULL THEN
                        CASE WHEN text LIKE 'how%' THEN 'do'
                             WHEN text LIKE '%near me' OR text LIKE '%open now' OR text LIKE '%directions' THEN 'go'
                             WHEN text LIKE 'what%' OR text LIKE 'why%' OR text LIKE 'difference%' THEN 'know'
                             ELSE 'buy' END
                      WHEN page_path LIKE '/guides/%' THEN 'know'
                      WHEN page_path LIKE '/how-to/%' OR page_path LIKE '/help/%' THEN 'do'
                      WHEN page_path = '/stores' OR event = 'Store Locator Viewed' OR page_path = '/track-order' THEN 'go'
                      WHEN event IS NOT NULL OR page_path LIKE '/p/%' THEN 'buy' END AS moment,
                 CASE WHEN query IS NOT NULL THEN 'query' WHEN event IS NOT NULL THEN 'rule' ELSE 'title' END AS basis
          FROM (SELECT *, coalesce(query, CASE WHEN page_path = '/search' THEN page_title END) AS text FROM events))
        WHERE moment IS NOT NULL""")
    # As `classify_store` does: the moments are stamped onto `events`, which the journey reads.
    t0 = time.perf_counter()
    stamp_moments(con)
    print(f"stamped the moments onto events ({time.perf_counter() - t0:.1f} s, part of classification)")


def cpu_s() -> float:
    """CPU seconds of this process, all threads (less sensitive than wall time to other jobs)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events to synthesise (target: 10000000)")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    parser.add_argument("--db", default=":memory:", help="store file (default: in memory, so RSS includes the data)")
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 2GB (it spills beyond)")
    parser.add_argument("--method", default="auto", choices=("auto", "kernel", "ibis"),
                        help="build_journey method (auto = the numpy kernel on DuckDB; ibis = window SQL)")
    parser.add_argument("--part-rows", type=int, default=None,
                        help=f"events per part of the kernel's read (default {fastpath.PART_ROWS:,})")
    parser.add_argument("--reuse", action="store_true", help="--db already holds the synthetic events")
    parser.add_argument("--floors", action="store_true",
                        help="also time four lower bounds of a journey build: the kernel's export alone, "
                             "DuckDB ordering (person_id, ts) alone, sessions in window SQL on those two alone, "
                             "and writing the result tables alone")
    args = parser.parse_args()

    if args.part_rows:
        fastpath.PART_ROWS = args.part_rows
    store = Store(args.db)
    if args.memory_limit:
        store.duck.execute(f"SET memory_limit = '{args.memory_limit}'")
    if args.threads:
        store.duck.execute(f"SET threads = {args.threads}")
    t0 = time.perf_counter()
    if not args.reuse:
        synthesise(store, args.events)
    n = store.count("events")
    print(f"{'reused' if args.reuse else 'synthesised'} {n:,} events, {store.count('event_moments'):,} with a moment "
          f"({time.perf_counter() - t0:.1f} s)")
    rss_after_data = peak_rss_gb()

    # The baseline is short and the machine is shared: run it three times, compare with the median.
    runs, cpus = [], []
    for _ in range(3):
        t0, c0 = time.perf_counter(), cpu_s()
        store.duck.execute("""CREATE OR REPLACE TEMP TABLE _baseline AS
            SELECT person_id, count(*) AS events, min(ts) AS first, max(ts) AS last, sum(revenue) AS revenue,
                   count(DISTINCT event) AS kinds
            FROM events GROUP BY person_id""")
        runs.append(time.perf_counter() - t0)
        cpus.append(cpu_s() - c0)
    baseline, baseline_cpu = sorted(runs)[1], sorted(cpus)[1]

    steps: dict[str, float] = {}
    create = store.ibis.create_table

    def timed_create(name, expr, **kw):  # time each materialised step
        t, c = time.perf_counter(), cpu_s()
        out = create(name, expr, **kw)
        steps[name.removeprefix("_mm_")] = (time.perf_counter() - t, cpu_s() - c)
        return out

    store.ibis.create_table = timed_create
    t0, c0 = time.perf_counter(), cpu_s()
    events, _ = load_events(store)  # the moments as `classify_store` leaves them: stamped on `events`
    j = build_journey(events, con=store.ibis, method=args.method)
    if args.method != "ibis":  # the kernel's read + numpy time (outside create_table)
        # The kernel's writes are inside "kernel write": show that one only.
        steps = {**{f"kernel {k}": v for k, v in fastpath.last_timings.items()},
                 **{k: v for k, v in steps.items() if k not in ("event_keys", "episodes", "sessions")}}
    t, c = time.perf_counter(), cpu_s()
    jm = store.ibis.execute(journey_map(j.episodes))
    steps["journey map"] = (time.perf_counter() - t, cpu_s() - c)
    journey, journey_cpu = time.perf_counter() - t0, cpu_s() - c0
    store.ibis.create_table = create
    n_ep, n_sess = store.ibis.execute(j.episodes.count()), store.ibis.execute(j.sessions.count())

    print(f"baseline GROUP BY person_id : {baseline:7.2f} s  (median of {', '.join(f'{r:.2f}' for r in runs)}; "
          f"CPU {baseline_cpu:.2f} s)")
    print(f"journey (sessions, episodes, stages, map): {journey:7.2f} s  "
          f"({n_sess:,} sessions, {n_ep:,} episodes, {len(jm)} map cells)")
    print(f"  CPU {journey_cpu:.2f} s; steps (wall / CPU s): "
          + ", ".join(f"{k} {w:.2f} / {c:.2f}" for k, (w, c) in steps.items()))
    print(f"ratio journey / baseline    : {journey / baseline:7.2f}x   (target <= 5x; CPU time ratio "
          f"{journey_cpu / max(baseline_cpu, 1e-9):.1f}x)")
    print(f"peak RSS                    : {peak_rss_gb():7.2f} GB  (after loading data: {rss_after_data:.2f} GB; target < 4 GB)")
    if args.floors:
        # What any journey build pays besides computing, measured the same way (results consumed,
        # not kept). Out of DuckDB: exporting the columns a journey reads, as numbers (the kernel's
        # own read, without its coding in Python), putting events in (person, ts) order, and
        # writing the results back. Inside DuckDB: cutting sessions with window SQL on two columns
        # only (a lag pass, then the running count of session starts: it depends on the first).
        narrow = journey_columns(events).select(*[c for c in FACT_INPUTS if c in events.columns])
        probes = {
            "the kernel's export alone (hashed columns, as HashedRead streams them)":
                fastpath.hashed_select(ibis.to_sql(fastpath.kernel_inputs(narrow), dialect="duckdb")),
            "ORDER BY person_id, ts (those two columns only)": "SELECT person_id, ts FROM events ORDER BY person_id, ts",
            "sessions in window SQL, person_id and ts only (lag, then a running count)": """
                SELECT person_id, ts, sum(new) OVER (PARTITION BY person_id ORDER BY ts, n
                                                     ROWS UNBOUNDED PRECEDING) AS session_no
                FROM (SELECT person_id, ts, row_number() OVER w AS n,
                             CASE WHEN ts - lag(ts) OVER w <= INTERVAL 30 MINUTE THEN 0 ELSE 1 END AS new
                      FROM events WINDOW w AS (PARTITION BY person_id ORDER BY ts))""",
        }
        floors: dict[str, tuple[float, float]] = {}
        for name, sql in probes.items():
            t, c = time.perf_counter(), cpu_s()
            for _ in store.duck.execute(sql).to_arrow_reader(1_000_000):
                pass
            floors[name] = (time.perf_counter() - t, cpu_s() - c)
        if args.method != "ibis":
            # Storing what the build computed: the three result tables, taken out as Arrow (not
            # timed) and written back with a bare CREATE TABLE AS (no stages, no ids).
            results = {t: store.duck.execute(f"SELECT * FROM _mm_{t}").to_arrow_table()
                       for t in ("event_keys", "episodes", "sessions")}
            t, c = time.perf_counter(), cpu_s()
            for name, table in results.items():
                store.duck.register("_floor_src", table)
                store.duck.execute(f"CREATE OR REPLACE TEMP TABLE _floor_{name} AS SELECT * FROM _floor_src")
                store.duck.unregister("_floor_src")
            floors["writing the results alone (event keys, episodes, sessions from Arrow)"] = (
                time.perf_counter() - t, cpu_s() - c)
        for name, (w, u) in floors.items():
            print(f"floor: {name}: {w:.2f} s = {w / baseline:.1f}x the baseline (CPU {u:.2f} s = "
                  f"{u / max(baseline_cpu, 1e-9):.1f}x)")


if __name__ == "__main__":
    main()
