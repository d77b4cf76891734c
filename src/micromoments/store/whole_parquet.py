"""Load a Parquet file DuckDB can read in a few whole-file statements, on all of DuckDB's threads.

1. **Narrow pass.** Each row's id, people ids, type and reject reason go to a temp table.
2. From that table, small and cheap:
   - the rejects, which go to `quarantine` with the row's text (read again for those rows only);
   - the repeats: rows whose id is stored already, or seen on an earlier row of the file;
   - the id links, and so the person each event belongs to.
3. **Wide pass.** Every column is mapped again, and the valid new rows go into `events` in one
   `INSERT`, each under its person.

Why not chunks, as JSONL and CSV are loaded? A chunk is a transaction of its own on one
thread, and per chunk DuckDB commits and compresses what it wrote. Whole-file statements let
DuckDB write row groups from both threads, straight to the file. Measured on 5.1M rows
(docs/benchmarks.md, Ingest): 10.1-13.7 s wall against 19.6 s for the chunked path.

Events go in no particular order (`preserve_insertion_order = false`). The store's readers order
by time; keeping the file's order made DuckDB rewrite the whole table at the next checkpoint
(a bare `CREATE TABLE AS` of the same file: 8.2 s with, 4.8 s without).

`ingest_file` takes this path for every Parquet file DuckDB can read by name:

>>> import os, tempfile, pyarrow as pa, pyarrow.parquet as pq
>>> from micromoments.store import Store
>>> from micromoments.store.ingest import ingest_file
>>> path = os.path.join(tempfile.mkdtemp(), "e.parquet")
>>> pq.write_table(pa.table({"userId": ["u1", "u1", None], "event": ["Signed Up"] * 3,
...                          "timestamp": ["2026-01-05T10:00:00Z"] * 3, "messageId": ["m1", "m1", "m2"]}), path)
>>> ingest_file(Store(":memory:"), path).summary()
'1 loaded, 1 duplicates, 1 quarantined'
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from micromoments.errors import InputError
from micromoments.events.sql import sql_literal
from micromoments.store.identity import PeopleSoFar, links_in, record_links
from micromoments.store.schema import EVENTS_COLUMNS
from micromoments.store.settings import duckdb_settings

__all__ = ["WholeFileCounts", "load_whole_parquet"]

# What the narrow pass keeps of each row.
_NARROW = "line_no, message_id, person_id, anonymous_id, user_id, previous_id, type, _field, _reason"
_GOOD = "_reason IS NULL"
# Of the wall time, about what each whole-file pass takes (for the progress bar).
_NARROW_SHARE = 0.2
_names = itertools.count(1)


@dataclass
class WholeFileCounts:
    """What one file did: `read = loaded + duplicates + quarantined`; `reasons` lists each reject's."""

    read: int = 0
    loaded: int = 0
    duplicates: int = 0
    quarantined: int = 0
    restitched: int = 0  # events stored under another id's person
    reasons: list[str] = field(default_factory=list)


def load_whole_parquet(
    con: Any,
    rows: str,
    *,
    finished: Callable[[str], str],
    raw_sql: str,
    source: str,
    now: dt.datetime,
    people: PeopleSoFar,
    on_fraction: Callable[[float], None] | None = None,
    number_keys: Callable[[str], str | None] | None = None,
) -> WholeFileCounts:
    """Load `rows` (a relation `(line_no, <columns>)`, see `parquet_rows_sql`) into the store on `con`.

    `finished(relation)` gives the canonical columns plus `_field`/`_reason` of a relation of
    rows; `raw_sql` a row's text over alias `c`, for the quarantine. `people` holds the links
    stored so far and gains this file's. The quarantine, links and events are written in one
    transaction. `on_fraction` hears how far along the load is (0..1). `number_keys(table)` numbers
    the repeats of rows without an id in the narrow table and returns the table of changed keys
    `(line_no, message_id)` (see `store.keying`).
    """
    report = on_fraction or (lambda fraction: None)
    n = f"_mm_whole_{next(_names)}"
    with duckdb_settings(con, enable_progress_bar=True, enable_progress_bar_print=False,
                         preserve_insertion_order=False):
        try:
            with _reporting(con, report, 0.0, _NARROW_SHARE):
                con.execute(f"CREATE TEMP TABLE {n} AS SELECT {_NARROW} FROM ({finished(rows)})")
            rekeyed = number_keys(f"temp.{n}") if number_keys is not None else None
            return _store(con, n, rows, finished=finished, raw_sql=raw_sql, source=source, now=now,
                          people=people, report=report, rekeyed=rekeyed)
        except (duckdb.IOException, duckdb.InvalidInputException) as exc:  # either pass reads the file
            raise InputError(f"cannot read as Parquet: {exc}", where=source) from exc
        finally:
            for table in (n, f"{n}_repeats", f"{n}_moved"):
                con.execute(f"DROP TABLE IF EXISTS temp.{table}")


