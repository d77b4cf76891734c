"""Load files into the store: readers -> mapped rows -> canonical events or quarantine.

Each chunk is one transaction: its good rows go to `events` (one row per `message_id`,
so re-ingesting is harmless), its bad rows to `quarantine` with line and reason, and
the id pairs it saw to `identity_links`. After the file, identities are re-resolved.

>>> from micromoments.store import Store
>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "e.jsonl")
>>> _ = open(path, "w").write('{"type":"track","event":"Signed Up","userId":"u1","timestamp":"2026-01-05T10:00:00Z"}\\nnot json\\n')
>>> ingest_file(Store(":memory:"), path).summary()
'1 loaded, 0 duplicates, 1 quarantined'
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from micromoments.config import Config
from micromoments.errors import InputError
from micromoments.events.sql import finish_sql
from micromoments.sources import FORMATS, detect_format, json_spec
from micromoments.sources.files import check_readable, file_size, iter_line_chunks, read_head, read_text
from micromoments.sources.jsonmap import mapping_sql
from micromoments.sources.tabular import (
    iter_csv_chunks,
    iter_parquet_chunks,
    parse_mapping,
    resolve_mapping,
    tabular_columns,
    tabular_mapping_sql,
)
from micromoments.store import Store
from micromoments.store.identity import rebuild_identities
from micromoments.store.schema import EVENTS_COLUMNS

Progress = Callable[[int, int], None]  # (bytes done, bytes total)

_VARIABLE_PART = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z?|(?<=: )\S+$")
_EVENT_COLS = ", ".join(f'"{c}"' for c in EVENTS_COLUMNS)


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

    def summary(self) -> str:
        return f"{self.loaded} loaded, {self.duplicates} duplicates, {self.quarantined} quarantined"


class _Loader:
    """Moves one chunk of mapped rows into the store, inside one transaction."""

    def __init__(self, store: Store, result: IngestResult, config: Config):
        self.con = store.duck
        self.result = result
        self.source = result.source
        self.now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        self.max_future_hours = config.ingest.max_future_skew_hours
        self.raw_by_line = False  # True: `_staged.raw` is NULL and `_chunk` holds the lines

    def quarantine_rows(self, rows: list[tuple[int, str | None, str, str]]) -> None:
        """Quarantine rows rejected before mapping: (line, field, reason, raw)."""
        if not rows:
            return
        self.con.executemany(
            "INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?)",
            [(self.source, line, fld, reason, raw, self.now) for line, fld, reason, raw in rows],
        )
        self._count_reasons([r[2] for r in rows])
        self.result.read += len(rows)
        self.result.quarantined += len(rows)

    def _count_reasons(self, reasons: list[str]) -> None:
        for reason in reasons:
            # Group "timestamp 2099-01-01T00:00:00Z is in the future" with its kind.
            key = _VARIABLE_PART.sub("…", reason.split(", got")[0])[:80]
            self.result.reasons[key] = self.result.reasons.get(key, 0) + 1

    def stage(self, mapped_select: str) -> None:
        """Build scratch table `_staged`: canonical columns plus `_reason` for rejects.

        Scratch tables live outside the chunk's transaction: only the writes to the
        store's own tables need to be atomic.
        """
        now_sql = f"TIMESTAMP '{self.now.isoformat(sep=' ')}'"
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE _staged AS "
            + finish_sql(f"({mapped_select})", now_sql=now_sql,
                         max_future_hours=self.max_future_hours, source=self.source)
        )

    def commit_staged(self, early_rejects: list[tuple[int, str | None, str, str]]) -> None:
        """In one transaction: quarantine the rejects, insert new events, record id links."""
        con = self.con
        total, bad = con.execute("SELECT count(*), count(_reason) FROM _staged").fetchone()
        con.execute("BEGIN TRANSACTION")
        try:
            self.quarantine_rows(early_rejects)
            if bad:
                raw = ("coalesce(s.raw, (SELECT c.raw FROM _chunk c WHERE c.line_no = s.line_no))"
                       if self.raw_by_line else "s.raw")
                con.execute(
                    f"INSERT INTO quarantine SELECT s.source, s.line_no, s._field, s._reason, {raw}, ? "
                    "FROM _staged s WHERE s._reason IS NOT NULL",
                    [self.now],
                )
            inserted = con.execute(
                f"""INSERT INTO events ({_EVENT_COLS})
                    SELECT {_EVENT_COLS} FROM (
                      SELECT * FROM _staged WHERE _reason IS NULL
                      QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY line_no) = 1
                    ) g
                    WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.message_id = g.message_id)"""
            ).fetchone()[0]
            con.execute(
                """INSERT INTO identity_links
                   SELECT DISTINCT anonymous_id, user_id, CASE WHEN type = 'identify' THEN 'identify' ELSE 'event' END
                   FROM _staged WHERE _reason IS NULL AND anonymous_id IS NOT NULL AND user_id IS NOT NULL
                     AND anonymous_id <> user_id
                   UNION ALL
                   SELECT DISTINCT previous_id, user_id, 'alias'
                   FROM _staged WHERE _reason IS NULL AND type = 'alias' AND previous_id <> user_id"""
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        if bad:
            self._count_reasons([r[0] for r in con.execute(
                "SELECT _reason FROM _staged WHERE _reason IS NOT NULL").fetchall()])
        self.result.read += int(total)
        self.result.quarantined += int(bad)
        self.result.loaded += int(inserted)
        self.result.duplicates += int(total) - int(bad) - int(inserted)

    def load_json_documents(self, table: pa.Table, fmt: str, early_rejects: list[tuple[int, str | None, str, str]]) -> None:
        """`table(line_no, raw)`: one JSON text per row (blank rows are skipped)."""
        con = self.con
        con.register("_arrow_chunk", table)
        try:
            # DuckDB scans its own tables on all cores, an Arrow table on one: copy first.
            con.execute("CREATE OR REPLACE TEMP TABLE _chunk AS "
                        "SELECT line_no, rtrim(raw, chr(10) || chr(13)) AS raw FROM _arrow_chunk")
        finally:
            con.unregister("_arrow_chunk")
        docs = "SELECT line_no, raw, raw AS j FROM _chunk WHERE trim(raw) <> ''"
        # Batch envelopes are rare in files: only pay for unwrapping when one is there.
        batches = fmt == "segment" and con.execute(
            "SELECT count(*) FROM _chunk WHERE contains(raw, '\"batch\"')").fetchone()[0] > 0
        if batches:
            docs = _unwrap_segment_batches()
        # One line, one event: quarantined lines are looked up again by number.
        self.raw_by_line = not batches
        self.stage(mapping_sql(json_spec(fmt), f"({docs})", keep_raw=batches))
        self.commit_staged(early_rejects)
        self.raw_by_line = False

    def load_rows(self, table: pa.Table, mapped_sql: str, early_rejects: list[tuple[int, str | None, str, str]]) -> None:
        """`table(line_no, <columns>)` from a CSV/Parquet chunk; `mapped_sql` reads `_chunk`."""
        self.con.register("_chunk", table)
        try:
            self.stage(mapped_sql)
        finally:
            self.con.unregister("_chunk")
        self.commit_staged(early_rejects)


def _unwrap_segment_batches() -> str:
    """Documents of a chunk, with `{"batch": [...]}` envelopes opened into their events.

    An event without `sentAt` takes the envelope's, so the clock-skew correction applies.
    """
    return """
    WITH docs AS (
      SELECT line_no, raw,
             coalesce(CASE WHEN contains(raw, '"batch"') AND json_valid(raw)
                           THEN json_type(raw, '$.batch') = 'ARRAY' END, false) AS is_batch
      FROM _chunk WHERE trim(raw) <> ''
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
    previous_limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    con.execute(f"SET memory_limit = '{config.ingest.memory_limit}'")
    try:
        _ingest_chunks(store, loader, path, fmt, mapping, config, progress)
    finally:
        con.execute(f"SET memory_limit = '{previous_limit}'")
    result.restitched = rebuild_identities(con)
    rebuild_profiles(store)
    return result


def _ingest_chunks(store: Store, loader: _Loader, path: Path, fmt: str,
                   mapping: str | dict[str, str] | None, config: Config,
                   progress: Callable[[int], None]) -> None:
    con = store.duck
    if fmt in ("csv", "tsv", "parquet"):
        explicit = parse_mapping(mapping) if isinstance(mapping, str) or mapping is None else dict(mapping)
        columns = tabular_columns(path, fmt, "\t" if fmt == "tsv" else ",")
        resolved = resolve_mapping(columns, explicit, where=str(path))
        chunks = (
            iter_parquet_chunks(path, batch_rows=config.ingest.chunk_lines, on_progress=progress)
            if fmt == "parquet"
            else iter_csv_chunks(path, delimiter="\t" if fmt == "tsv" else ",", on_progress=progress)
        )
        sql = tabular_mapping_sql(columns, resolved, "_chunk")
        for chunk in chunks:
            loader.load_rows(chunk.table, sql, [(line, None, reason, raw) for line, reason, raw in chunk.rejected])
    else:
        for table, bad in _json_tables(path, progress):
            loader.load_json_documents(table, fmt, [(line, None, "not valid UTF-8", raw) for line, raw in bad])


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
        yield pa.table({"line_no": pa.array(range(1, len(raws) + 1), pa.int64()), "raw": pa.array(raws, pa.string())}), []
        progress(file_size(path))
        return
    for chunk in iter_line_chunks(path, on_progress=progress):
        n = len(chunk.lines)
        table = pa.table({
            "line_no": pa.array(np.arange(chunk.first_line, chunk.first_line + n, dtype=np.int64)),
            "raw": chunk.lines,
        })
        yield table, chunk.undecodable


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
