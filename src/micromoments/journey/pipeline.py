"""Glue for the edges (CLI, report, benchmark): events from the store -> sessions -> episodes -> stages.

`JourneySettings` gathers the knobs from `micromoments.toml`; `load_events` reads `events`
with the intent engine's moments when `event_moments` exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir

from micromoments.journey.episodes import DEFAULT_EPISODE_GAP_MINUTES, episodes
from micromoments.journey.moments import events_with_moments, without_moments
from micromoments.journey.sessions import DEFAULT_GAP_MINUTES, sessionize
from micromoments.journey.stages import DEFAULT_STAGE_RULES, assign_stages, session_features
from micromoments.journey.vocab import EventVocabulary, vocabulary_from_config


@dataclass
class JourneySettings:
    session_gap_minutes: int = DEFAULT_GAP_MINUTES
    episode_gap_minutes: int = DEFAULT_EPISODE_GAP_MINUTES
    stage_rules: list[dict[str, Any]] = field(default_factory=lambda: list(DEFAULT_STAGE_RULES))
    vocab: EventVocabulary = field(default_factory=EventVocabulary)

    @classmethod
    def from_config(cls, config: Any | None) -> "JourneySettings":
        journey = getattr(config, "journey", None)
        return cls(
            session_gap_minutes=int(getattr(journey, "session_gap_minutes", DEFAULT_GAP_MINUTES)),
            episode_gap_minutes=int(getattr(journey, "episode_gap_minutes", DEFAULT_EPISODE_GAP_MINUTES)),
            stage_rules=list(getattr(journey, "stage_rules", None) or DEFAULT_STAGE_RULES),
            vocab=vocabulary_from_config(config),
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

    sessionized: ir.Table
    episodes: ir.Table  # with `stage`
    sessions: ir.Table  # session features with `stage`


# The event columns journey analytics read. Carrying the other ~25 columns through the window
# sorts made sessionizing 4x slower on DuckDB.
JOURNEY_COLUMNS = ("message_id", "person_id", "ts", "type", "event", "channel", "query", "page_path",
                   "page_title", "timezone", "device_type", "revenue", "moment", "go_type", "confidence")


def journey_columns(events: ir.Table) -> ir.Table:
    """Only the columns the journey analytics need (others are dropped before the window sorts)."""
    return events.select(*[c for c in JOURNEY_COLUMNS if c in events.columns])


def build_journey(events: ir.Table, settings: JourneySettings | None = None, con: Any | None = None) -> Journey:
    """Sessions, staged episodes and staged sessions for `events` (which carry moment columns).

    With `con` (an Ibis backend), each step is computed once into a temp table and the next step
    reads that table, so the windows are not recomputed by every view built on top.
    """
    settings = settings or JourneySettings()

    def keep(name: str, expr: ir.Table) -> ir.Table:
        return con.create_table(f"_mm_{name}", expr, temp=True, overwrite=True) if con is not None else expr

    s = keep("sessionized", sessionize(journey_columns(events), settings.session_gap_minutes))
    ep = keep("episodes_raw", episodes(s, settings.episode_gap_minutes, settings.vocab))
    staged = keep("episodes", assign_stages(ep, settings.stage_rules))
    sess = keep("sessions", assign_stages(session_features(s, ep, settings.vocab), settings.stage_rules))
    return Journey(s, staged, sess)


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