def _store(con: Any, n: str, rows: str, *, finished: Callable[[str], str], raw_sql: str, source: str,
           now: dt.datetime, people: PeopleSoFar, report: Callable[[float], None],
           rekeyed: str | None = None) -> WholeFileCounts:
    counts = WholeFileCounts()
    counts.read, counts.quarantined = (int(v) for v in con.execute(
        f"SELECT count(*), count(_reason) FROM {n}").fetchone())
    links = links_in(con, n)
    people.add((a, b) for a, b, _ in links)
    repeats = _mark_repeats(con, n)
    counts.duplicates = int(con.execute(f"SELECT count(*) FROM {repeats}").fetchone()[0])
    counts.loaded = counts.read - counts.quarantined - counts.duplicates
    new = f"{_GOOD} AND line_no NOT IN (SELECT line_no FROM {repeats})"  # the rows to store
    moved = people.person_of(r[0] for r in con.execute(f"SELECT DISTINCT person_id FROM {n} WHERE {new}").fetchall())
    con.register("_moved_arrow", pa.table({"id": pa.array(list(moved), pa.string()),
                                           "person": pa.array(list(moved.values()), pa.string())}))
    try:
        con.execute(f"CREATE TEMP TABLE {n}_moved AS SELECT * FROM _moved_arrow")
    finally:
        con.unregister("_moved_arrow")
    counts.restitched = int(con.execute(
        f"SELECT count(*) FROM {n} WHERE {new} AND person_id IN (SELECT id FROM {n}_moved)").fetchone()[0])
    con.execute("BEGIN TRANSACTION")
    try:
        if counts.quarantined:
            con.execute(
                f"""INSERT INTO quarantine
                    SELECT {sql_literal(source)}, q.line_no, q._field, q._reason, {raw_sql}, ?
                    FROM {n} q JOIN {rows} c ON c.line_no = q.line_no WHERE q._reason IS NOT NULL""", [now])
            counts.reasons = [r[0] for r in con.execute(f"SELECT _reason FROM {n} WHERE _reason IS NOT NULL").fetchall()]
        record_links(con, links)
        if counts.loaded:
            columns = ", ".join('coalesce(m.person, f.person_id)' if c == "person_id"
                                else "coalesce(k.message_id, f.message_id)" if c == "message_id" and rekeyed
                                else f'f."{c}"' for c in EVENTS_COLUMNS)
            # The wide pass maps the rows again: repeats of rows without an id take their numbered keys.
            keys_join = f" LEFT JOIN {rekeyed} k ON k.line_no = f.line_no" if rekeyed else ""
            with _reporting(con, report, _NARROW_SHARE, 1.0):
                inserted = con.execute(
                    f"""INSERT INTO events ({", ".join(f'"{c}"' for c in EVENTS_COLUMNS)})
                        SELECT {columns} FROM ({finished(rows)}) f LEFT JOIN {n}_moved m ON m.id = f.person_id{keys_join}
                        WHERE f._reason IS NULL AND f.line_no NOT IN (SELECT line_no FROM {repeats})""").fetchone()[0]
            if inserted != counts.loaded:  # e.g. the file changed between the two passes
                raise InputError(f"stored {inserted} rows where {counts.loaded} were checked", where=source,
                                 hint="was the file changed while it was ingested?")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    report(1.0)
    return counts


def _mark_repeats(con: Any, n: str) -> str:
    """A temp table of the lines of valid rows that repeat a stored id, or an earlier row's.

    The stored ids are streamed past a hash table of the file's own (a semi-join), not the
    other way round, so a big store costs a scan, not memory; only ids seen twice in the file
    are ranked by line.
    """
    repeats = f"{n}_repeats"
    con.execute(
        f"""CREATE TEMP TABLE {repeats} AS
            WITH good AS (SELECT line_no, message_id FROM {n} WHERE {_GOOD})
            SELECT line_no FROM good
            WHERE message_id IN (SELECT message_id FROM events WHERE message_id IN (SELECT message_id FROM good))
            UNION
            SELECT line_no FROM good
            WHERE message_id IN (SELECT message_id FROM good GROUP BY message_id HAVING count(*) > 1)
            QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY line_no) > 1""")
    return repeats


@contextmanager
def _reporting(con: Any, report: Callable[[float], None], start: float, end: float) -> Iterator[None]:
    """While the block runs a statement on `con`, pass its progress on, scaled into [start, end].

    Polled from a second thread: DuckDB reads a query's progress from atomics, without the lock
    the running statement holds (`ClientContext::GetQueryProgress`).
    """
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.25):
            percent = con.query_progress()
            if percent >= 0:
                report(start + (end - start) * min(percent, 100.0) / 100.0)

    watcher = threading.Thread(target=poll, name="mm-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        report(end)
