"""Intent engine speed (and dev-set accuracy) against a TF-IDF + logistic-regression baseline.

    .venv/bin/python benchmarks/intent.py [--n 20000] [--embedders]

Measures, in one run on this machine:
- model load (fresh interpreter: import + head + embedder), target <= 2 s;
- batched throughput on N DISTINCT queries, target >= 2,000 queries/s on 2 cores;
- single-query latency p50/p99 (warm), target p99 <= 5 ms;
- the same for a TF-IDF (word 1-2 grams + char 3-5 grams) + LogisticRegression baseline trained on
  the same training set, and the ratios between the two;
- macro-F1 of both on the real dev split (tests/fixtures/intent/real/eval.tsv, split dev; the test
  split is reported by scripts/eval_intent_real.py).
With --embedders, also the raw embedding throughput of each candidate embedder.
"""

from __future__ import annotations

import argparse
import csv
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "tests" / "fixtures" / "intent" / "dev.csv"
REAL = ROOT / "tests" / "fixtures" / "intent" / "real" / "eval.tsv"


def distinct_queries(n: int, seed: int = 0) -> list[str]:
    """N distinct web-search-shaped queries: dev + training texts, recombined with modifiers."""
    from micromoments.intent.training import build_training_set

    base = [t for t, _ in build_training_set(None, seed=seed)]
    with DEV.open(newline="") as fh:
        base += [r["query"] for r in csv.DictReader(fh)]
    rng = random.Random(seed)
    mods = ["", "near me", "2024", "price", "how to", "best", "for sale", "reviews", "uk", "cheap", "diy",
            "login", "hours", "vs", "meaning", "recipe", "online", "open now", "for beginners", "tips"]
    out: set[str] = set(base)
    while len(out) < n:
        a, b = rng.choice(base), rng.choice(base)
        out.add(" ".join(x for x in (rng.choice(mods), a.split()[0], b, rng.choice(mods)) if x))
    return sorted(out)[:n] if len(out) > n else sorted(out)


