"""The batch step: a moment for every intent-bearing event in the store.

1. Collect each DISTINCT normalised text once (queries, page titles, screen names, URL-path words).
2. Classify only those not yet in `moments_by_text` for this model version (the cache).
3. Build `event_moments` in DuckDB by joining the cache back to `events`, with event rules
   (checkout, store locator, tutorial video...) winning for events that carry no query.
4. Stamp each event's `moment`, `go_type` and `confidence` onto `events` itself
   (`stamp_moments`), so journey analytics read them without a join: joining 10M events with
   their 9M moment rows on the text `message_id` cost more than everything else the journey reads.

>>> from micromoments.store import Store
>>> store = Store(":memory:")
>>> _ = store.duck.execute("INSERT INTO events (message_id, type, event, query) VALUES "
...     "('m1', 'track', 'Products Searched', 'cordless drill for sale'), ('m2', 'track', 'Order Completed', NULL)")
>>> classify_store(store)["classified"]
1
>>> store.duck.execute("SELECT message_id, moment, basis FROM event_moments ORDER BY 1").fetchall()
[('m1', 'buy', 'query'), ('m2', 'buy', 'rule')]
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pyarrow as pa

from micromoments.config import Config
from micromoments.events.sql import sql_literal
from micromoments.intent.classifier import Classifier, get_classifier
from micromoments.intent.rules import load_rules, rules_sql
from micromoments.intent.text import url_to_text
from micromoments.store.schema import STAMPED_MOMENT_COLUMNS

MOMENTS_BY_TEXT_COLUMNS: dict[str, str] = {
    "text": "VARCHAR",
    "moment": "VARCHAR",
    "go_type": "VARCHAR",
    "confidence": "DOUBLE",
    "cues": "VARCHAR",            # JSON list of the words that drove the decision
    "model_version": "VARCHAR",
}
EVENT_MOMENTS_COLUMNS: dict[str, str] = {
    "message_id": "VARCHAR",
    "moment": "VARCHAR",
    "go_type": "VARCHAR",
    "confidence": "DOUBLE",
    "cues": "VARCHAR",
    "basis": "VARCHAR",           # query / title / url / rule
}
BATCH = 20_000


def _norm_sql(expr: str) -> str:
    # The cache key: lowercased, whitespace collapsed, cut to 512 chars (as `normalize_text`, minus NFKC).
    return f"left(trim(regexp_replace(lower(coalesce({expr}, '')), '\\s+', ' ', 'g')), 512)"


def _title_sql(expr: str) -> str:
    # "Raised beds | Acme Garden" -> "Raised beds": the site-name suffix says nothing about intent.
    return _norm_sql(f"regexp_replace({expr}, '\\s+[|–—-]\\s+[^|–—-]+$', '')")


# `text.url_to_text` in SQL, for URLs without percent-escapes (see the test that compares them).
_URL_WORDS_SQL = r"""left(trim(regexp_replace(
    array_to_string(list_filter(
        regexp_split_to_array(lower(regexp_extract(url, '^(?:[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*)?([^?#]*)', 1)),
                              '[/_\-+.,;:=&?#%]+'),
        w -> w <> '' AND w NOT IN ('www', 'html', 'htm', 'php', 'aspx', 'jsp', 'index', 'en', 'us', 'p', 'c', 's', 'id')
             AND NOT regexp_full_match(w, '(?:\d+|[0-9a-f]{8,}|[a-z]*\d{3,}[a-z\d]*)')), ' ')
    || coalesce(' ' || replace(nullif(regexp_extract(lower(url), '[?&](?:q|query|search|searchterm|keyword|k)=([^&#]+)', 1), ''),
                               '+', ' '), ''),
    '\s+', ' ', 'g')), 512)"""

TEXT_SOURCES_SQL = f"""
SELECT
    message_id, lower(trim(event)) AS ev, properties,
    coalesce(page_url, page_path) AS url,
    {_norm_sql('query')} AS q,
    CASE WHEN type = 'screen' THEN {_norm_sql('name')}
         ELSE coalesce(nullif({_title_sql('page_title')}, ''), {_norm_sql('name')}) END AS t
