"""`classify-store` on Spark: the DuckDB step's own SQL, run per partition, then Spark joins.

Each partition of the lake's events runs the text-source, URL-words and rule SQL of
`intent.store_step` in an in-memory DuckDB on the executor (`mapInArrow`), so both engines derive
the same texts and rule hits from an event; the distinct texts not cached for this model version
are classified on the driver in batches (as on DuckDB), appended to `<lake>/moments_by_text`, and
Spark joins every event to its moment into `<lake>/event_moments`.

>>> # stats = classify_lake(store, cfg)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from micromoments.config import Config
from micromoments.intent.classifier import Classifier, get_classifier
from micromoments.intent.rules import load_rules, rules_sql
from micromoments.intent.store_step import (
    _URL_WORDS_SQL,
    BATCH,
    TEXT_SOURCES_SQL,
    classified_rows,
    moments_sql,
    rule_properties_sql,
    rule_rows,
)

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
    props = rule_properties_sql(rules, prefix="s.")
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
    new: list[pa.Table] = []
    for start in range(0, len(todo), BATCH):
        chunk = todo[start : start + BATCH]
        new.append(classified_rows(chunk, clf.predict(chunk), version))
        if progress:
            progress(min(start + BATCH, len(todo)), len(todo))
    if new:  # append-only: a text is classified once per model version
        store.write_table("moments_by_text", pa.concat_tables(new), mode="append")
    store.to_spark(rule_rows(rules)).createOrReplaceTempView("_mm_rules")
    keyed.createOrReplaceTempView("_mm_keyed")
    moments = spark.sql(f"WITH {moments_sql('_mm_keyed', version)}").where("basis IS NOT NULL")
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
