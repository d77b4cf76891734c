"""`classify-store` on Spark: the DuckDB step's own SQL, run per partition, then Spark joins.

Each partition of the lake's events runs the text-source, URL-words and rule SQL of
`intent.store_step` in an in-memory DuckDB on the executor (`mapInArrow`), so both engines derive
the same texts and rule hits from an event; the distinct texts not cached for this model version
are classified on the driver in batches (as on DuckDB), appended to `<lake>/moments_by_text`, and
Spark joins every event to its moment into `<lake>/event_moments`.

>>> # stats = classify_lake(store, cfg)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pyarrow as pa

from micromoments.config import Config
from micromoments.events.sql import sql_literal
from micromoments.intent.classifier import Classifier, get_classifier
from micromoments.intent.rules import load_rules, rules_sql
from micromoments.intent.store_step import _URL_WORDS_SQL, BATCH, TEXT_SOURCES_SQL

SOURCE_COLUMNS = ("message_id", "type", "event", "name", "properties", "page_url", "page_path", "page_title", "query")
KEYED_SCHEMA = "message_id string, q string, t string, u string, rule bigint"


def keyed_texts(rule_sql: str) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The per-partition function: event batches in, (message_id, q, t, u, rule) out, by DuckDB."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import duckdb

        from micromoments.intent.text import url_to_text

        con = duckdb.connect()
        try:
            for batch in batches:
                con.register("events", pa.Table.from_batches([batch]))
                con.execute(f"CREATE OR REPLACE TEMP TABLE s AS {TEXT_SOURCES_SQL}")
                con.execute(f"CREATE OR REPLACE TEMP TABLE urls AS SELECT url, CASE WHEN strpos(url, '%') = 0 "
                            f"THEN {_URL_WORDS_SQL} END AS u FROM (SELECT DISTINCT url FROM s WHERE url IS NOT NULL)")
                for (url,) in con.execute("SELECT url FROM urls WHERE u IS NULL").fetchall():
                    con.execute("UPDATE urls SET u = ? WHERE url = ?", [url_to_text(url), url])
                out = con.execute(f"""
                    SELECT s.message_id, s.q, s.t, coalesce(u.u, '') AS u,
                           CAST({rule_sql} AS BIGINT) AS rule
                    FROM s LEFT JOIN urls u ON s.url = u.url""").fetch_arrow_table()
                con.unregister("events")
                yield from out.to_batches()
        finally:
            con.close()

    return run


def classify_lake(store: Any, config: Config | None = None, *, classifier: Classifier | None = None,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, object]:
    """`intent.store_step.classify_store` for a `LakeStore`: same counts, same `event_moments`."""
    from pyspark.sql import functions as F

    started = time.perf_counter()
    clf = classifier or get_classifier(config)
    rules = load_rules(config)
    version = clf.version
    spark = store.spark
    prop_events = sorted({r.event.lower() for r in rules if r.properties is not None and r.event is not None})
    any_prop_rule = any(r.properties is not None and r.event is None for r in rules)
    props = "s.properties" if any_prop_rule else (
        f"CASE WHEN s.ev IN ({', '.join(map(sql_literal, prop_events))}) THEN s.properties END" if prop_events else "NULL")
    events = store.view("events").select(*SOURCE_COLUMNS)
    rule_sql = rules_sql(rules, "s.ev", "s.url", f"({props})", event_is_normalised=True)
    keyed = events.mapInArrow(keyed_texts(rule_sql), KEYED_SCHEMA).cache()
    texts = (keyed.where("q <> ''").select(F.col("q").alias("text"))
             .union(keyed.where("t <> ''").select("t")).union(keyed.where("u <> ''").select("u")).distinct().cache())
    n_distinct = texts.count()
    if store.has_table("moments_by_text"):
        cached = store.view("moments_by_text").where(F.col("model_version") == version).select("text")
        texts_todo = texts.join(cached, "text", "left_anti")
    else:
        texts_todo = texts
    todo = sorted(r[0] for r in texts_todo.collect())
    new: list[pd.DataFrame] = []
    for start in range(0, len(todo), BATCH):
        chunk = todo[start : start + BATCH]
        results = clf.predict(chunk)
        new.append(pd.DataFrame({
            "text": chunk, "moment": [r.moment for r in results],
            "go_type": pd.Series([r.go_type for r in results], dtype=object),
            "confidence": [float(r.confidence) for r in results],
            "cues": [json.dumps(r.cues, ensure_ascii=False) for r in results],
            "model_version": [version] * len(chunk)}))
        if progress:
            progress(min(start + BATCH, len(todo)), len(todo))
    if new:  # append-only: a text is classified once per model version
        store.write_table("moments_by_text", pd.concat(new, ignore_index=True), mode="append")
    rule_rows = pd.DataFrame({
        "idx": list(range(len(rules))), "moment": [r.moment for r in rules],
        "go_type": pd.Series([r.go_type for r in rules], dtype=object),
        "confidence": [float(r.confidence) for r in rules],
        "cues": [json.dumps([c for c in (r.event, r.url and f"url~{r.url}", r.properties and "tutorial") if c][:2])
                 for r in rules]})
    spark.createDataFrame(rule_rows, "idx bigint, moment string, go_type string, confidence double, cues string") \
        .createOrReplaceTempView("_mm_rules")
    keyed.createOrReplaceTempView("_mm_keyed")
    moments = spark.sql(f"""
        WITH b AS (
            SELECT message_id, rule,
                CASE WHEN q <> '' THEN 'query' WHEN rule IS NOT NULL THEN 'rule'
                     WHEN t <> '' THEN 'title' WHEN u <> '' THEN 'url' END AS basis,
                CASE WHEN q <> '' THEN q WHEN t <> '' THEN t ELSE u END AS text
            FROM _mm_keyed
        ),
        m AS (SELECT text, moment, go_type, confidence, cues FROM moments_by_text
              WHERE model_version = {sql_literal(version)})
        SELECT b.message_id,
               CASE WHEN b.basis = 'rule' THEN r.moment ELSE m.moment END AS moment,
               CASE WHEN b.basis = 'rule' THEN r.go_type ELSE m.go_type END AS go_type,
               CASE WHEN b.basis = 'rule' THEN r.confidence ELSE m.confidence END AS confidence,
               CASE WHEN b.basis = 'rule' THEN r.cues ELSE m.cues END AS cues,
               b.basis
        FROM b LEFT JOIN _mm_rules r ON r.idx = b.rule LEFT JOIN m ON m.text = b.text
        WHERE b.basis IS NOT NULL""")
    store.write_table("event_moments", moments)
    keyed.unpersist()
    texts.unpersist()
    return {
        "events": store.count("events"),
        "distinct_texts": n_distinct,
        "classified": len(todo),
        "cached": n_distinct - len(todo),
        "event_moments": store.count("event_moments"),
        "model_version": version,
        "seconds": round(time.perf_counter() - started, 3),
    }