FROM events
"""


def _create(duck: object, name: str, columns: dict[str, str]) -> None:
    cols = ", ".join(f'"{c}" {t}' for c, t in columns.items())
    duck.execute(f'CREATE TABLE IF NOT EXISTS "{name}" ({cols})')  # type: ignore[attr-defined]


def moments_sql(source: str, version: str) -> str:
    """The CTEs and SELECT (after a `WITH`) giving every row of `source` (message_id, q, t, u, rule)
    its moment: the query, else a rule hit (`_mm_rules`), else the title, else the URL words, looked
    up in `moments_by_text` for `version`; NULL without any. Both engines run this one text (DuckDB
    here, Spark SQL in `lake_step`), so they choose the same basis.

    >>> "WHEN rule IS NOT NULL THEN 'rule'" in moments_sql("s", "v1")
    True
    """
    return f"""
        b AS (
            SELECT message_id, rule,
                CASE WHEN q <> '' THEN 'query' WHEN rule IS NOT NULL THEN 'rule'
                     WHEN t <> '' THEN 'title' WHEN u <> '' THEN 'url' END AS basis,
                CASE WHEN q <> '' THEN q WHEN t <> '' THEN t ELSE u END AS text
            FROM {source}
        ),
        m AS (SELECT text, moment, go_type, confidence, cues FROM moments_by_text
              WHERE model_version = {sql_literal(version)})
        SELECT b.message_id,
               CASE WHEN b.basis = 'rule' THEN r.moment ELSE m.moment END AS moment,
               CASE WHEN b.basis = 'rule' THEN r.go_type ELSE m.go_type END AS go_type,
               CASE WHEN b.basis = 'rule' THEN r.confidence ELSE m.confidence END AS confidence,
               CASE WHEN b.basis = 'rule' THEN r.cues ELSE m.cues END AS cues,
               b.basis
        FROM b
        LEFT JOIN _mm_rules r ON r.idx = b.rule
        LEFT JOIN m ON m.text = b.text
    """


def classified_rows(texts: list[str], results: list, version: str) -> pa.Table:  # type: ignore[type-arg]
    """Rows of `moments_by_text` for classified texts (cues as JSON).

    >>> from micromoments.intent.classifier import classify
    >>> classified_rows(["gmail login"], classify(["gmail login"]), "v1").column("moment").to_pylist()
    ['go']
    """
    return pa.table({
        "text": texts,
        "moment": [r.moment for r in results],
        "go_type": pa.array([r.go_type for r in results], pa.string()),
        "confidence": pa.array([float(r.confidence) for r in results], pa.float64()),
        "cues": [json.dumps(r.cues, ensure_ascii=False) for r in results],
        "model_version": [version] * len(texts),
    })


def rule_rows(rules: list) -> pa.Table:  # type: ignore[type-arg]
    """The `_mm_rules` table `moments_sql` joins: one row per event rule, by its index.

    >>> rule_rows([]).schema.field("idx").type
    DataType(int64)
    """
    return pa.table({
        "idx": pa.array(range(len(rules)), pa.int64()),
        "moment": [r.moment for r in rules],
        "go_type": pa.array([r.go_type for r in rules], pa.string()),
        "confidence": pa.array([float(r.confidence) for r in rules], pa.float64()),
        "cues": pa.array([json.dumps([c for c in (r.event, r.url and f"url~{r.url}", r.properties and "tutorial")
                                      if c][:2]) for r in rules], pa.string()),
    })


def rule_properties_sql(rules: list, prefix: str = "") -> str:  # type: ignore[type-arg]
    """The properties a rule can read, as SQL over `{prefix}ev` / `{prefix}properties`: all of them if a
    rule reads properties of any event, else only those of the events such rules name (else NULL), so
    rules are resolved once per distinct (event, URL, relevant properties).

    >>> rule_properties_sql([])
    'NULL'
    """
    prop_events = sorted({r.event.lower() for r in rules if r.properties is not None and r.event is not None})
    if any(r.properties is not None and r.event is None for r in rules):
        return f"{prefix}properties"
    if prop_events:
        return f"CASE WHEN {prefix}ev IN ({', '.join(map(sql_literal, prop_events))}) THEN {prefix}properties END"
    return "NULL"


def stamp_moments(duck: object, every_event: str | None = None) -> int:
    """Copy the moments onto `events` (`moment`, `go_type`, `confidence`; NULL for events without
    one) and return how many events changed. Adds the columns on first use.

    From `event_moments`, or, in one pass, from `every_event`: a table with a row for every event
    (NULL moments included), as `classify_store` builds it. Rows match on `message_id` (unique in
    the store; not the rowid, which DuckDB may renumber when a checkpoint vacuums deleted rows).
    Only changed rows are written.

    >>> import duckdb
    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE events (message_id VARCHAR); INSERT INTO events VALUES ('a'), ('b')")
    >>> _ = con.execute("CREATE TABLE event_moments AS SELECT 'a' AS message_id, 'buy' AS moment, "
    ...                 "NULL::VARCHAR AS go_type, 0.9 AS confidence")
    >>> stamp_moments(con), con.execute("SELECT * FROM events ORDER BY 1").fetchall()
    (1, [('a', 'buy', None, 0.9), ('b', None, None, None)])
    """
    for column, kind in STAMPED_MOMENT_COLUMNS.items():
        duck.execute(f'ALTER TABLE events ADD COLUMN IF NOT EXISTS "{column}" {kind}')  # type: ignore[attr-defined]
    cleared = 0
    if every_event is None:
        every_event = "event_moments"
        cleared = duck.execute("""
            UPDATE events SET moment = NULL, go_type = NULL, confidence = NULL
            WHERE (moment IS NOT NULL OR go_type IS NOT NULL OR confidence IS NOT NULL)
              AND NOT EXISTS (SELECT 1 FROM event_moments m WHERE m.message_id = events.message_id)
        """).fetchone()[0]  # type: ignore[attr-defined]
    stamped = duck.execute(f"""
        UPDATE events SET moment = m.moment, go_type = m.go_type, confidence = m.confidence
        FROM "{every_event}" m
        WHERE events.message_id = m.message_id
          AND (events.moment IS DISTINCT FROM m.moment OR events.go_type IS DISTINCT FROM m.go_type
               OR events.confidence IS DISTINCT FROM m.confidence)
    """).fetchone()[0]  # type: ignore[attr-defined]
    return int(cleared) + int(stamped)


def classify_store(
    store: object,
    config: Config | None = None,
    *,
    classifier: Classifier | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, object]:
    """Classify the store's distinct texts (cached in `moments_by_text`) and rebuild `event_moments`.

    Returns counts: events, distinct texts, newly classified, cached, event_moments rows, seconds.
    `progress(done, total)` is called after each batch of new texts.
    """
    started = time.perf_counter()
    clf = classifier or get_classifier(config)
    rules = load_rules(config)
    duck = store.duck  # type: ignore[attr-defined]
    _create(duck, "moments_by_text", MOMENTS_BY_TEXT_COLUMNS)
    _create(duck, "event_moments", EVENT_MOMENTS_COLUMNS)
    version = clf.version

    duck.execute(f"CREATE OR REPLACE TEMP TABLE _mm_sources AS {TEXT_SOURCES_SQL}")
    # URL path words: in SQL (the same steps as `url_to_text`) for plain URLs; the rare
    # percent-encoded ones go through Python, whose decoding DuckDB cannot match safely.
    duck.execute(f"""
        CREATE OR REPLACE TEMP TABLE _mm_urls AS
        SELECT url, CASE WHEN strpos(url, '%') = 0 THEN {_URL_WORDS_SQL} END AS u
        FROM (SELECT DISTINCT url FROM _mm_sources WHERE url IS NOT NULL)
    """)
    encoded = [r[0] for r in duck.execute("SELECT url FROM _mm_urls WHERE u IS NULL").fetchall()]
    if encoded:
        fixes = pa.table({"url": pa.array(encoded, pa.string()),
                          "u": pa.array([url_to_text(u) for u in encoded], pa.string())})
        duck.register("_mm_url_fixes", fixes)
        duck.execute("UPDATE _mm_urls SET u = f.u FROM _mm_url_fixes f WHERE _mm_urls.url = f.url")
        duck.unregister("_mm_url_fixes")

    todo = [r[0] for r in duck.execute("""
        WITH texts AS (
            SELECT q AS text FROM _mm_sources WHERE q <> ''
            UNION SELECT t FROM _mm_sources WHERE t <> ''
            UNION SELECT u FROM _mm_urls WHERE u <> ''
        )
        SELECT text FROM texts
        WHERE text NOT IN (SELECT text FROM moments_by_text WHERE model_version = ?)
        ORDER BY text
    """, [version]).fetchall()]
    n_distinct = int(duck.execute("""
        SELECT count(*) FROM (SELECT q FROM _mm_sources WHERE q <> '' UNION SELECT t FROM _mm_sources
        WHERE t <> '' UNION SELECT u FROM _mm_urls WHERE u <> '')""").fetchone()[0])

    for start in range(0, len(todo), BATCH):
        chunk = todo[start : start + BATCH]
        batch = classified_rows(chunk, clf.predict(chunk), version)
        duck.register("_mm_batch", batch)
        duck.execute("DELETE FROM moments_by_text WHERE text IN (SELECT text FROM _mm_batch)")
        duck.execute("INSERT INTO moments_by_text SELECT * FROM _mm_batch")
        duck.unregister("_mm_batch")
        if progress:
            progress(min(start + BATCH, len(todo)), len(todo))

    duck.register("_mm_rules_view", rule_rows(rules))
    duck.execute("CREATE OR REPLACE TEMP TABLE _mm_rules AS SELECT * FROM _mm_rules_view")
    duck.unregister("_mm_rules_view")
    # Rules are resolved once per distinct (event name, URL, properties-when-a-rule-reads-them),
    # not once per event: a CASE over ~70 rules on 10M rows would dominate the step.
    props = rule_properties_sql(rules)
    duck.execute(f"""
        CREATE OR REPLACE TEMP TABLE _mm_keyed AS
        SELECT message_id, q, t, url, hash(ev, url, {props}) AS rule_key, ev, {props} AS props FROM _mm_sources
    """)
    rule_idx = rules_sql(rules, "ev", "url", "props", event_is_normalised=True)
    duck.execute(f"""
        CREATE OR REPLACE TEMP TABLE _mm_rule_hits AS
        SELECT rule_key, rule FROM (
            SELECT rule_key, any_value(ev) AS ev, any_value(url) AS url, any_value(props) AS props
            FROM _mm_keyed WHERE ev IS NOT NULL OR url IS NOT NULL GROUP BY rule_key
        ), LATERAL (SELECT {rule_idx} AS rule) WHERE rule IS NOT NULL
    """)
    duck.execute("BEGIN TRANSACTION")  # `event_moments` and the stamped columns change together
    try:
        # Every event's moment (NULL for events without one): `event_moments` is its rows with a
        # basis; `stamp_moments` copies it onto `events`.
        duck.execute(f"""
            CREATE OR REPLACE TEMP TABLE _mm_all_moments AS
            WITH s AS (
                SELECT k.message_id, k.q, k.t, coalesce(u.u, '') AS u, h.rule
                FROM _mm_keyed k
                LEFT JOIN _mm_urls u ON k.url = u.url
                LEFT JOIN _mm_rule_hits h ON k.rule_key = h.rule_key
            ), {moments_sql("s", version)}""")
        duck.execute("""CREATE OR REPLACE TABLE event_moments AS
                        SELECT * FROM _mm_all_moments WHERE basis IS NOT NULL""")
        stamp_moments(duck, "_mm_all_moments")
    except BaseException:
        duck.execute("ROLLBACK")
        raise
    duck.execute("COMMIT")
    for tmp in ("_mm_sources", "_mm_urls", "_mm_rules", "_mm_keyed", "_mm_rule_hits", "_mm_all_moments"):
        duck.execute(f"DROP TABLE IF EXISTS {tmp}")
    return {
        "events": store.count("events"),  # type: ignore[attr-defined]
        "distinct_texts": n_distinct,
        "classified": len(todo),
        "cached": n_distinct - len(todo),
        "event_moments": store.count("event_moments"),  # type: ignore[attr-defined]
        "model_version": version,
        "seconds": round(time.perf_counter() - started, 3),
    }
