"""Glue for the edges (CLI, report, benchmark): events from the store -> sessions -> episodes -> stages.

`JourneySettings` gathers the knobs from `micromoments.toml`; `load_events` reads `events`
with the intent engine's moments when `event_moments` exists.

`build_journey` gives the same tables as `sessionize` -> `episodes` -> `assign_stages` /
`session_features`, computed for speed. On DuckDB (`method="kernel"`, the default there) one
read, ordered in numpy, feeds the kernel of `journey.sequence` (`journey.fastpath`), and the per-event
table is the events joined with their keys (`_mm_event_keys`). Elsewhere (`method="ibis"`, Spark):
the vocabulary flags once per distinct (event, page_path), the session windows over the few
columns later steps read (`_mm_facts`), episodes and session stages from those facts, and the
per-event table as a join of the events with their facts (see the `## journey` section of
docs/benchmarks.md for what each change saved).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from micromoments.journey.episodes import DEFAULT_EPISODE_GAP_MINUTES, episodes_from_facts, finish_episodes
from micromoments.journey.moments import events_with_moments, has_stamped_moments, without_moments
from micromoments.journey.sessions import (
    DEFAULT_GAP_MINUTES,
    event_facts,
    event_kinds,
    sessionize,
    with_event_flags,
    with_session_keys,
)
from micromoments.journey.stages import (
    DEFAULT_STAGE_RULES,
    assign_stages,
    finish_session_features,
    session_features_from_facts,
)
from micromoments.journey.vocab import EventVocabulary, vocabulary_from_config
from micromoments.store.settings import duckdb_settings


DEFAULT_MEMORY_LIMIT = "2GB"  # `[journey] memory_limit` in micromoments.toml
WRITE_ROWS = 2_000_000  # the kernel path writes its results back every ~this many events


@dataclass
class JourneySettings:
    session_gap_minutes: int = DEFAULT_GAP_MINUTES
    episode_gap_minutes: int = DEFAULT_EPISODE_GAP_MINUTES
    stage_rules: list[dict[str, Any]] = field(default_factory=lambda: list(DEFAULT_STAGE_RULES))
    vocab: EventVocabulary = field(default_factory=EventVocabulary)
    # DuckDB memory cap while `build_journey` runs (None: leave the connection as it is).
    memory_limit: str | None = None

    @classmethod
    def from_config(cls, config: Any | None) -> "JourneySettings":
        journey = getattr(config, "journey", None)
        return cls(
            session_gap_minutes=int(getattr(journey, "session_gap_minutes", DEFAULT_GAP_MINUTES)),
            episode_gap_minutes=int(getattr(journey, "episode_gap_minutes", DEFAULT_EPISODE_GAP_MINUTES)),
            stage_rules=list(getattr(journey, "stage_rules", None) or DEFAULT_STAGE_RULES),
            vocab=vocabulary_from_config(config),
            memory_limit=getattr(journey, "memory_limit", DEFAULT_MEMORY_LIMIT) or None,
        )


def load_events(store: Any) -> tuple[ir.Table, bool]:
    """`(events, has_moments)`: the store's events with `moment`/`go_type`/`confidence` columns.

    The intent engine stamps them onto `events` (`intent.store_step.stamp_moments`), so they are
    read as they are; a store classified before that joins `event_moments` instead.
    """
    events = store.table("events")
    if store.has_table("event_moments"):
        if has_stamped_moments(events):
            return events, True
        return events_with_moments(events, store.table("event_moments")), True
    return without_moments(events), False


@dataclass
class Journey:
    """The three derived tables every journey view starts from (Ibis expressions)."""

    sessionized: ir.Table  # events + secs, event_no, session_no, session_id (a join, not a copy)
    episodes: ir.Table  # with `stage`
    sessions: ir.Table  # session features with `stage`


# The event columns journey analytics read. Carrying the other ~25 columns through the window
# sorts made sessionizing 4x slower on DuckDB.
JOURNEY_COLUMNS = ("message_id", "person_id", "ts", "type", "event", "channel", "query", "page_path",
                   "page_title", "timezone", "device_type", "revenue", "moment", "go_type", "confidence")


# What `event_facts` reads (the vocabulary looks at `event` and `page_path`).
FACT_INPUTS = ("message_id", "person_id", "ts", "event", "channel", "query", "page_path", "revenue",
               "moment", "confidence")


def journey_columns(events: ir.Table) -> ir.Table:
    """Only the columns the journey analytics need (others are dropped before the window sorts)."""
    return events.select(*[c for c in JOURNEY_COLUMNS if c in events.columns])


def build_journey(events: ir.Table, settings: JourneySettings | None = None, con: Any | None = None,
                  method: str = "auto") -> Journey:
    """Sessions, staged episodes and staged sessions for `events` (which carry moment columns).

    With `con` (an Ibis backend), each step is computed once into a temp table and the next step
    reads that table, so the windows are not recomputed by every view built on top; on DuckDB
    the build runs under `settings.memory_limit` (config `[journey] memory_limit`, default 2GB).
    `events` must have unique `message_id`s (the store's do).

    `method`: `"kernel"` (the default on DuckDB: one read, a numpy sort and the numpy kernel of
    `journey.sequence`, see `journey.fastpath`), `"spark-kernel"` (the default on Spark: the same
    kernel on partitions of people, see `journey.spark_kernel`), `"ibis"` (window SQL; the
    reference the kernels are tested against) or `"auto"`.

    >>> # j = build_journey(load_events(store)[0], con=store.ibis); store.ibis.execute(j.episodes)
    """
    settings = settings or JourneySettings()
    if method not in ("auto", "kernel", "spark-kernel", "ibis"):
        raise ValueError(f"method must be auto, kernel, spark-kernel or ibis, got {method!r}")
    if method == "auto":
        method = {"duckdb": "kernel", "pyspark": "spark-kernel"}.get(getattr(con, "name", ""), "ibis")
    if method == "kernel" and (con is None or getattr(con, "name", "") != "duckdb"):
        raise ValueError("method='kernel' needs a DuckDB backend as `con`")

    def keep(name: str, expr: ir.Table) -> ir.Table:
        if con is not None and getattr(con, "name", "") == "pyspark":
            return cached_view(con, f"_mm_{name}", expr)
        return con.create_table(f"_mm_{name}", expr, temp=True, overwrite=True) if con is not None else expr

    if method == "kernel":
        with _memory_limit(con, settings.memory_limit):
            return _build_with_kernel(events, settings, con)
    if method == "spark-kernel":
        return _build_with_spark_kernel(events, settings, con)

    with _memory_limit(con, settings.memory_limit):
        cols = journey_columns(events)
        # Sessions are cut on a narrow projection (sorting every event column cost 4x), the
        # vocabulary flags are evaluated once, and episodes and session stages read these facts.
        narrow = cols.select(*[c for c in FACT_INPUTS if c in cols.columns])
        kinds = keep("event_kinds", event_kinds(narrow, settings.vocab))
        flagged = with_event_flags(narrow, kinds=kinds).drop("event", "page_path")
        facts = keep("facts", event_facts(sessionize(flagged, settings.session_gap_minutes)))
        # The per-event table is the events joined with their facts, not a copy: writing all event
        # columns to a temp table cost more than the sessions and episodes themselves.
        s = with_session_keys(cols, facts)
        # Staged in the same step: session features read only columns the stage does not change.
        staged = keep("episodes", assign_stages(episodes_from_facts(facts, settings.episode_gap_minutes),
                                                settings.stage_rules))
        sess = keep("sessions", assign_stages(session_features_from_facts(facts, staged), settings.stage_rules))
    return Journey(s, staged, sess)


def _build_with_kernel(events: ir.Table, settings: JourneySettings, con: Any) -> Journey:
    """`build_journey` on DuckDB through the numpy kernel (same tables as the Ibis path)."""
    from micromoments.journey import fastpath

    cols = journey_columns(events)
    narrow = cols.select(*[c for c in FACT_INPUTS if c in cols.columns])
    duck = con.con
    names = ("_mm_arrow_keys", "_mm_arrow_episodes", "_mm_arrow_sessions")
    sql: dict[str, str] = {}

    def flush(parts: list[tuple[Any, ...]]) -> None:
        with fastpath.timed("write"):
            try:
                for k, name in enumerate(names):
                    # Registering the Arrow table as a view was 4x cheaper than `ibis.memtable`.
                    duck.register(name, pa.concat_tables([p[k] for p in parts]))
                if not sql:  # the views keep their names, so the SQL is compiled once
                    exprs = {
                        # The per-event keys (message_id, event_no, session_no): `sessionized` joins them.
                        "event_keys": con.table(names[0]),
                        "episodes": assign_stages(finish_episodes(con.table(names[1])), settings.stage_rules),
                        "sessions": assign_stages(finish_session_features(con.table(names[2])), settings.stage_rules),
                    }
                    sql.update({step: ibis.to_sql(expr, dialect="duckdb") for step, expr in exprs.items()})
                    for step, query in sql.items():
                        # Plain SQL: `con.create_table(expr)` took twice as long for the same table.
                        duck.execute(f'CREATE OR REPLACE TEMP TABLE "_mm_{step}" AS {query}')
                else:
                    for step, query in sql.items():
                        duck.execute(f'INSERT INTO "_mm_{step}" {query}')
            finally:
                for name in names:
                    duck.unregister(name)

    # Results are written every ~WRITE_ROWS rows, so Python holds a bounded slice of them.
    pending: list[tuple[Any, ...]] = []
    rows = 0
    for parts in fastpath.kernel_parts(con, narrow, settings.vocab, settings.session_gap_minutes,
                              settings.episode_gap_minutes):
        pending.append(parts)
        rows += max(p.num_rows for p in parts)
        if rows >= WRITE_ROWS:
            flush(pending)
            pending, rows = [], 0
    if pending or not sql:
        flush(pending)
    tables = {step: con.table(f"_mm_{step}") for step in sql}
    facts, staged, sess_t = tables["event_keys"], tables["episodes"], tables["sessions"]
    return Journey(with_session_keys(cols, facts), staged, sess_t)


def temp_table(con: Any, name: str, obj: Any) -> ir.Table:
    """`con.create_table(name, obj, temp=True, overwrite=True)` on any engine: on Spark (no temporary
    tables in Ibis's PySpark backend) a cached temp view of the expression or pandas frame.

    >>> con = ibis.duckdb.connect()
    >>> temp_table(con, "_t", ibis.memtable({"a": [1, 2]})).count().execute()
    2
    """
    if getattr(con, "name", "") != "pyspark":
        return con.create_table(name, obj, temp=True, overwrite=True)
    if not isinstance(obj, ir.Table):
        con._session.createDataFrame(obj).createOrReplaceTempView(name)
        con._session.catalog.cacheTable(name)
        return con.table(name)
    return cached_view(con, name, obj)


def cached_view(con: Any, name: str, expr: ir.Table) -> ir.Table:
    """Spark's temp table: a temp view computed once, when first read, and then kept in the cache
    (Ibis's PySpark backend has no temporary tables).

    >>> # staged = cached_view(spark_con, "_mm_episodes", episodes_expr)
    """
    session = con._session
    if session.catalog.tableExists(name):
        session.catalog.uncacheTable(name)
    table = con.create_view(name, expr, overwrite=True)
    session.catalog.cacheTable(name)
    return table


def _build_with_spark_kernel(events: ir.Table, settings: JourneySettings, con: Any) -> Journey:
    """`build_journey` on Spark: the same kernel on partitions of people (`journey.spark_kernel`)."""
    from micromoments.journey.spark_kernel import kernel_tables

    cols = journey_columns(events)
    narrow = cols.select(*[c for c in FACT_INPUTS if c in cols.columns])
    frames = kernel_tables(con, narrow, settings.vocab, settings.session_gap_minutes, settings.episode_gap_minutes)
    for name, frame in zip(("_mm_kernel_keys", "_mm_kernel_episodes", "_mm_kernel_sessions"), frames):
        frame.createOrReplaceTempView(name)
    keys = con.table("_mm_kernel_keys")
    staged = cached_view(con, "_mm_episodes", assign_stages(finish_episodes(con.table("_mm_kernel_episodes")),
                                                            settings.stage_rules))
    sess = cached_view(con, "_mm_sessions", assign_stages(finish_session_features(con.table("_mm_kernel_sessions")),
                                                          settings.stage_rules))
    return Journey(with_session_keys(cols, keys), staged, sess)


@contextmanager
def _memory_limit(con: Any | None, limit: str | None) -> Iterator[None]:
    """Cap DuckDB's memory (it spills to disk beyond) for the block, as ingest does; restore after."""
    if con is None or not limit or getattr(con, "name", "") != "duckdb":
        yield
        return
    with duckdb_settings(con.con, memory_limit=limit):
        yield


def materialize(con: Any, journey: Journey, prefix: str = "_mm_") -> Journey:
    """Compute an already built journey into temp tables of `con` (prefer `build_journey(..., con=)`)."""
    names = {}
    for part in ("sessionized", "episodes", "sessions"):
        names[part] = temp_table(con, f"{prefix}{part}", getattr(journey, part))
    return Journey(**names)


def execute(expr: ir.Table, con: Any | None = None):
    """Run an expression on `con` (or its own backend) and return pandas."""
    return con.execute(expr) if con is not None else expr.execute()


__all__ = ["Journey", "JourneySettings", "build_journey", "cached_view", "execute", "ibis", "load_events", "materialize",
           "temp_table"]
