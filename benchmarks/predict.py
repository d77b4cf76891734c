"""Predict benchmark: features and scores for N people from a DuckDB store, and live latency.

    .venv/bin/python benchmarks/predict.py --people 1000000      # the issue's bar: < 2 minutes
    .venv/bin/python benchmarks/predict.py --people 50000         # a quick look

1. Builds a store with N people (1-15 events each, ~8 on average) in DuckDB SQL.
2. Trains a small model on the first 20k people (per-event cutoffs; not timed as scoring).
3. Times batch scoring: read + encode events (Ibis/DuckDB -> Arrow -> numpy), the feature fold,
   and the calibrated models' predictions for everyone.
4. Times live scoring: `LiveScorer.update` per event (p50 / p99 / max), and `score(history)`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

MOMENTS_SQL = "['know', 'go', 'do', 'buy']"
EVENTS_SQL = "['Products Searched', 'Product Viewed', 'Product Added', 'Order Completed', 'Page Viewed', 'Store Locator Viewed']"
CHANNELS_SQL = "['web', 'app', 'email', 'organic-search', 'direct', 'paid-search']"


def build_store(path: Path, people: int, seed: float = 0.42):
    from micromoments.store import Store

    store = Store(path)
    con = store.duck
    con.execute(f"SELECT setseed({seed})")
    con.execute(f"""
        CREATE TEMP TABLE gen AS
        WITH p AS (SELECT i AS p, CAST(1 + (hash(i) % 15) AS BIGINT) AS n, CAST(hash(i * 7) % 2000000 AS BIGINT) AS start_s FROM range({people}) t(i)),
        e AS (SELECT p, start_s, unnest(range(n)) AS k FROM p)
        SELECT 'm' || p || '_' || k AS message_id, 'p' || p AS person_id,
               TIMESTAMP '2026-08-01' + to_seconds(CAST(start_s + k * 2400 + floor(random() * 2000) AS BIGINT)) AS ts,
               list_element({EVENTS_SQL}, CAST(1 + floor(random() * 6) AS INTEGER)) AS event,
               CASE WHEN random() < 0.9 THEN list_element({MOMENTS_SQL}, CAST(1 + floor(random() * 4) AS INTEGER)) END AS moment,
               list_element({CHANNELS_SQL}, CAST(1 + floor(random() * 6) AS INTEGER)) AS channel,
               CASE WHEN random() < 0.5 THEN 'mobile' ELSE 'desktop' END AS device_type,
               CASE WHEN random() < 0.3 THEN 40 + random() * 10 END AS lat,
               CASE WHEN random() < 0.3 THEN random() * 10 END AS lon,
               round(random() * 200, 2) AS revenue
        FROM e""")
    con.execute("""INSERT INTO events (message_id, person_id, type, ts, event, channel, device_type, lat, lon, revenue)
                   SELECT message_id, person_id, 'track', ts, event, channel, device_type, lat, lon,
                          CASE WHEN event = 'Order Completed' THEN revenue END FROM gen""")
    con.execute("CREATE TABLE event_moments AS SELECT message_id, moment, CAST(NULL AS VARCHAR) AS go_type, "
                "0.9 AS confidence FROM gen WHERE moment IS NOT NULL")
    con.execute("DROP TABLE gen")
    return store


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=2, help="threads for the batch tree walk")
    ap.add_argument("--live-events", type=int, default=20_000)
    ap.add_argument("--keep", type=Path, default=None, help="keep the store in this folder")
    args = ap.parse_args()

    from micromoments.predict.batch import from_table, load_store_events, person_features, score_people
    from micromoments.predict.features import FeatureSpec
    from micromoments.predict.labels import make_labels
    from micromoments.predict.artifact import load_model, save_model
    from micromoments.predict.live import LiveScorer
    from micromoments.predict.models import TrainSettings, limited_threads, train_predictor

    work = args.keep or Path(tempfile.mkdtemp(prefix="mm-predict-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    store = build_store(work / "bench.duckdb", args.people)
    n_events = store.count("events")
    print(f"store: {args.people:,} people, {n_events:,} events, built in {time.perf_counter() - t:.1f} s "
          f"(cpus={os.cpu_count()})")

    # A model trained on a slice of the people (every event a cutoff), as `predict train` would.
    spec = FeatureSpec()
    t = time.perf_counter()
    sample = store.duck.execute(
        "SELECT e.message_id, e.person_id, e.ts, e.event, e.channel, e.device_type, e.lat, e.lon, e.revenue, "
        "m.moment FROM events e LEFT JOIN event_moments m USING (message_id) "
        "WHERE hash(e.person_id) % 50 = 0 ORDER BY e.person_id, e.ts, e.message_id").to_arrow_table()
    data = from_table(sample, spec)
    bf, _ = person_features(data, spec, per_event=True)
    labels = make_labels(spec, data.events, data.person_codes, buy_days=3.0)
    predictor = train_predictor(spec, bf.X_events, labels, data.events.secs,
                                TrainSettings(max_iter=100, buy_days=3.0))
    save_model(predictor, work / "model")
    print(f"trained on {data.n_events:,} cutoffs in {time.perf_counter() - t:.1f} s")

    # Batch: everyone's features and scores.
    model = load_model(work / "model")
    t0 = time.perf_counter()
    events = load_store_events(store, model.spec)
    t1 = time.perf_counter()
    bf_all, ids = person_features(events, model.spec)
    t2 = time.perf_counter()
    probs = model.trees.predict(bf_all.X_last, threads=args.threads)  # what `predict score` does
    t3 = time.perf_counter()
    sample = bf_all.X_last[:20_000]
    with limited_threads(1):
        s = time.perf_counter()
        model.predictor.predict(sample)
        sk_per_row = (time.perf_counter() - s) / len(sample)
    s = time.perf_counter()
    model.trees.predict(sample)
    ct_per_row = (time.perf_counter() - s) / len(sample)
    total = t3 - t0
    print(f"batch: read+encode {t1 - t0:.1f} s, features {t2 - t1:.1f} s, scores {t3 - t2:.1f} s "
          f"-> {total:.1f} s for {len(ids):,} people ({len(ids) / total:,.0f} people/s); "
          f"budget 120 s: {total / 120:.2f}x of it")
    assert len(probs["buy_session"]) == len(ids)
    print(f"tree walk vs scikit-learn predict (1 thread, 20k rows): {sk_per_row / ct_per_row:.2f}x faster")

    # Live: the per-event path.
    scorer = LiveScorer(work / "model")
    rows = store.ibis.to_pyarrow(
        store.ibis.table("events").order_by(["person_id", "ts"]).limit(args.live_events)).to_pylist()
    moments = dict(store.duck.execute("SELECT message_id, moment FROM event_moments").fetchall()) if args.people <= 200_000 else {}
    lat, cpu = [], []
    for row in rows:
        row["moment"] = moments.get(row["message_id"], "buy")
        s, c = time.perf_counter(), time.thread_time()
        scorer.update(row["person_id"], row)
        cpu.append(time.thread_time() - c)
        lat.append(time.perf_counter() - s)
    lat_ms, cpu_ms = np.array(lat) * 1e3, np.array(cpu) * 1e3
    hist = rows[:20]
    s = time.perf_counter()
    for _ in range(200):
        scorer.score(hist)
    per_hist = (time.perf_counter() - s) / 200 * 1e3
    print(f"live update: p50 {np.percentile(lat_ms, 50):.3f} ms, p99 {np.percentile(lat_ms, 99):.3f} ms, "
          f"max {lat_ms.max():.2f} ms over {len(lat_ms):,} events (budget p99 1 ms: "
          f"{np.percentile(lat_ms, 99):.2f}x); CPU time p50 {np.percentile(cpu_ms, 50):.3f} ms, "
          f"p99 {np.percentile(cpu_ms, 99):.3f} ms; score(20-event history) {per_hist:.2f} ms")
    store.close()
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
