"""Glue for the edges (CLI, report, benchmark): events from the store -> sessions -> episodes -> stages.

`JourneySettings` gathers the knobs from `micromoments.toml`; `load_events` reads `events`
with the intent engine's moments when `event_moments` exists.

`build_journey` gives the same tables as `sessionize` -> `episodes` -> `assign_stages` /
`session_features`, computed for speed: the vocabulary flags once per distinct (event, page_path),
the session windows over the few columns later steps read (`_mm_facts`), episodes and session
stages from those facts, and the per-event table as a join of the events with their facts
(see the `## journey` section of docs/benchmarks.md for what each change saved).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir

from micromoments.journey.episodes import DEFAULT_EPISODE_GAP_MINUTES, episodes_from_facts
from micromoments.journey.moments import events_with_moments, without_moments
from micromoments.journey.sessions import (
    DEFAULT_GAP_MINUTES,
    event_facts,
    event_kinds,
    sessionize,
    with_event_flags,
    with_session_keys,
)
from micromoments.journey.stages import DEFAULT_STAGE_RULES, assign_stages, session_features_from_facts
from micromoments.journey.vocab import EventVocabulary, vocabulary_from_config


DEFAULT_MEMORY_LIMIT = "2GB"  # `[journey] memory_limit` in micromoments.toml


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
    """`(events, has_moments)`: the store's events with `moment`/`go_type`/`confidence` columns."""
    events = store.table("events")
    if store.has_table("event_moments"):
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


def build_journey(events: ir.Table, settings: JourneySettings | None = None, con: Any | None = None) -> Journey:
    """Sessions, staged episodes and staged sessions for `events` (which carry moment columns).

    With `con` (an Ibis backend), each step is computed once into a temp table and the next step
    reads that table, so the windows are not recomputed by every view built on top; on DuckDB
    the build runs under `settings.memory_limit` (config `[journey] memory_limit`, default 2GB).
    `events` must have unique `message_id`s (the store's do).
    """
    settings = settings or JourneySettings()

    def keep(name: str, expr: ir.Table) -> ir.Table:
        return con.create_table(f"_mm_{name}", expr, temp=True, overwrite=True) if con is not None else expr

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


@contextmanager
def _memory_limit(con: Any | None, limit: str | None) -> Iterator[None]:
    """Cap DuckDB's memory (it spills to disk beyond) for the block, as ingest does; restore after."""
    if con is None or not limit or getattr(con, "name", "") != "duckdb":
        yield
        return
    previous = con.raw_sql("SELECT current_setting('memory_limit')").fetchone()[0]
    con.raw_sql(f"SET memory_limit = '{limit.replace(chr(39), '')}'")
    try:
        yield
    finally:
        con.raw_sql(f"SET memory_limit = '{previous}'")


def materialize(con: Any, journey: Journey, prefix: str = "_mm_") -> Journey:
    """Compute an already built journey into temp tables of `con` (prefer `build_journey(..., con=)`)."""
    names = {}
    for part in ("sessionized", "episodes", "sessions"):
        names[part] = con.create_table(f"{prefix}{part}", getattr(journey, part), temp=True, overwrite=True)
    return Journey(**names)


def execute(expr: ir.Table, con: Any | None = None):
    """Run an expression on `con` (or its own backend) and return pandas."""
    return con.execute(expr) if con is not None else expr.execute()


__all__ = ["Journey", "JourneySettings", "build_journey", "execute", "ibis", "load_events", "materialize"]
