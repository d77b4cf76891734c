"""The heavy analytics behind the pages, computed once per store state and kept in memory.

`AnalyticsCache(store_path).snapshot()` returns a `Snapshot`: the report's `ReportData`
(`report.data.collect_with_journey`), the journey temp tables on a connection of its own (for the
funnel builder and example journeys), and small pandas frames (sessions, episodes, per-person paths)
that the pages slice per request in milliseconds.

A snapshot is keyed by a *signature*: the row counts of the analysed tables (events, event_moments,
moments_by_text, personas). The live activation logs (decisions, exposures, outcomes) are not in it,
so a busy server does not recompute the journeys on every decision; those small tables are read
per request. When the signature changes, the old snapshot keeps serving while one background thread
builds the next (at most one rebuild per `min_refresh_s`); only the very first request waits.

>>> # cache = AnalyticsCache("micromoments.duckdb"); snap = cache.snapshot(); snap.report.kpis["people"]
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import pandas as pd

from micromoments.journey.maps import ARROW
from micromoments.journey.people import counts_as_person
from micromoments.journey.pipeline import Journey
from micromoments.report.data import ReportData, collect_with_journey

log = logging.getLogger(__name__)

SIGNATURE_TABLES = ("events", "event_moments", "moments_by_text", "personas", "person_features", "persona_descriptions")
EPISODE_COLUMNS = ["person_id", "session_id", "session_no", "episode_no", "start", "secs_start", "duration_s",
                   "moment", "channel", "trigger_query", "converted", "outcome", "revenue", "stage",
                   "converted_session", "converted_window"]
SESSION_COLUMNS = ["person_id", "session_id", "start", "converted", "revenue", "stage", "moment", "events"]
PATH_STEPS = 4  # as in the report's Sankey and top paths


class CursorStore:
    """The part of `Store` the analytics use, over its own DuckDB cursor (own temp tables, own thread)."""

    def __init__(self, duck: Any):
        self.duck = duck
        self.duck.execute("SET TimeZone = 'UTC'")
        self.ibis = ibis.duckdb.from_connection(duck)

    def has_table(self, name: str) -> bool:
        return bool(self.duck.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary", [name]).fetchone()[0])

    def table(self, name: str) -> Any:
        return self.ibis.table(name)

    def count(self, name: str) -> int:
        return int(self.duck.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        return self.duck.execute(sql, params or []).df()


@dataclass
class Snapshot:
    """One computed state of the store. Frames are read-only by convention; `memo` holds derived
    results (rendered charts, funnels) so they are built once per snapshot."""

    signature: tuple
    computed_at: float
    seconds: float
    report: ReportData
    db: CursorStore
    journey: Journey | None
    sessions: pd.DataFrame
    episodes: pd.DataFrame
    person_paths: pd.Series  # person_id -> "know → buy → do"
    event_counts: pd.Series  # event name -> count, biggest first
    tables: set[str]
    prerender_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards `db` (one DuckDB cursor)
    memo: "OrderedDict[Any, Any]" = field(default_factory=OrderedDict)
    memo_lock: threading.Lock = field(default_factory=threading.Lock)
    panel_errors: dict[str, str] = field(default_factory=dict)  # panel -> error, for /app/api/status
    partial: bool = False  # a quick snapshot without journeys (server.pages.quick), while the first is computed

    @property
    def has_events(self) -> bool:
        return self.report.has_events

    def remember(self, key: Any, build: Any, limit: int = 256) -> Any:
        """`build()` once per snapshot and key (an LRU of `limit` entries)."""
        with self.memo_lock:
            if key in self.memo:
                self.memo.move_to_end(key)
                return self.memo[key]
        value = build()
        with self.memo_lock:
            self.memo[key] = value
            while len(self.memo) > limit:
                self.memo.popitem(last=False)
        return value

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        with self.lock:
            return self.db.query(sql, params)

    def execute(self, expr: Any) -> pd.DataFrame:
        with self.lock:
            return self.db.ibis.execute(expr)


def person_paths(episodes: pd.DataFrame, max_steps: int = PATH_STEPS) -> pd.Series:
    """Each person's path of moment types, repeats merged, as `journey.maps.top_paths` writes it
    (`know → buy → do`, longer paths ending in `→ …`), so a path row links to its people."""
    if episodes.empty:
        return pd.Series(dtype="string")
    ep = episodes.sort_values(["person_id", "secs_start", "session_no", "episode_no"])
    labels = ep.moment.fillna("(none)")
    keep = labels.ne(labels.groupby(ep.person_id).shift())
    steps = labels[keep].groupby(ep.person_id[keep]).agg(list)

    def join(seq: list[str]) -> str:
        return ARROW.join(seq[:max_steps]) + (ARROW + "…" if len(seq) > max_steps else "")

    return steps.map(join)


class AnalyticsCache:
    """Snapshots of one store file; thread-safe. `snapshot()` is what the pages call."""

    def __init__(self, store_path: str | Path, config: Any | None = None, *, min_refresh_s: float = 30.0,
                 check_every_s: float = 2.0, duck: Any | None = None,
                 prerender: Callable[[Snapshot], None] | None = None):
        self.store_path = str(store_path)
        self.prerender = prerender  # fills a new snapshot's memo (charts) before it is served
        self.config = config
        self.min_refresh_s = min_refresh_s
        self.check_every_s = check_every_s
        self._duck = duck
        self._snap: Snapshot | None = None
        self._build_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._checked_at = 0.0
        self._last_signature: tuple | None = None
        self._refreshing = False
        self._warming: threading.Thread | None = None
        self.last_error: str | None = None
        self.stage, self.build_started = "", None  # what a build is doing, since when (the computing page)

    # -- connections ---------------------------------------------------------------------------
    def _root(self) -> Any:
        """The process-wide DuckDB connection to the store (cursors are taken from it)."""
        if self._duck is None:
            from micromoments.store import Store

            self._duck = Store(self.store_path).duck  # read-write: shares DuckDB's instance with the server
        return self._duck

    def cursor(self) -> CursorStore:
        return CursorStore(self._root().cursor())

    def signature(self) -> tuple:
        db = self.cursor()
        try:
            present = set(db.query("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").table_name)
            return tuple((t, db.count(t) if t in present else -1) for t in SIGNATURE_TABLES)
        finally:
            db.duck.close()

    # -- snapshots ---------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The current snapshot: built now if there is none, else the cached one (starting a
        background rebuild when the store has changed)."""
        snap = self._snap
        if snap is None:
            with self._build_lock:
                if self._snap is None:
                    self._snap = self._build(self.signature())
                return self._snap
        now = time.monotonic()
        if now - self._checked_at >= self.check_every_s:
            self._checked_at = now
            sig = self.signature()
            if sig != snap.signature:
                self._refresh_in_background(sig)
        return snap

    def refresh(self) -> Snapshot:
        """Rebuild now (blocking) and return the new snapshot."""
        with self._build_lock:
            self._snap = self._build(self.signature())
            return self._snap

    def warm(self) -> threading.Thread | None:
        """Build the first snapshot in a background thread (when the pages are mounted, and again
        after a failure). Returns the thread, or None if one is already running."""
        with self._state_lock:
            if self._warming is not None and self._warming.is_alive():
                return None

            def run() -> None:
                try:
                    self.snapshot()
                except Exception as exc:  # reported on the pages; a bad store must not kill the server
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.exception("micromoments pages: computing the analytics failed")

            self._warming = threading.Thread(target=run, name="micromoments-pages-warm", daemon=True)
            self._warming.start()
            return self._warming

    def ready(self) -> Snapshot | None:
        """The current snapshot without waiting: None while the first one is being built (and
        starts building it if nothing is)."""
        if self._snap is None:
            self.warm()
            return None
        return self.snapshot()

    def _refresh_in_background(self, sig: tuple) -> None:
        with self._state_lock:
            snap = self._snap
            too_soon = snap is not None and time.time() - snap.computed_at < self.min_refresh_s
            if self._refreshing or too_soon:
                return
            self._refreshing = True

        def run() -> None:
            try:
                new = self._build(sig)
                with self._build_lock:
                    self._snap = new
            except Exception as exc:
                self.last_error = str(exc)
                log.exception("micromoments pages: refreshing the analytics failed")
            finally:
                self._refreshing = False

        threading.Thread(target=run, name="micromoments-pages-refresh", daemon=True).start()

    def _build(self, sig: tuple) -> Snapshot:
        started = time.perf_counter()
        self.build_started, self.stage = time.monotonic(), "sessions, moments, funnels and questions"
        db = self.cursor()
        tables = set(db.query("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").table_name)
        report, journey = collect_with_journey(db, self.config)
        self.stage = "keeping sessions and moments in memory"
        sessions = pd.DataFrame(columns=SESSION_COLUMNS)
        episodes = pd.DataFrame(columns=EPISODE_COLUMNS)
        counts = pd.Series(dtype="int64")
        if journey is not None:
            con = db.ibis
            sessions = con.execute(journey.sessions.select(*SESSION_COLUMNS))
            if report.has_moments:
                episodes = con.execute(journey.episodes.select(*EPISODE_COLUMNS))
            s = journey.sessionized
            counts = con.execute(s.filter(s.event.notnull()).group_by("event").aggregate(n=lambda t: t.count()))
            counts = counts.set_index("event").n.sort_values(ascending=False)
        if not sessions.empty and report.kpis.get("anonymous"):
            # Who signed in at least once: the headline "people" counts only them (journey.people).
            is_person = counts_as_person(db.table("events"), db.ibis)
            sessions["known"] = ~sessions.person_id.isin(is_person.index[~is_person])
        else:
            sessions["known"] = True
        for frame in (sessions, episodes):
            if "start" in frame:
                frame["day"] = pd.to_datetime(frame["start"]).dt.floor("D")
        paths = person_paths(episodes)
        seconds = time.perf_counter() - started
        log.info("micromoments pages: analytics for %s computed in %.1f s", self.store_path, seconds)
        snap = Snapshot(signature=sig, computed_at=time.time(), seconds=seconds, report=report, db=db,
                        journey=journey, sessions=sessions, episodes=episodes, person_paths=paths,
                        event_counts=counts, tables=tables)
        if self.prerender is not None:
            self.stage = "drawing the charts"
            self.prerender(snap)
            snap.prerender_seconds = time.perf_counter() - started - seconds
        self.last_error = None
        return snap
