"""Load files into the store: readers -> mapped rows -> canonical events or quarantine.

Over 500 lines because the chunk loader's staging, dedupe, carry and commit share one
transaction and two cursors; the whole-Parquet path is already in `whole_parquet`.

Each chunk is one transaction: its bad rows go to `quarantine` with line and reason, the
id pairs it saw to `identity_links`, and its good rows with a new `message_id` (so
re-ingesting is harmless) to `events` - in whole DuckDB row groups, the remainder
waiting for the next chunk, and the file's last partial group stored at the end. After
the file, identities are re-resolved. The next chunk is staged on a second cursor while
one is stored. Memory stays flat: the block being staged (plus the next, read ahead), two
scratch tables and the carried rows, with DuckDB under `[ingest] memory_limit`. Parquet
files DuckDB can read are not chunked: see `whole_parquet`.

>>> from micromoments.store import Store
>>> import tempfile, os
>>> from pathlib import Path
>>> path = os.path.join(tempfile.mkdtemp(), "e.jsonl")
>>> _ = Path(path).write_text('{"type":"track","event":"Signed Up","userId":"u1","timestamp":"2026-01-05T10:00:00Z"}\\nnot json\\n')
>>> ingest_file(Store(":memory:"), path).summary()
'1 loaded, 0 duplicates, 1 quarantined'
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from micromoments.config import Config
from micromoments.errors import InputError
from micromoments.events.sql import finish_sql, sql_literal
from micromoments.sources import FORMATS, detect_format, json_spec
from micromoments.sources.files import check_readable, file_size, iter_line_chunks, prefetch, read_head, read_text
from micromoments.sources.jsonmap import mapping_sql
from micromoments.sources.tabular import (
    duckdb_reads_parquet,
    iter_csv_chunks,
    iter_parquet_chunks,
    parquet_row_ranges,
    parquet_rows_sql,
    parse_mapping,
    resolve_mapping,
    tabular_columns,
    tabular_kinds,
    tabular_mapping_sql,
    tabular_raw_sql,
)
from micromoments.store import Store
from micromoments.store.identity import PeopleSoFar, links_in, rebuild_identities, record_links
from micromoments.store.keying import OccurrenceKeys
from micromoments.store.schema import EVENTS_COLUMNS
from micromoments.store.settings import duckdb_settings
from micromoments.store.whole_parquet import load_whole_parquet

Progress = Callable[[int, int], None]  # (bytes done, bytes total)

_VARIABLE_PART = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z?|(?<=: )\S+$")
_EVENT_COLS = ", ".join(f'"{c}"' for c in EVENTS_COLUMNS)
# What a scratch table keeps: the event columns but `source` (the same text on every row, added
# when stored) and `source_line` (= line_no), plus what the quarantine, dedupe and id links need:
# finish_sql's helper columns are not materialised.
_STAGED_COLS = ", ".join(["line_no", "raw", *(f'"{c}"' for c in EVENTS_COLUMNS if c not in ("source", "source_line")),
                          "previous_id", "_field", "_reason"])
# Parquet files DuckDB can read are loaded whole (`whole_parquet`). False chunks them through
# pyarrow like CSV, as is done anyway for files DuckDB cannot name; tests check both give one store.
WHOLE_FILE_PARQUET = True
_RTRIM_RAW = "rtrim(c.raw, chr(10) || chr(13))"  # lines arrive with their line break
_SCAN_SLICE_ROWS = 16_384  # rows per Arrow batch: DuckDB's threads scan batches in parallel
# DuckDB's row group. Appends that leave `events` at a whole number of row groups are
# kept as written; ragged ones are rewritten by the next checkpoint, at the cost of a
# second insert. So each chunk stores whole row groups
# and carries the rest over to the next chunk (see `_Loader._insert_new_events`).
ROW_GROUP_ROWS = 122_880
_KEEP = "_reason IS NULL AND NOT _dup"  # rows of a scratch table that are new, valid events
# Scratch tables live in an in-memory database both of the loader's cursors see (temp
# tables are private to one connection): one cursor stages chunk k+1 while the other
# stores chunk k. One per ingest (attached databases are shared by every connection).
_SCRATCH = "_mm_scratch"
_scratch_ids = itertools.count(1)
Rejects = list[tuple[int, str | None, str, str]]  # rows rejected before mapping: (line, field, reason, raw)


@dataclass
class _Staged:
    """A chunk whose scratch table is built (raw text of its rejects included), waiting to be stored."""

    table: str        # its scratch table
    rejects: Rejects  # rows rejected before mapping


@dataclass
class IngestResult:
    """What one file did to the store. `read` = `loaded + duplicates + quarantined`."""

    source: str
    format: str
    read: int = 0
    loaded: int = 0
    duplicates: int = 0
    quarantined: int = 0
    restitched: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    content_keyed: int = 0  # valid rows without an id, keyed by content + occurrence (store.keying)
    repeats_kept: int = 0   # of those, identical to an earlier row of the file: kept as events of their own

    def summary(self) -> str:
        return f"{self.loaded} loaded, {self.duplicates} duplicates, {self.quarantined} quarantined"

    def keying(self) -> str:
        """How the rows were keyed, for the summary: by their ids, or (rows without one) by content
        plus their occurrence number among identical rows of the file.

        >>> IngestResult("f.csv", "csv", read=3, loaded=3, content_keyed=3, repeats_kept=1).keying()
        'keyed by content + occurrence (no id): 3 rows, 1 identical repeat kept as its own event'
        >>> IngestResult("f.csv", "csv", read=3, loaded=3).keying()
        'keyed by message id'
        """
        if not self.content_keyed:
            return "keyed by message id"
        repeats = f"{self.repeats_kept} identical repeat{'' if self.repeats_kept == 1 else 's'}"
        return (f"keyed by content + occurrence (no id): {self.content_keyed} row{'' if self.content_keyed == 1 else 's'}, "
                f"{repeats} kept as {'its own event' if self.repeats_kept == 1 else 'events of their own'}")


class _Loader:
    """Moves chunks of mapped rows into the store, each inside one transaction.

    A worker cursor stages chunk k+1 (parse, map, validate into a scratch table) while
    the store's own connection stores chunk k (`run`).
    """

    def __init__(self, store: Store, result: IngestResult, config: Config):
        self.con = store.duck
        self.result = result
        self.source = result.source
        self.now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        self.max_future_hours = config.ingest.max_future_skew_hours
        self.min_time = config.ingest.min_time()
        self.stored = int(self.con.execute("SELECT count(*) FROM events").fetchone()[0])
        self.stored_before = self.stored
        # Rows not stored yet (less than a row group): (scratch table, rowid after which
        # its kept rows wait), and how many.
        self.carry: list[tuple[str, int]] = []
        self.carried = 0
        self.staged_n = 0
        self.staged = ""  # this chunk's scratch table
        self.people = PeopleSoFar(self.con.execute("SELECT a, b FROM identity_links").fetchall())
        self.scratch = f"{_SCRATCH}_{os.getpid()}_{next(_scratch_ids)}"
        self.con.execute(f"ATTACH ':memory:' AS {self.scratch}")
        self.keys = OccurrenceKeys(self.con, self.scratch)  # numbers identical rows without an id
        # Stages chunks (`stage`) in a thread of its own while `self.con` stores the previous one.
        self.worker = self.con.cursor()
        # Parse JSON without `try` (faster) until a chunk turns out to hold a line that is not JSON.
        self.lenient = False

    def quarantine_rows(self, rows: list[tuple[int, str | None, str, str]]) -> None:
        """Quarantine rows rejected before mapping: (line, field, reason, raw)."""
        if not rows:
            return
        self.con.executemany(
            "INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?)",
            [(self.source, line, fld, reason, raw, self.now) for line, fld, reason, raw in rows],
        )
        self.count_reasons([r[2] for r in rows])
        self.result.read += len(rows)
        self.result.quarantined += len(rows)

    def count_reasons(self, reasons: list[str]) -> None:
        for reason in reasons:
            # Group "timestamp 2099-01-01T00:00:00Z is in the future" with its kind.
            key = _VARIABLE_PART.sub("…", reason.split(", got")[0])[:80]
            self.result.reasons[key] = self.result.reasons.get(key, 0) + 1

    def stage(self, mapped_select: str) -> str:
        """Build this chunk's scratch table: canonical columns, `_reason` for rejects and
        `_dup` for repeats of a stored `message_id` (set later).

        Scratch tables live outside the chunk's transaction: only the writes to the
        store's own tables need to be atomic. Each chunk gets a new one, so the rows it
        cannot store yet (the carry, see `_insert_new_events`) stay where they are
        instead of being copied.
        """
        self.staged_n += 1
        staged = f"{self.scratch}._staged_{self.staged_n}"
        self.worker.execute(f"CREATE OR REPLACE TABLE {staged} AS "
                            f"SELECT {_STAGED_COLS}, false AS _dup FROM ({self.finish(mapped_select)})")
        return staged

    def finish(self, mapped_select: str) -> str:
        """Canonical columns plus `_field` / `_reason` over a mapped SELECT (see `finish_sql`)."""
        return finish_sql(f"({mapped_select})", now_sql=f"TIMESTAMP '{self.now.isoformat(sep=' ')}'",
                          max_future_hours=self.max_future_hours, source=self.source, min_time=self.min_time)

    def _fill_raw(self, staged: str, relation: str, expr: str) -> None:
        """Give the scratch table's rejects their raw text: `raw` is left NULL while mapping
        (carrying every line through it costs more than the rest of the mapping), and
        (relation, expression over its alias `c`) gives the text by `line_no`. Done while
        staging, so the stored chunk no longer needs its block of the file."""
        if self.worker.execute(f"SELECT count(_reason) FROM {staged}").fetchone()[0]:
            self.worker.execute(
                f"UPDATE {staged} AS s SET raw = (SELECT {expr} FROM {relation} c WHERE c.line_no = s.line_no) "
                "WHERE s._reason IS NOT NULL AND s.raw IS NULL")

    def store(self, staged: _Staged) -> None:
        """Store a staged chunk (on `self.con`, while the worker may stage the next)."""
        self.commit_staged(staged.table, staged.rejects)

    def commit_staged(self, staged: str, early_rejects: Rejects) -> None:
        """In one transaction: quarantine the rejects, insert new events, record id links."""
        self.staged = staged
        con = self.con
        self.number_content_keys(staged)
        total, bad = con.execute(f"SELECT count(*), count(_reason) FROM {staged}").fetchone()
        links = links_in(con, staged)
        self.people.add((a, b) for a, b, _ in links)
        new = self._mark_and_rekey()
        con.execute("BEGIN TRANSACTION")
        try:
            self.quarantine_rows(early_rejects)
            if bad:
                con.execute(
                    "INSERT INTO quarantine SELECT ?, s.line_no, s._field, s._reason, s.raw, ? "
                    f"FROM {staged} s WHERE s._reason IS NOT NULL",
                    [self.source, self.now],
                )
            record_links(con, links)
            after = self._insert_new_events(new)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        if bad:
            self.count_reasons([r[0] for r in con.execute(
                f"SELECT _reason FROM {staged} WHERE _reason IS NOT NULL").fetchall()])
        self._keep_carry(after, new)
        self.result.read += int(total)
        self.result.quarantined += int(bad)
        self.result.loaded += int(new)
        self.result.duplicates += int(total) - int(bad) - int(new)

    def number_content_keys(self, table: str) -> str | None:
        """Number the repeats among `table`'s rows without an id (see `store.keying`)."""
        changes = self.keys.number(self.con, table)
        self.result.content_keyed, self.result.repeats_kept = self.keys.content_keyed, self.keys.repeats_kept
        return changes

    def _event_select(self) -> str:
        """The `events` columns over a scratch table."""
        return _EVENT_COLS.replace('"source_line"', 'line_no AS "source_line"').replace(
            '"source"', f"{sql_literal(self.source)} AS \"source\"", 1)

    def _carried(self, columns: str | None = None) -> str:
        """The carried rows (by default all canonical columns), as one relation."""
        columns = columns or self._event_select()
        return " UNION ALL ".join(f"SELECT {columns} FROM {table} WHERE {_KEEP} AND rowid > {after}"
                                  for table, after in self.carry)

    def _mark_and_rekey(self) -> int:
        """Mark the chunk's repeats (`_dup`), re-key its people; returns its new rows.

        A row is a repeat when its id is already stored (or carried), or when an earlier
        row of the chunk (by line) has it. Both are found on narrow columns: the id
        lookup is a semi-join whose hash table holds the chunk's ids and streams the
        stored ids past it (`NOT EXISTS` against `events` hashed every stored event, so
        each chunk cost and held more than the one before), and the repeat check is a
        window over (id, line) rather than over whole rows, and only over the ids seen twice
        (a window over every row was a sort of the chunk: 0.09 vs 0.06 CPU-s per 245,760
        rows). Each event is stored under
        the person the links seen so far give it (see PeopleSoFar): an UPDATE of the
        few moved rows of the scratch table, cheaper than a join in the insert.
        """
        con, staged = self.con, self.staged
        carried_ids = f" UNION ALL {self._carried('message_id')}" if self.carry else ""
        dups = con.execute(
            f"""WITH good AS (SELECT rowid AS r, message_id, line_no FROM {staged} WHERE _reason IS NULL)
               SELECT r FROM good
               WHERE message_id IN (SELECT message_id FROM events
                                    WHERE message_id IN (SELECT message_id FROM good){carried_ids})
               UNION
               SELECT r FROM good
               WHERE message_id IN (SELECT message_id FROM good GROUP BY message_id HAVING count(*) > 1)
               QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY line_no, r) > 1"""
        ).fetchall()
        if dups:
            con.register("_dups", pa.table({"r": pa.array([r for (r,) in dups], pa.int64())}))
            try:
                con.execute(f"UPDATE {staged} SET _dup = true WHERE rowid IN (SELECT r FROM _dups)")
            finally:
                con.unregister("_dups")
        ids = [r[0] for r in con.execute(f"SELECT DISTINCT person_id FROM {staged} WHERE {_KEEP}").fetchall()]
        moved = self.people.person_of(ids)
        if moved:
            con.register("_moved", pa.table({"id": list(moved), "person": list(moved.values())}))
            try:  # stored under a linked person: what the final re-key used to count
                self.result.restitched += int(con.execute(
                    f"UPDATE {staged} AS s SET person_id = m.person FROM _moved m "
                    f"WHERE m.id = s.person_id AND s._reason IS NULL AND NOT s._dup"
                ).fetchone()[0])
            finally:
                con.unregister("_moved")
        return int(con.execute(f"SELECT count(*) FROM {staged} WHERE {_KEEP}").fetchone()[0])

    def _insert_new_events(self, new: int) -> int | None:
        """Store the carried rows and this chunk's new ones, in whole row groups.

        Returns the rowid of the chunk's last stored row (-1: none stored; None: nothing
        stored at all, everything waits). The rest waits for the next chunk (`flush`
        stores it at the end).
        """
        con, staged = self.con, self.staged
        take = max(0, (self.stored + self.carried + new) // ROW_GROUP_ROWS * ROW_GROUP_ROWS - self.stored)
        if take == 0:  # not a whole row group yet: everything waits
            return None
        # take > carried: the carry, then the chunk's rows up to the cut
        parts = [self._carried()] if self.carry else []
        after = -1
        if take > self.carried:
            after = con.execute(f"SELECT rowid FROM {staged} WHERE {_KEEP} ORDER BY rowid "
                                f"LIMIT 1 OFFSET {take - self.carried - 1}").fetchone()[0]
            parts.append(f"SELECT {self._event_select()} FROM {staged} WHERE {_KEEP} AND rowid <= {after}")
        inserted = con.execute(f"INSERT INTO events ({_EVENT_COLS}) " + " UNION ALL ".join(parts)).fetchone()[0]
        if inserted != take:  # the carry's bookkeeping and the rows stored must agree
            raise InputError(f"stored {inserted} rows where {take} were staged", where=self.source,
                             hint="was the file changed while it was ingested?")
        self.stored += take
        return after

    def _keep_carry(self, after: int | None, new: int) -> None:
        """After the chunk's commit: remember which rows wait (scratch tables stay out of
        the transaction; writing them inside it made the commit copy them again)."""
        con, staged = self.con, self.staged
        if after is not None:  # the old carry is stored: the chunk's own rows after the cut wait
            for table, _ in self.carry:
                con.execute(f"DROP TABLE IF EXISTS {table}")
            self.carried = self.carried + new - (self.stored - self.stored_before)
            self.carry = [(staged, after)]
        else:
            # Nothing stored (a small or repetitive chunk): the new rows join a compact copy,
            # so scratch tables of mostly repeated rows do not pile up.
            carry = f"{self.scratch}._carry"
            if not any(table == carry for table, _ in self.carry):
                con.execute(f"CREATE OR REPLACE TABLE {carry} AS SELECT * FROM {staged} WHERE {_KEEP}")
            else:
                con.execute(f"INSERT INTO {carry} SELECT * FROM {staged} WHERE {_KEEP}")
            con.execute(f"DROP TABLE {staged}")
            if (carry, -1) not in self.carry:
                self.carry.append((carry, -1))
            self.carried += new
        self.stored_before = self.stored

    def flush(self) -> None:
        """Store the carried rows (the file's last, partial row group)."""
        con = self.con
        if self.carry:
            con.execute("BEGIN TRANSACTION")
            try:
                self.stored += con.execute(f"INSERT INTO events ({_EVENT_COLS}) {self._carried()}").fetchone()[0]
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        for table in {*(t for t, _ in self.carry), self.staged, f"{self.scratch}._carry"}:
            if table:
                con.execute(f"DROP TABLE IF EXISTS {table}")
        self.carry, self.carried = [], 0

    def close(self) -> None:
        """Drop the scratch database (with any chunk staged but not stored) and the worker cursor."""
        self.worker.close()
        self.keys.close(self.con)
        self.con.execute(f"DETACH DATABASE IF EXISTS {self.scratch}")

    def stage_json_documents(self, table: pa.Table, fmt: str, early_rejects: Rejects,
                             *, may_have_batches: bool = True) -> _Staged:
        """Stage `table(line_no, raw)`: one JSON text per row (blank rows are skipped).

        The Arrow table is scanned in place, in slices DuckDB's threads share: copying
        it into a DuckDB table first cost about an eighth of the ingest.
        """
        con = self.worker
        con.register("_arrow_chunk", _sliced(table))
        try:
            # Blank (whitespace-only) lines are skipped; the `{` test spares most rows the trim.
            # (A CASE, not OR: DuckDB evaluated both sides of the OR, trimming every line.)
            docs = ("SELECT line_no, raw, raw AS j FROM _arrow_chunk WHERE CASE WHEN starts_with(raw, '{') "
                    f"THEN true ELSE trim({_RTRIM_RAW.replace('c.raw', 'raw')}) <> '' END")
            # Batch envelopes are rare in files: only pay for unwrapping when one is there.
            batches = fmt == "segment" and may_have_batches and con.execute(
                "SELECT count(*) FROM _arrow_chunk WHERE contains(raw, '\"batch\"')").fetchone()[0] > 0
            if batches:
                docs = _unwrap_segment_batches()
            staged = ""
            if not self.lenient:
                try:
                    staged = self.stage(mapping_sql(json_spec(fmt), f"({docs})", keep_raw=batches, strict=True))
                except duckdb.InvalidInputException:  # a line is not JSON: mark, don't fail
                    self.lenient = True  # for the rest of the file (the failed try cost a pass)
            if self.lenient:
                staged = self.stage(mapping_sql(json_spec(fmt), f"({docs})", keep_raw=batches))
            if not batches:  # one line, one event: quarantined lines are looked up again by number
                self._fill_raw(staged, "_arrow_chunk", _RTRIM_RAW)
        finally:
            con.unregister("_arrow_chunk")
        return _Staged(staged, early_rejects)

    def stage_rows(self, table: pa.Table, mapped_sql: str, raw_sql: str, early_rejects: Rejects) -> _Staged:
        """Stage `table(line_no, <columns>)` from a CSV/Parquet chunk; `mapped_sql` reads `_chunk`,
        `raw_sql` rebuilds a row's text from alias `c` for the quarantine."""
        self.worker.register("_chunk", _sliced(table))
        try:
            staged = self.stage(mapped_sql)
            self._fill_raw(staged, "_chunk", raw_sql)
        finally:
            self.worker.unregister("_chunk")
        return _Staged(staged, early_rejects)

    def run(self, jobs: Iterator[Callable[[], _Staged]]) -> None:
        """Stage each chunk (a job) in a worker thread while the previous one is stored.

        Both DuckDB cursors run one statement each at a time, on their own thread: two
        cores are used without DuckDB's multi-threaded hand-offs (see `[ingest] threads`).
        At most two chunks are staged at once (plus the carried rows).
        """
        with ThreadPoolExecutor(1, thread_name_prefix="mm-stage") as pool:
            pending: Future | None = None
            try:
                for job in jobs:
                    ahead = pool.submit(job)
                    if pending is not None:
                        self.store(pending.result())
                    pending = ahead
                if pending is not None:
                    self.store(pending.result())
                    pending = None
            finally:
                if pending is not None:  # an error: let the staging finish before the caller cleans up
                    pending.exception()


def _sliced(table: pa.Table) -> pa.Table:
    """The same table (no copy) cut into batches that DuckDB's threads scan in parallel:
    a chunk registered as one batch is read by one thread."""
    return pa.Table.from_batches(table.to_batches(max_chunksize=_SCAN_SLICE_ROWS), schema=table.schema)


def _unwrap_segment_batches() -> str:
    """Documents of a chunk, with `{"batch": [...]}` envelopes opened into their events.

    An event without `sentAt` takes the envelope's, so the clock-skew correction applies.
    """
    return """
    WITH docs AS (
      SELECT line_no, rtrim(raw, chr(10) || chr(13)) AS raw,
             coalesce(CASE WHEN contains(raw, '"batch"') AND json_valid(raw)
                           THEN json_type(raw, '$.batch') = 'ARRAY' END, false) AS is_batch
      FROM _arrow_chunk WHERE trim(raw) <> ''
    ),
    envelopes AS (
      SELECT line_no, unnest(json_extract(raw, '$.batch[*]')) AS e, json_extract(raw, '$.sentAt') AS sent_at
      FROM docs WHERE is_batch
    )
    SELECT line_no, raw, raw AS j FROM docs WHERE NOT is_batch
    UNION ALL
    SELECT line_no, e::VARCHAR AS raw,
           CASE WHEN sent_at IS NOT NULL AND json_extract(e, '$.sentAt') IS NULL
                THEN json_merge_patch(e, json_object('sentAt', sent_at))::VARCHAR
                ELSE e::VARCHAR END AS j
    FROM envelopes
    """


def ingest_file(
    store: Store,
    path: str | Path,
    *,
    fmt: str | None = None,
    mapping: str | dict[str, str] | None = None,
    config: Config | None = None,
    on_progress: Progress | None = None,
) -> IngestResult:
    """Ingest one file (Segment/PostHog/GA4 JSON or JSONL, CSV/TSV, Parquet; maybe gzipped).

    `mapping` maps canonical fields to columns for CSV/Parquet, e.g. "user_id=uid,timestamp=ts".
    Raises `InputError` only when the file cannot be read at all; bad rows are quarantined.
    """
    config = config or Config()
    path = check_readable(path)
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise InputError(f"unknown format '{fmt}'", where=str(path), hint=f"use one of {', '.join(FORMATS)}")
    result = IngestResult(source=str(path), format=fmt)
    loader = _Loader(store, result, config)
    total = file_size(path)

    def progress(done: int) -> None:
        if on_progress is not None:
            on_progress(done, total)

    con = store.duck
    whole = _loads_whole(path, fmt)
    # Chunks take one DuckDB thread per statement (`[ingest] threads`, 0 = as it is): their statements
    # are short, so two threads' hand-offs cost more than they gain; the second core stages the next
    # chunk on another cursor (`_Loader.run`). A whole Parquet file's long statements use every thread.
    threads = None if whole else config.ingest.threads or None
    with duckdb_settings(con, memory_limit=config.ingest.memory_limit, threads=threads,
                         disabled_compression_methods=_without_fsst(con)):
        try:
            if whole:
                _ingest_whole_parquet(loader, path, mapping, config, progress)
            else:
                _ingest_chunks(loader, path, fmt, mapping, config, progress)
        finally:
            # Also when the file breaks off (a truncated gzip): what was read is stored.
            try:
                loader.flush()
            finally:
                loader.close()
        # The rebuilds read every event: they stay under the same memory cap.
        result.restitched += rebuild_identities(con)
        rebuild_profiles(store)
    return result


def _without_fsst(con: duckdb.DuckDBPyConnection) -> str:
    """The `disabled_compression_methods` value that also turns FSST off, as this DuckDB accepts it.

    FSST's analysis of every string column was a third of the cost of writing `events` (measured:
    7.0-8.7 vs 4.9-5.3 CPU-s per 1M demo events); without it strings are dictionary-compressed and
    the file ~10 % larger. DuckDB 1.3+ also tries `dict_fsst` (dictionary + FSST), which then never
    won a column but cost ~10 % of each insert. Probed by setting it; the setting is left as found.
    """
    current = con.execute("SELECT current_setting('disabled_compression_methods')").fetchone()[0]
    for methods in (("fsst", "dict_fsst"), ("fsst",)):
        value = _with_disabled(current, methods)
        try:
            con.execute(f"SET disabled_compression_methods = {sql_literal(value)}")
        except duckdb.Error:  # an older DuckDB without dict_fsst
            continue
        con.execute(f"SET disabled_compression_methods = {sql_literal(current)}")
        return value
    return current


def _with_disabled(disabled: str, methods: tuple[str, ...]) -> str:
    """The `disabled_compression_methods` setting with `methods` added.

    >>> _with_disabled('', ('fsst',)), _with_disabled('rle', ('fsst', 'dict_fsst')), _with_disabled('fsst', ('fsst',))
    ('fsst', 'rle,fsst,dict_fsst', 'fsst')
    """
    have = [m.strip().lower() for m in disabled.split(",") if m.strip()]  # DuckDB shows 'RLE'
    return ",".join([*have, *(m for m in methods if m not in have)])


def _ingest_chunks(loader: _Loader, path: Path, fmt: str,
                   mapping: str | dict[str, str] | None, config: Config,
                   progress: Callable[[int], None]) -> None:
    if fmt in ("csv", "tsv", "parquet"):
        columns, resolved, kinds = _tabular_mapping(path, fmt, mapping)
        raw_sql = tabular_raw_sql(columns, "c")
        chunks = (
            iter_parquet_chunks(path, batch_rows=config.ingest.chunk_lines, on_progress=progress)
            if fmt == "parquet"
            else iter_csv_chunks(path, delimiter="\t" if fmt == "tsv" else ",", on_progress=progress)
        )
        sql = tabular_mapping_sql(columns, resolved, "_chunk", kinds)
        loader.run(
            functools.partial(loader.stage_rows, chunk.table, sql, raw_sql,
                              [(line, None, reason, raw) for line, reason, raw in chunk.rejected])
            for chunk in chunks
        )
    else:
        loader.run(
            functools.partial(loader.stage_json_documents, table, fmt,
                              [(line, None, "not valid UTF-8", raw) for line, raw in bad],
                              may_have_batches=may_have_batches)
            for table, bad, may_have_batches in _json_tables(path, progress)
        )


def _tabular_mapping(path: Path, fmt: str, mapping: str | dict[str, str] | None
                     ) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """A CSV/TSV/Parquet file's columns, the canonical fields mapped onto them, and their kinds."""
    explicit = parse_mapping(mapping) if isinstance(mapping, str) or mapping is None else dict(mapping)
    columns = tabular_columns(path, fmt, "\t" if fmt == "tsv" else ",")
    return columns, resolve_mapping(columns, explicit, where=str(path)), tabular_kinds(path, fmt)


def _loads_whole(path: Path, fmt: str) -> bool:
    """Whether the file is loaded in whole-file statements (`whole_parquet`), not in chunks."""
    return (fmt == "parquet" and WHOLE_FILE_PARQUET
            and duckdb_reads_parquet(path, tabular_columns(path, fmt)))


def _ingest_whole_parquet(loader: _Loader, path: Path, mapping: str | dict[str, str] | None,
                          config: Config, progress: Callable[[int], None]) -> None:
    """Load a Parquet file with `load_whole_parquet`, in ranges of about
    `[ingest] parquet_statement_rows` rows; counts go to the loader's result."""
    columns, resolved, kinds = _tabular_mapping(path, "parquet", mapping)
    raw_sql = tabular_raw_sql(columns, "c")
    ranges = parquet_row_ranges(path, rows=config.ingest.parquet_statement_rows)
    total_rows, size = max(ranges[-1][1] if ranges else 0, 1), file_size(path)
    for first, last in ranges:
        counts = load_whole_parquet(
            loader.con, parquet_rows_sql(path, first, last),
            finished=lambda rows: loader.finish(tabular_mapping_sql(columns, resolved, rows, kinds)),
            raw_sql=raw_sql, source=loader.source, now=loader.now, people=loader.people,
            number_keys=loader.number_content_keys,
            on_fraction=lambda fraction, a=first, b=last: progress(int(size * (a - 1 + fraction * (b - a + 1)) / total_rows)))
        result = loader.result
        result.read += counts.read
        result.loaded += counts.loaded
        result.duplicates += counts.duplicates
        result.quarantined += counts.quarantined
        result.restitched += counts.restitched
        loader.count_reasons(counts.reasons)
    progress(size)


def _json_tables(path: Path, progress: Callable[[int], None]):
    """(line_no, raw) tables of a JSON file: JSONL line by line, or one JSON document's elements."""
    if _is_single_document(path):
        # One document: an array's elements are numbered as "lines" 1..n.
        text = read_text(path)
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc}", where=str(path)) from exc
        items = doc if isinstance(doc, list) else [doc]
        raws = [orjson.dumps(item).decode() for item in items]
        yield pa.table({"line_no": pa.array(range(1, len(raws) + 1), pa.int64()), "raw": pa.array(raws, pa.string())}), [], True
        progress(file_size(path))
        return
    # The next block is read while DuckDB works on this one (one extra block in memory).
    for chunk in prefetch(iter_line_chunks(path, on_progress=progress)):
        n = len(chunk.lines)
        table = pa.table({
            "line_no": pa.array(np.arange(chunk.first_line, chunk.first_line + n, dtype=np.int64)),
            "raw": chunk.lines,
        })
        yield table, chunk.undecodable, chunk.contains(b'"batch"')


def _is_single_document(path: Path) -> bool:
    """A `.json` file holding one pretty-printed document (an array or a batch), not JSONL."""
    name = path.name.lower().removesuffix(".gz")
    if not name.endswith(".json"):
        return False
    head = read_head(path, 65536).lstrip()
    if head.startswith(b"["):
        return True
    first_line = head.split(b"\n", 1)[0].strip()
    return head.startswith(b"{") and not first_line.endswith(b"}")


def rebuild_profiles(store: Store) -> None:
    """One row per person: ids, latest traits, first and last seen, event count."""
    store.duck.execute(
        """CREATE OR REPLACE TABLE profiles AS
           SELECT person_id, max(user_id) AS user_id,
                  arg_max(traits, ts) FILTER (WHERE traits IS NOT NULL AND traits <> '{}') AS traits,
                  min(ts) AS first_seen, max(ts) AS last_seen, count(*) AS events
           FROM events GROUP BY person_id"""
    )
