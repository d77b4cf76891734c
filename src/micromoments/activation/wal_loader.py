"""The background writer: closed WAL segments -> the DuckDB store, plus the activation logs.

Live and batch share one mapping: a WAL segment is Segment JSONL, so it goes through
`store.ingest.ingest_file` like any file (idempotent by `messageId`, bad rows to the
quarantine, identities re-stitched). A segment is deleted only after its transaction
committed, so a crash in between loads it again, harmlessly.

Decisions, exposures and outcomes from the activator arrive through `LogSink` (a callable
`(table, row)` that only appends to a deque) and are inserted by the same thread: the live
path never waits for the store.

>>> import tempfile, os
>>> from micromoments.activation.wal import WriteAheadLog
>>> d = tempfile.mkdtemp()
>>> wal = WriteAheadLog(os.path.join(d, "wal"))
>>> wal.write_sync(b'{"type":"track","event":"x","userId":"u1","timestamp":"2026-01-05T10:00:00Z"}\\n')
>>> loader = StoreLoader(wal, os.path.join(d, "s.duckdb"))
>>> loader.flush()["loaded"]
1
>>> loader.close(); wal.close()
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from micromoments.activation.quarantine_log import QuarantineLog
from micromoments.activation.wal import WriteAheadLog
from micromoments.config import Config
from micromoments.store import Store
from micromoments.store.ingest import ingest_file
from micromoments.store.schema import TABLES

__all__ = ["LogForwarder", "LogSink", "StoreLoader"]

log = logging.getLogger("micromoments.server")

_SHIP_NAME = "loading.jsonl"
LOG_TABLES = ("decisions", "exposures", "outcomes", "assignments")


class LogSink:
    """`sink(table, row)`: queue one activation-log row; never blocks, never touches the store.

    >>> sink = LogSink()
    >>> sink("decisions", {"decision_id": "d1", "status": "chosen"})
    >>> len(sink)
    1
    """

    def __init__(self, max_rows: int = 1_000_000):
        self._rows: collections.deque[tuple[str, dict[str, Any]]] = collections.deque(maxlen=max_rows)
        self.dropped = 0

    def __call__(self, table: str, row: dict[str, Any]) -> None:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        if len(self._rows) == self._rows.maxlen:
            self.dropped += 1  # the store has been down for a long time: keep the newest
        self._rows.append((table, row))

    def __len__(self) -> int:
        return len(self._rows)

    def drain(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        while True:
            try:
                table, row = self._rows.popleft()
            except IndexError:
                return out
            out.setdefault(table, []).append(row)


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


_ARROW_TYPES = {"VARCHAR": pa.string(), "TIMESTAMP": pa.timestamp("us"), "DOUBLE": pa.float64(),
                "BIGINT": pa.int64(), "BOOLEAN": pa.bool_()}


def _arrow_table(schema: dict[str, str], columns: list[list[Any]]) -> pa.Table | None:
    """The rows as an Arrow table typed like the store's columns; None if a value does not fit.

    >>> _arrow_table({"a": "VARCHAR", "b": "DOUBLE"}, [["x", None], [1.5, 2]]).num_rows
    2
    >>> _arrow_table({"a": "DOUBLE"}, [["not a number"]]) is None
    True
    """
    arrays = []
    for (name, sql_type), values in zip(schema.items(), columns):
        arrow_type = _ARROW_TYPES.get(sql_type)
        if arrow_type is None:
            return None
        try:
            arrays.append(pa.array(values, type=arrow_type))
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            return None
    return pa.Table.from_arrays(arrays, names=list(schema))


def _message_id(line: bytes) -> str | None:
    try:
        value = orjson.loads(line).get("messageId")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None


class StoreLoader:
    """Moves closed WAL segments into the store every `interval_ms`, on its own thread.

    `start()` runs the thread; `flush()` does one round now (rotating the open segment
    first) and returns what it loaded; `close()` does a last round and closes the store.
    """

    def __init__(self, wal: WriteAheadLog, db_path: str | Path, *, config: Config | None = None,
                 interval_ms: int = 1000, log_sink: LogSink | None = None, store: Store | None = None,
                 quarantine: QuarantineLog | None = None):
        self.wal = wal
        self.quarantine_log = quarantine  # events the collector refused, for the `quarantine` table
        self.db_path = str(db_path)
        self.config = config or Config()
        self.interval_s = interval_ms / 1000.0
        self.log_sink = log_sink if log_sink is not None else LogSink()
        self.store = store if store is not None else Store(self.db_path)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Counters for /admin/stats.
        self.loaded = 0
        self.duplicates = 0
        self.quarantined = 0
        self.log_rows = 0
        self.rounds = 0
        self.last_error: str | None = None
        self.last_round_seconds = 0.0
        self.last_round_at: float | None = None
        stale = self.wal.directory / _SHIP_NAME
        if stale.exists():
            stale.unlink()  # a crash mid-load: its segments are still there

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="wal-loader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # A round has a fixed cost (planning the mapping SQL, re-stitching identities), so under
        # load the rounds space out to keep the loader under ~20% of the time; each round then
        # carries more events for the same cost.
        while not self._stop.wait(max(self.interval_s, 4 * self.last_round_seconds)):
            try:
                self.flush()
            except Exception as exc:  # keep going: the segments stay until a round succeeds
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("loading the WAL into the store failed; will retry")

    def pending_segments(self) -> int:
        return len(self.wal.closed_segments())

    def event_count(self) -> int:
        with self._lock:
            return self.store.count("events")

    def flush(self, *, rotate: bool = True) -> dict[str, int]:
        """One round: rotate the open segment, load every closed one, insert queued log rows."""
        with self._lock:
            started = time.perf_counter()
            if rotate:
                self.wal.rotate()
            result = self._load_segments()
            refused = self._load_refused()
            result["quarantined"] += refused
            self.quarantined += refused
            result["log_rows"] = self._write_logs()
            self._commit(result)
            self.rounds += 1
            self.last_round_seconds = time.perf_counter() - started
            self.last_round_at = time.time()
            self.last_error = None
            return result

    def _load_segments(self) -> dict[str, int]:
        out = {"loaded": 0, "duplicates": 0, "quarantined": 0, "segments": 0}
        segments = self.wal.closed_segments()
        if not segments:
            return out
        # Several segments load as one file: the identity rebuild after a load costs the same
        # for one event as for a million, so pay it once per round.
        if len(segments) == 1:
            path = segments[0]
        else:
            path = self.wal.directory / _SHIP_NAME
            with open(path, "wb") as dst:
                for seg in segments:
                    with open(seg, "rb") as src:
                        shutil.copyfileobj(src, dst, 1 << 20)
        try:
            counts = self._ingest(path)
        except Exception as exc:  # a row the SQL mapping chokes on must not block the log forever
            log.warning("loading %s failed (%s); loading it in halves to isolate the bad rows", path.name, exc)
            counts = self._ingest_bisect(path.read_bytes().splitlines(keepends=True))
        self._release(segments, path)
        self.loaded += counts[0]
        self.duplicates += counts[1]
        self.quarantined += counts[2]
        out.update(loaded=counts[0], duplicates=counts[1], quarantined=counts[2], segments=len(segments))
        return out

    def _load_refused(self) -> int:
        """Insert the events the collector refused (`QuarantineLog`) into `quarantine`."""
        if self.quarantine_log is None:
            return 0
        rows = self.quarantine_log.take()
        if not rows:
            return 0
        # A row is keyed by its refusal time, index and text: one shipped or taken twice (a crash
        # between storing and forgetting it) is inserted once; a client's retry has its own time.
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        fresh = {(r.get("at") or (now + dt.timedelta(microseconds=i)).isoformat(), r.get("line"), r.get("raw")): r
                 for i, r in enumerate(rows)}  # rows written before `at` existed: now, one each
        con = self.store.duck
        con.execute("CREATE TEMP TABLE IF NOT EXISTS _mm_refused (line BIGINT, field VARCHAR, reason VARCHAR, "
                    "raw VARCHAR, refused_at TIMESTAMP)")
        try:
            con.executemany("INSERT INTO _mm_refused VALUES (?, ?, ?, ?, ?)",
                            [[line, r.get("field"), r.get("reason"), raw, at] for (at, line, raw), r in fresh.items()])
            added = con.execute(
                "INSERT INTO quarantine SELECT 'api', n.line, n.field, n.reason, n.raw, n.refused_at "
                "FROM _mm_refused n WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.source = 'api' "
                "AND q.quarantined_at = n.refused_at AND q.line IS NOT DISTINCT FROM n.line "
                "AND q.raw IS NOT DISTINCT FROM n.raw)").fetchone()[0]
        finally:
            con.execute("DELETE FROM _mm_refused")
        self._release_refused()
        return int(added)

    # Hooks of a loader whose store commits later than DuckDB's statements (the lake's `LakeLoader`).
    def _release(self, segments: list[Path], path: Path) -> None:
        """The segments' events are stored: delete them (and the file that joined them)."""
        for seg in segments:
            seg.unlink()
        if path.name == _SHIP_NAME:
            path.unlink()

    def _release_refused(self) -> None:
        """The refused rows taken from the quarantine log are stored: forget them."""
        self.quarantine_log.done()

    def _commit(self, result: dict[str, int]) -> None:
        """End of a round: nothing to do, every DuckDB statement above committed on its own."""

    def _ingest(self, path: Path) -> tuple[int, int, int]:
        con = self.store.duck
        before = (self.store.count("events"), self.store.count("quarantine"))
        try:
            result = ingest_file(self.store, path, fmt="segment", config=self.config)
            counts = (result.loaded, result.duplicates, result.quarantined)
        except duckdb.Error as exc:
            # ingest_file ends with a CHECKPOINT, which DuckDB refuses while another connection
            # of this process (the /app pages) has a write open. The load itself committed:
            # the checkpoint happens later on its own.
            if "CHECKPOINT" not in str(exc):
                raise
            loaded = self.store.count("events") - before[0]
            quarantined = self.store.count("quarantine") - before[1]
            lines = path.read_bytes().count(b"\n")
            counts = (loaded, max(0, lines - loaded - quarantined), quarantined)
        # The file name is an accident of the WAL: say the rows came in through the API.
        con.execute("UPDATE events SET source = 'api' WHERE source = ?", [str(path)])
        con.execute("UPDATE quarantine SET source = 'api' WHERE source = ?", [str(path)])
        return counts

    def _ingest_bisect(self, lines: list[bytes]) -> tuple[int, int, int]:
        """Load `lines`, splitting on failure; a single line that still fails is quarantined."""
        part = self.wal.directory / f"part-{len(lines)}.jsonl"
        part.write_bytes(b"".join(lines))
        try:
            return self._ingest(part)
        except Exception as exc:
            if len(lines) == 1:
                mid = _message_id(lines[0])
                if mid is not None and self.store.duck.execute(
                        "SELECT count(*) FROM events WHERE message_id = ?", [mid]).fetchone()[0]:
                    return 0, 1, 0  # it is in the store after all
                self.store.duck.execute(
                    "INSERT INTO quarantine VALUES ('api', NULL, NULL, ?, ?, now()::TIMESTAMP)",
                    [f"the store could not load this row: {str(exc)[:200]}", lines[0].decode("utf-8", "replace")])
                return 0, 0, 1
        finally:
            part.unlink(missing_ok=True)
        mid = len(lines) // 2
        a, b = self._ingest_bisect(lines[:mid]), self._ingest_bisect(lines[mid:])
        return a[0] + b[0], a[1] + b[1], a[2] + b[2]

    def _write_logs(self) -> int:
        rows_by_table = self.log_sink.drain()
        n = 0
        for table, rows in rows_by_table.items():
            columns = list(TABLES[table])
            cols = ", ".join(f'"{c}"' for c in columns)
            values = [[_cell(r.get(c)) for r in rows] for c in columns]
            arrow = _arrow_table(TABLES[table], values)
            if arrow is not None:
                # One columnar insert: `executemany` runs the INSERT once per row (a worker
                # under a batch flood spent a quarter of its CPU there).
                con = self.store.duck
                con.register("_mm_log_rows", arrow)
                try:
                    con.execute(f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM _mm_log_rows')
                finally:
                    con.unregister("_mm_log_rows")
            else:  # a value of an unexpected type: let DuckDB cast it row by row
                marks = ", ".join("?" for _ in columns)
                self.store.duck.executemany(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})',
                                            [list(row) for row in zip(*values)])
            n += len(rows)
        self.log_rows += n
        return n

    def close(self) -> None:
        """Stop the thread, load what is left, close the store."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        try:
            self.flush(rotate=False)
        finally:
            self.store.close()


class LogForwarder:
    """Moves a process's activation-log rows to the bus, for a process that does not own the store.

    Every `interval_ms` it drains `sink` and publishes the rows (each tagged with `_table`) to
    `bus` (a `RedisStreamsBus` on `<stream>:logs`); the loader worker subscribes there and
    feeds its own `LogSink` (`LogForwarder.receiver(sink)`).
    """

    def __init__(self, sink: LogSink, bus: Any, *, interval_ms: int = 200):
        self.sink = sink
        self.bus = bus
        self.interval_s = interval_ms / 1000.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-forwarder", daemon=True)
        self.forwarded = 0

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.forward()

    def forward(self) -> int:
        drained = self.sink.drain()
        rows = [{**row, "_table": table} for table, batch in drained.items() for row in batch]
        if rows:
            try:
                self.bus.publish_many(rows)
            except Exception as exc:  # Redis is away: keep them for the next round (the sink is bounded)
                log.warning("forwarding %d activation-log rows failed (%s); will retry", len(rows), exc)
                for table, batch in drained.items():
                    for row in batch:
                        self.sink(table, row)
                return 0
            self.forwarded += len(rows)
        return len(rows)

    @staticmethod
    def receiver(sink: LogSink):  # noqa: ANN205
        """The bus handler of the loader: a forwarded row back into `sink`."""
        def receive(row: dict[str, Any]) -> None:
            table = row.pop("_table", None)
            if table in TABLES:
                sink(table, row)
        return receive

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.forward()
