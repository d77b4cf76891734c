"""A moment for every search query, read with its landing page, cached like the store step.

Each distinct query is classified once per model version, with its top landing page (most
impressions) as context: `(text, context)` keys the cache `search_moments`, as `moments_by_text`
keys the store step's. `search_query_moments` (rebuilt each time) gives every query its moment, go
type and the question / long-tail / voice flags. Anonymized rows have no query: they are counted by
the analysis and never classified.

>>> import duckdb
>>> con = duckdb.connect()
>>> _ = con.execute("CREATE TABLE search_rows AS SELECT 'how to lay turf' AS query, "
...                 "'https://shop.example/how-to/lay-turf' AS url, 10 AS impressions")
>>> classify_search(con)["classified"]
1
>>> con.execute("SELECT query, moment, question FROM search_query_moments").fetchall()
[('how to lay turf', 'do', True)]
>>> classify_search(con)["classified"]  # cached
0
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa

from micromoments.config import Config
from micromoments.intent import Classifier, get_classifier
from micromoments.intent.text import normalize_text, url_to_text
from micromoments.journey.text import is_long_tail, is_question, is_voice_style
from micromoments.store.schema import create_table_sql

SEARCH_MOMENTS_COLUMNS: dict[str, str] = {
    "text": "VARCHAR",            # the normalised query
    "context": "VARCHAR",         # the words of its landing page's URL ('' when none)
    "moment": "VARCHAR",
    "go_type": "VARCHAR",
    "confidence": "DOUBLE",
    "question": "BOOLEAN",
    "long_tail": "BOOLEAN",
    "voice": "BOOLEAN",
    "model_version": "VARCHAR",
}
BATCH = 20_000


def classify_search(con: Any, config: Config | None = None, *, classifier: Classifier | None = None) -> dict[str, Any]:
    """Classify the distinct queries of `search_rows` not yet cached and rebuild `search_query_moments`.

    Returns counts: distinct queries, newly classified, cached, model version, seconds.
    """
    started = time.perf_counter()
    clf = classifier or get_classifier(config)
    con.execute(create_table_sql("search_moments", SEARCH_MOMENTS_COLUMNS))
    # Each query's landing page: the URL with the most impressions (none for UI / Bing keyword rows); a tie
    # goes to the first URL (a NULL only when there is none, as arg_max did), so a re-load (or the lake's scratch copy) reads the query in the same context.
    pairs = con.execute("""
        SELECT query, first(url ORDER BY url IS NULL, impr DESC, url) AS url FROM (
            SELECT query, url, sum(impressions) AS impr FROM search_rows
            WHERE query IS NOT NULL GROUP BY query, url)
        GROUP BY query
    """).to_arrow_table()
    queries = pairs.column("query").to_pylist()
    urls = pairs.column("url").to_pylist()
    texts = [normalize_text(x) for x in queries]
    contexts = [url_to_text(u) for u in urls]
    mapping = pa.table({"query": pa.array(queries, pa.string()), "url": pa.array(urls, pa.string()),
                        "text": pa.array(texts, pa.string()), "context": pa.array(contexts, pa.string())})
    con.register("_mm_sq_view", mapping)
    con.execute("CREATE OR REPLACE TEMP TABLE _mm_sq AS SELECT * FROM _mm_sq_view")
    con.unregister("_mm_sq_view")
    todo = con.execute("""
        SELECT s.text, s.context, any_value(s.url) AS url
        FROM _mm_sq s ANTI JOIN (SELECT text, context FROM search_moments WHERE model_version = ?) m
        USING (text, context) GROUP BY 1, 2 ORDER BY 1, 2
    """, [clf.version]).fetchall()
    for start in range(0, len(todo), BATCH):
        chunk = todo[start:start + BATCH]
        chunk_texts = [r[0] for r in chunk]
        # No cue explanations: they cost a third of the time and the search tables do not show them.
        results = clf.predict(chunk_texts, urls=[r[2] for r in chunk], explain=False)
        batch = pa.table({
            "text": pa.array(chunk_texts, pa.string()),
            "context": pa.array([r[1] for r in chunk], pa.string()),
            "moment": pa.array([r.moment for r in results], pa.string()),
            "go_type": pa.array([r.go_type for r in results], pa.string()),
            "confidence": pa.array([r.confidence for r in results], pa.float64()),
            "question": pa.array([is_question(t) for t in chunk_texts], pa.bool_()),
            "long_tail": pa.array([is_long_tail(t) for t in chunk_texts], pa.bool_()),
            "voice": pa.array([is_voice_style(t) for t in chunk_texts], pa.bool_()),
            "model_version": pa.array([clf.version] * len(chunk), pa.string()),
        })
        con.register("_mm_sm_batch", batch)
        con.execute("INSERT INTO search_moments SELECT * FROM _mm_sm_batch")
        con.unregister("_mm_sm_batch")
    con.execute("""
        CREATE OR REPLACE TABLE search_query_moments AS
        SELECT s.query, s.url AS landing_url, m.moment, m.go_type, m.confidence,
               m.question, m.long_tail, m.voice
        FROM _mm_sq s LEFT JOIN (SELECT * FROM search_moments WHERE model_version = ?) m USING (text, context)
    """, [clf.version])
    con.execute("DROP TABLE IF EXISTS _mm_sq")
    return {"queries": len(queries), "classified": len(todo), "cached": len(queries) - len(todo),
            "model_version": clf.version, "seconds": round(time.perf_counter() - started, 3)}