def load_seconds() -> float:
    code = ("import time; t=time.perf_counter(); from micromoments.intent.classifier import Classifier; "
            "c=Classifier(); c.predict(['warm up']); print(time.perf_counter()-t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def latency_ms(fn, texts: list[str]) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    for t in texts[:50]:
        fn([t])
    times = []
    for t in texts:
        s = time.perf_counter()
        fn([t])
        times.append((time.perf_counter() - s) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def throughput(fn, texts: list[str], batch: int = 5000) -> float:  # type: ignore[no-untyped-def]
    fn(texts[:100])
    s = time.perf_counter()
    for i in range(0, len(texts), batch):
        fn(texts[i : i + batch])
    return len(texts) / (time.perf_counter() - s)


def store_benchmark(n_events: int, texts: list[str], baseline) -> None:  # type: ignore[no-untyped-def]
    """classify_store on a synthetic store vs. the baseline run once per event (no de-duplication)."""
    import pyarrow as pa

    from micromoments.intent.store_step import classify_store
    from micromoments.store import Store

    store = Store(":memory:")
    n_distinct = max(1, n_events // 40)  # query logs repeat: ~40 events per distinct text
    pool = pa.table({"i": list(range(n_distinct)), "q": (texts * (n_distinct // len(texts) + 1))[:n_distinct]})
    store.duck.register("pool", pool)
    store.duck.execute(f"""
        INSERT INTO events (message_id, type, event, query, page_url, page_title)
        SELECT 'm' || r::VARCHAR,
               CASE WHEN r % 4 = 3 THEN 'page' ELSE 'track' END,
               CASE r % 4 WHEN 0 THEN 'Products Searched' WHEN 1 THEN 'Products Searched'
                          WHEN 2 THEN (['Order Completed', 'Product Added', 'Store Locator Viewed', 'Video Played'])[1 + (r // 4) % 4]
                          ELSE NULL END,
               CASE WHEN r % 4 < 2 THEN p.q END,
               CASE WHEN r % 4 = 3 THEN 'https://shop.example.com/c/' || replace(p.q, ' ', '-') || '/' || (r % 1000)::VARCHAR END,
               CASE WHEN r % 8 = 3 THEN p.q || ' | Shop' END
        FROM range({n_events}) t(r) JOIN pool p ON p.i = (hash(r) % {n_distinct})
    """)
    s = time.perf_counter()
    stats = classify_store(store)
    ours = time.perf_counter() - s
    s = time.perf_counter()
    again = classify_store(store)
    cached = time.perf_counter() - s
    per_event = [r[0] or r[1] or "" for r in store.duck.execute("SELECT query, page_title FROM events").fetchall()]
    s = time.perf_counter()
    for i in range(0, len(per_event), 50_000):
        baseline.predict_proba(per_event[i : i + 50_000])
    naive = time.perf_counter() - s
    print(f"classify_store: {stats['events']} events, {stats['distinct_texts']} distinct texts -> "
          f"{stats['event_moments']} event moments in {ours:.2f} s ({stats['events'] / ours:,.0f} events/s); "
          f"cached re-run {cached:.2f} s ({again['classified']} new)")
    print(f"baseline tfidf+LR once per event (no de-duplication, no rules, no join): {naive:.2f} s "
          f"-> ratio {naive / ours:.2f}x (cached re-run {naive / cached:.2f}x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--latency-n", type=int, default=1000)
    ap.add_argument("--embedders", action="store_true", help="also time each candidate embedder")
    ap.add_argument("--store-events", type=int, default=500_000,
                    help="events in the synthetic store for the classify_store timing (0 to skip)")
    args = ap.parse_args()

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    from micromoments.intent.classifier import Classifier
    from micromoments.intent.evaluate import evaluate_labels
    from micromoments.intent.training import build_training_set

    with REAL.open(newline="", encoding="utf-8") as fh:
        real = list(csv.DictReader(fh, delimiter="\t"))
    dev = [{"query": r["query"], "label": r["label"].split("_")[0]} for r in real if r["split"] == "dev"]
    moments = ["know", "go", "do", "buy"]
    texts = distinct_queries(args.n)
    print(f"{len(texts)} distinct queries; machine: {__import__('os').cpu_count()} cores")

    load = load_seconds()
    clf = Classifier()
    ours_batch = throughput(lambda b: clf.predict(b, explain=False), texts)
    ours_batch_cues = throughput(lambda b: clf.predict(b, explain=True), texts)
    lat_texts = texts[: args.latency_n]
    ours_p50, ours_p99 = latency_ms(lambda b: clf.predict(b, explain=True), lat_texts)
    ours_f1 = evaluate_labels([r["label"] for r in dev], [r.moment for r in clf.predict([r["query"] for r in dev])],
                              labels=moments).macro_f1

    # Baseline: TF-IDF + logistic regression on the same training texts (CLINC if present, web, templates).
    clinc = ROOT.parent / "shared" / "datasets" / "clinc150" / "data_full.json"
    rows = build_training_set(clinc if clinc.exists() else None, exclude=[r["query"] for r in real])
    tx, ty = zip(*rows)
    s = time.perf_counter()
    baseline = make_pipeline(
        make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2)),
        LogisticRegression(C=10.0, max_iter=3000, class_weight="balanced"),
    ).fit(list(tx), [y.split("_")[0] for y in ty])
    base_fit = time.perf_counter() - s
    base_batch = throughput(baseline.predict_proba, texts)
    base_p50, base_p99 = latency_ms(baseline.predict_proba, lat_texts)
    base_f1 = evaluate_labels([r["label"] for r in dev], list(baseline.predict([r["query"] for r in dev])),
                              labels=moments).macro_f1

    print(f"{'':34}{'micromoments':>14}{'tfidf+LR':>12}{'ratio':>9}")
    print(f"{'model load (s, fresh process)':34}{load:14.3f}{base_fit:12.3f}   (baseline: fit time)")
    print(f"{'batch queries/s (no cues)':34}{ours_batch:14.0f}{base_batch:12.0f}{ours_batch / base_batch:9.2f}x")
    print(f"{'batch queries/s (with cues)':34}{ours_batch_cues:14.0f}{base_batch:12.0f}{ours_batch_cues / base_batch:9.2f}x")
    print(f"{'single query p50 (ms)':34}{ours_p50:14.3f}{base_p50:12.3f}{base_p50 / ours_p50:9.2f}x")
    print(f"{'single query p99 (ms)':34}{ours_p99:14.3f}{base_p99:12.3f}{base_p99 / ours_p99:9.2f}x")
    print(f"{'real dev macro-F1':34}{ours_f1:14.3f}{base_f1:12.3f}{ours_f1 / base_f1:9.2f}x")
    ok = load <= 2.0 and ours_batch_cues >= 2000 and ours_p99 <= 5.0
    print("targets (load <= 2 s, >= 2,000 q/s, p99 <= 5 ms):", "met" if ok else "NOT met")

    if args.store_events:
        store_benchmark(args.store_events, texts, baseline)

    if args.embedders:
        from micromoments.intent.embed import EMBEDDERS

        sample = texts[:2000]
        for name, cls in EMBEDDERS.items():
            s = time.perf_counter()
            emb = cls()
            loaded = time.perf_counter() - s
            qps = throughput(emb.embed, sample, batch=256)
            p50, p99 = latency_ms(emb.embed, sample[:200])
            print(f"embedder {name:14} load {loaded:6.2f} s  {qps:8.0f} q/s  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")


if __name__ == "__main__":
    main()
