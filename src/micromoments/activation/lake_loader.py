"""The live worker's writer when the engine is Spark: closed WAL segments -> Parquet files in the lake.

`LakeLoader` is the `StoreLoader` of a lake (same `start` / `flush` / `close`, same counters for
/admin/stats). Each round runs the segments through the very same `ingest_file` (mapping, quarantine,
keying) into a scratch DuckDB (a file in the WAL folder) seeded with the lake's id links, adds the refused events and
the activation-log rows (decisions, exposures, outcomes, assignments) there, then appends the round
to the lake as Parquet files - no Spark in the web server. Rounds run every `[server] flush_interval_ms`
but at most every `[store] lake_round_seconds` (60 s: fewer, bigger files; the WAL holds the events):

- `events/event_date=D/live-<round>-0.parquet`, one file per event date, the batch ingest's columns;
- `quarantine/`, `identity_links/` (new links only) and each log table: `live-<round>.parquet`.

Exactly once: the files are written under hidden names and fsync'd, a journal (`_journal/live-<round>.json`,
naming the files and the WAL segments) is committed, the files are renamed into place, then the
segments are deleted and the journal goes (`store.lake_files`). A crash before the journal loads the
segments again (the hidden files are swept); a crash after it finishes the round on restart instead.
Events the lake already holds are dropped by `message_id`: a client's resend is checked against the
partitions (event dates) of the round, whose ids are cached for the most recent `seen_dates` dates;
`micromoments lake compact` drops any duplicate left (e.g. from a batch ingest of the same events).

Identities: the events are keyed with every link known (the lake's plus the new ones), new links are
appended, and the ids whose person changed (by the scratch's re-stitching over every link) are appended
to `identities/live-<round>.parquet`; readers take the latest row per id (`store.lake.latest_identities`),
so an older event gets its new person at once. `micromoments lake compact` folds the deltas back into
one table recomputed on Spark.

>>> # loader = LakeLoader(wal, "micromoments-lake", config=cfg); loader.flush()
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from micromoments.activation.quarantine_log import QuarantineLog
from micromoments.activation.wal import WriteAheadLog
from micromoments.activation.wal_loader import LOG_TABLES, LogSink, StoreLoader
from micromoments.config import Config
from micromoments.store import Store
from micromoments.store.identity import rebuild_identities
from micromoments.store.lake import LIVE_PREFIX
from micromoments.store.lake_files import LakeFiles

__all__ = ["LakeLoader", "make_loader"]

PREFIX = LIVE_PREFIX  # "live-": the loader's files and journals (a compaction has its own)
NULL_DATE = "__HIVE_DEFAULT_PARTITION__"  # Spark's folder for a NULL partition value
SCRATCH = "lake-scratch.duckdb"


class LakeLoader(StoreLoader):
    """Moves closed WAL segments into the lake at `lake` every `interval_ms` (see the module docstring)."""

    def __init__(self, wal: WriteAheadLog, lake: str | Path, *, config: Config | None = None,
                 interval_ms: int = 1000, log_sink: LogSink | None = None, store: Any = None,
                 quarantine: QuarantineLog | None = None, seen_dates: int = 3):
        self.files = LakeFiles(str(lake))
        # A scratch file next to the segments, not memory: the cached ids of busy days can be large.
        scratch = wal.directory / SCRATCH
        for leftover in (scratch, scratch.with_name(SCRATCH + ".wal")):
            leftover.unlink(missing_ok=True)  # derived data: rebuilt from the lake at every start
        super().__init__(wal, str(lake), config=config, interval_ms=interval_ms, log_sink=log_sink,
                         store=Store(scratch), quarantine=quarantine)
        self.interval_s = max(self.interval_s, self.config.store.lake_round_seconds)
        self.seen_dates = seen_dates
        self._taken: list[Path] = []
        self._joined: Path | None = None
        self._refused_taken = False
        self._cached: list[str] = []  # event dates whose message_ids are in `_seen`, oldest first
        con = self.store.duck
        con.execute("CREATE TABLE _seen (event_date VARCHAR, message_id VARCHAR)")
        con.execute("CREATE TABLE _known_links (a VARCHAR, b VARCHAR)")
        # A round the last run committed but did not finish: finish it (its segments go).
        self.files.replay(PREFIX, after=self._forget)
        self.files.sweep(PREFIX)
        links = self.files.read("identity_links", ["a", "b", "via"])
        if links is not None and links.num_rows:
            con.register("_lake_links", links)
            con.execute("INSERT INTO identity_links SELECT a, b, via FROM _lake_links")
            con.execute("INSERT INTO _known_links SELECT DISTINCT a, b FROM _lake_links")
            con.unregister("_lake_links")
        # Who is who as the lake's readers see it (every writer of links also writes identities).
        rebuild_identities(con)
        con.execute("CREATE TABLE _known_ids AS SELECT id, id_type, person_id FROM identities")
        self._in_lake = self.files.rows("events")

    def close(self) -> None:
        """Stop the thread, append what is left, drop the scratch file."""
        try:
            super().close()
        finally:
            scratch = self.wal.directory / SCRATCH
            for leftover in (scratch, scratch.with_name(SCRATCH + ".wal")):
                leftover.unlink(missing_ok=True)

    def event_count(self) -> int:
        """Events in the lake (from the Parquet footers at start, plus what this loader appended)."""
        return self._in_lake

    def _load_segments(self) -> dict[str, int]:
        self.files.replay(PREFIX, after=self._forget)  # a round whose commit failed half-way: finish it first
        return super()._load_segments()

    # -- the parent's hooks: nothing is released before the round is in the lake
    def _release(self, segments: list[Path], path: Path) -> None:
        self._taken += segments
        self._joined = path if path not in segments else None

    def _release_refused(self) -> None:
        self._refused_taken = True

    def _commit(self, result: dict[str, int]) -> None:
        try:
            self._publish(result)
        finally:  # on failure the segments load again next round: start from an empty scratch
            con = self.store.duck
            for table in ("events", "quarantine", *LOG_TABLES):
                con.execute(f'DELETE FROM "{table}"')
            if self._joined is not None:
                self._joined.unlink(missing_ok=True)
            self._taken, self._joined, self._refused_taken = [], None, False

    def _publish(self, result: dict[str, int]) -> None:
        con = self.store.duck
        dates = [r[0] for r in con.execute(
            f"SELECT DISTINCT coalesce(CAST(CAST(ts AS DATE) AS VARCHAR), '{NULL_DATE}') FROM events").fetchall()]
        for day in dates:
            self._remember(day)
        again = con.execute("DELETE FROM events WHERE message_id IN (SELECT message_id FROM _seen)").fetchone()[0]
        if again:  # already in the lake: a resend, or a batch ingest got there first
            result["loaded"] -= again
            result["duplicates"] += again
            self.loaded -= again
            self.duplicates += again
        round_id = f"{PREFIX}{time.time_ns():020d}-{os.getpid()}"
        moves: list[list[str]] = []

        def stage(rel: str, select: str) -> None:
            hidden = self.files.write_hidden(rel, lambda p: con.execute(
                f"COPY ({select}) TO '{_quote(p)}' (FORMAT PARQUET)"))
            moves.append([hidden, rel])

        for day in dates:
            if con.execute(f"SELECT count(*) FROM events WHERE {_on_date(day)}").fetchone()[0]:
                stage(f"events/event_date={day}/{round_id}-0.parquet", f"SELECT * FROM events WHERE {_on_date(day)}")
        new_links = "SELECT a, b, min(via) AS via FROM identity_links l WHERE NOT EXISTS (SELECT 1 FROM _known_links k " \
                    "WHERE k.a = l.a AND k.b = l.b) GROUP BY a, b"
        changed = "SELECT id, id_type, person_id FROM identities i WHERE NOT EXISTS (SELECT 1 FROM _known_ids k " \
                  "WHERE k.id = i.id AND k.id_type = i.id_type AND k.person_id = i.person_id)"
        for table, select in (("quarantine", "SELECT * FROM quarantine"), ("identity_links", new_links),
                              ("identities", changed),
                              *((t, f'SELECT * FROM "{t}"') for t in LOG_TABLES)):
            if con.execute(f"SELECT count(*) FROM ({select})").fetchone()[0]:
                stage(f"{table}/{round_id}.parquet", select)
        if not moves and not self._taken and not self._refused_taken:
            return
        segments = [p.name for p in self._taken]
        self.files.commit(f"{round_id}.json", {"moves": moves, "deletes": [], "segments": segments,
                                               "refused": self._refused_taken}, after=self._forget)
        published = con.execute("SELECT count(*) FROM events").fetchone()[0]
        self._in_lake += published
        con.execute(f"INSERT INTO _seen SELECT coalesce(CAST(CAST(ts AS DATE) AS VARCHAR), '{NULL_DATE}'), message_id "
                    f"FROM events")
        con.execute(f"INSERT INTO _known_links SELECT a, b FROM ({new_links})")
        con.execute(f"CREATE TEMP TABLE _changed AS {changed}")
        con.execute("DELETE FROM _known_ids WHERE id IN (SELECT id FROM _changed)")
        con.execute("INSERT INTO _known_ids SELECT * FROM _changed")
        con.execute("DROP TABLE _changed")
        # Keep memory bounded: resends are of recent days (an older one reloads its date's ids).
        for day in sorted(self._cached)[:-self.seen_dates or None]:
            con.execute("DELETE FROM _seen WHERE event_date = ?", [day])
            self._cached.remove(day)

    def _forget(self, change: dict[str, Any]) -> None:
        """A committed round is in the lake: delete its WAL segments and the refused rows it took."""
        for name in change.get("segments", []):
            (self.wal.directory / name).unlink(missing_ok=True)
        if change.get("refused") and self.quarantine_log is not None:
            self.quarantine_log.done()

    def _remember(self, day: str) -> None:
        """Cache the message_ids the lake holds for event date `day` (the most recent `seen_dates` dates)."""
        if day in self._cached:
            return
        con = self.store.duck
        ids = self.files.read(f"events/event_date={day}", ["message_id"])
        if ids is not None and ids.num_rows:
            con.register("_day_ids", pa.table({"message_id": ids.column("message_id")}))
            con.execute("INSERT INTO _seen SELECT ?, message_id FROM _day_ids", [day])
            con.unregister("_day_ids")
        self._cached.append(day)


def _on_date(day: str) -> str:
    return "ts IS NULL" if day == NULL_DATE else f"CAST(ts AS DATE) = DATE '{day}'"


def _quote(path: str) -> str:
    return path.replace("'", "''")


def make_loader(wal: WriteAheadLog, store_path: str | Path, *, config: Config, **kwargs: Any) -> StoreLoader:
    """The live writer of `config`'s engine: a `LakeLoader` with engine = "spark", else a `StoreLoader`.

    >>> make_loader.__name__
    'make_loader'
    """
    if config.store.engine == "spark":
        kwargs.pop("store", None)  # the server's DuckDB store is not where the events go
        return LakeLoader(wal, store_path, config=config, **kwargs)
    return StoreLoader(wal, store_path, config=config, **kwargs)
