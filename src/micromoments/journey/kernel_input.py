"""What the journey kernel reads: the events as integer codes and numpy arrays (`KernelInput`).

Two ways to read them from DuckDB, both in storage order, batch by batch:

- `HashedRead` (the default): DuckDB exports the 64-bit `hash()` of each text column the kernel
  codes (a number: no strings leave DuckDB but `message_id` and `query`), one small `GROUP BY`
  per column gives the values behind the hashes, and pandas maps hashes to codes. It reads the
  people in parts (`hash(person_id) % parts`), so memory holds one part at a time and the next
  part is read on a second connection while the kernel runs on this one.
- `read_inputs`: the text columns dictionary-encoded in Python; used when two values of a column
  share a hash.

>>> # inp = read_inputs(con, kernel_inputs(narrow), 1_000_000)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from micromoments.journey.clock import whole_seconds
from micromoments.journey.moments import NO_INTENT

# How `HashedRead` keys the text columns (tests make it collide to check the fallback).
HASH_SQL = "hash({})"

CODED = ("person_id", "event", "page_path", "channel", "moment")  # read as integer codes


def kernel_inputs(narrow: ir.Table) -> ir.Table:
    """The kernel's input: one row per event with a person and a time (in no particular order).

    `secs`, `has_query` and `intent` are the same Ibis expressions the Ibis path evaluates, so the
    two paths read identical values. `event` and `page_path` come along for the vocabulary flags
    (`EventFlags`): a distinct-pairs table to join would cost a second pass over the events with
    their moments.
    """
    t = narrow.filter(narrow.person_id.notnull() & narrow.ts.notnull())
    return t.select(
        t.message_id, t.person_id, t.ts,
        secs=whole_seconds(t.ts),
        channel=t.channel, query=t.query, moment=t.moment, confidence=t.confidence, revenue=t.revenue,
        event=t.event, page_path=t.page_path,
        has_query=t.query.notnull() & (t.query.strip().length() > 0),
        intent=(t.moment.notnull() & ~t.moment.isin(list(NO_INTENT))).fill_null(False),
    )


@dataclass
class Coded:
    """A text column as integer codes (-1 = NULL) into `names`."""

    codes: np.ndarray
    names: pa.Array

    @classmethod
    def from_chunks(cls, chunks: list[pa.DictionaryArray], value_type: pa.DataType) -> "Coded":
        if not chunks:
            return cls(np.zeros(0, np.int32), pa.array([], value_type))
        unified = pa.chunked_array(chunks).unify_dictionaries()
        names = unified.chunk(0).dictionary
        # int32 codes: five coded columns of 10M events take 200 MB instead of 400.
        codes = np.concatenate([_np(c.indices, -1).astype(np.int32) for c in unified.chunks])
        return cls(codes, names)

    def ranked(self) -> tuple[np.ndarray, pa.Array]:
        """Codes renumbered so their order is the names' (byte) order, as SQL sorts them."""
        order = np.asarray(pc.array_sort_indices(self.names), np.int64)
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order))
        return _gather(rank, self.codes).astype(np.int32), self.names.take(pa.array(order, pa.int64()))

    def take(self, idx: np.ndarray) -> pa.Array:
        """The names at rows `idx` (NULL where the code is -1 or idx < 0)."""
        return _take(self.names, _gather(self.codes, idx))


@dataclass
class KernelInput:
    """The events as read: coded text columns and numpy arrays, in the read's (storage) order."""

    coded: dict[str, Coded]
    message_id: pa.ChunkedArray
    query: pa.Array
    ts: np.ndarray  # int64 in the column's own unit
    ts_type: pa.DataType
    columns: dict[str, np.ndarray]  # secs, has_query, intent, confidence, revenue
    # (code of each event's (event, page_path) pair, the pairs): what the vocabulary flags read
    pairs: tuple[np.ndarray, list[tuple[str | None, str | None]]]

    @property
    def n(self) -> int:
        return len(self.columns["secs"])


def read_inputs(con: Any, expr: ir.Table, batch_rows: int) -> KernelInput:
    """Stream `expr` from DuckDB and keep each batch's columns in the kernel's compact form.

    Everything kept is copied out of the batch: an Arrow batch imported from DuckDB stays alive
    as a whole while any one of its columns is referenced (10M events: 2.5 GB resident instead
    of the 0.8 GB kept).
    """
    coded: dict[str, list[pa.DictionaryArray]] = {c: [] for c in CODED}
    text: dict[str, list[pa.Array]] = {"message_id": [], "query": []}
    fills = {"ts": (pa.int64(), 0), "secs": (pa.int64(), 0), "has_query": (pa.bool_(), False),
             "intent": (pa.bool_(), False), "confidence": (pa.float64(), 1.0), "revenue": (pa.float64(), np.nan)}
    numbers: dict[str, list[np.ndarray]] = {c: [] for c in fills}
    schema = expr.schema().to_pyarrow()
    types = {"ts": schema.field("ts").type, "message_id": schema.field("message_id").type,
             "query": schema.field("query").type}
    reader = con.to_pyarrow_batches(expr, chunk_size=batch_rows)
    try:
        for batch in reader:
            for c in CODED:
                coded[c].append(pc.dictionary_encode(batch.column(c)))
            for c in text:
                text[c].append(pa.concat_arrays([batch.column(c)]))
                types[c] = batch.column(c).type
            types["ts"] = batch.column("ts").type  # DuckDB's export type, not always the schema's
            for c, (dtype, fill) in fills.items():
                numbers[c].append(np.array(_np(pc.cast(batch.column(c), dtype), fill), copy=True))
            del batch
    finally:
        reader.close()
    arrays = {c: np.concatenate(v) if v else np.zeros(0, fills[c][0].to_pandas_dtype())
              for c, v in numbers.items()}
    message_id, query = (pa.chunked_array(text[c], type=types[c]) for c in ("message_id", "query"))
    codes = {c: Coded.from_chunks(coded[c], schema.field(c).type) for c in CODED}
    return KernelInput(
        coded=codes, message_id=message_id, query=query.combine_chunks(), ts=arrays.pop("ts"),
        ts_type=types["ts"], columns=arrays, pairs=event_pairs(codes.pop("event"), codes.pop("page_path")),
    )


def event_pairs(event: Coded, page_path: Coded) -> tuple[np.ndarray, list[tuple[str | None, str | None]]]:
    """A code per distinct (event, page_path) and the pairs, from the two coded columns.

    >>> codes, pairs = event_pairs(Coded(np.array([0, 0, -1]), pa.array(["View"])),
    ...                            Coded(np.array([1, 1, 0]), pa.array(["/", "/p"])))
    >>> codes.tolist(), pairs
    ([1, 1, 0], [(None, '/'), ('View', '/p')])
    """
    width = len(page_path.names) + 1
    pair = (event.codes.astype(np.int64) + 1) * width + (page_path.codes + 1)  # 0 = NULL in each part
    size = (len(event.names) + 1) * width
    if size <= 1 << 22:  # a lookup table by code: no sort of all events
        uniq = np.flatnonzero(np.bincount(pair, minlength=size))
        lut = np.zeros(size, np.int32)
        lut[uniq] = np.arange(len(uniq))
        inverse = lut[pair]
    else:
        uniq, inverse = np.unique(pair, return_inverse=True)
    e_names = [None, *event.names.to_pylist()]
    p_names = [None, *page_path.names.to_pylist()]
    return inverse.reshape(-1).astype(np.int32), [(e_names[u // width], p_names[u % width]) for u in uniq.tolist()]


# What `HashedRead` exports as hashes: name -> the column(s) hashed.
HASHED_KEYS = {"person_id": "person_id", "channel": "channel", "moment": "moment", "pair": "event, page_path"}


def hashed_select(sql: str, with_secs: bool = False) -> str:
    """The query `HashedRead` streams from `sql` (the kernel's inputs): every column a number
    except `message_id` and `query`. `benchmarks/journey.py --floors` times it alone."""
    return f"""
        SELECT {", ".join(f"{HASH_SQL.format(cols)} AS {name}" for name, cols in HASHED_KEYS.items())},
               ts, {"secs, " if with_secs else ""}coalesce(has_query, false) AS has_query,
               coalesce(confidence, 1.0)::DOUBLE AS confidence,
               coalesce(revenue::DOUBLE, 'NaN'::DOUBLE) AS revenue, message_id, query
        FROM ({sql})"""


@dataclass
class HashedRead:
    """The hashed read of `expr` (the kernel's inputs), prepared: each coded column's hash index
    and values, and the row count. `HashedRead.prepare` gives None when two distinct values of a
    column share a hash (then read the text with `read_inputs`).

    `event` and `page_path` travel as one hash of the pair (the flags need only the pair); `secs`
    and `intent` are derived in numpy from `ts` and the moment codes, exactly as the SQL computes
    them, because DuckDB's export costs about the same per value whatever its width. Exporting
    the text columns and coding them in Python took 7.4 s of a 13.5 s build at 10M events
    (docs/benchmarks.md, journey).
    """

    sql: str
    indexes: dict[str, pd.Index]  # per hashed column: the hashes of its distinct values, by code
    names: dict[str, pa.Array]  # per coded column: its values, by code (no NULL: that is -1)
    pairs: list[tuple[str | None, str | None]]  # the (event, page_path) pairs, by code
    ts_type: pa.DataType
    rows: int
    batch_rows: int

    @classmethod
    def prepare(cls, con: Any, expr: ir.Table, batch_rows: int) -> "HashedRead | None":
        duck = con.con
        sql = ibis.to_sql(expr, dialect="duckdb")
        indexes: dict[str, pd.Index] = {}
        values: dict[str, pa.Table] = {}
        for name, cols in HASHED_KEYS.items():
            d = duck.execute(f"SELECT {cols}, {HASH_SQL.format(cols)} AS _h FROM ({sql}) GROUP BY ALL").to_arrow_table()
            hashes = d.column("_h").to_numpy()
            if not pd.Index(hashes).is_unique:
                return None
            if name != "pair":
                # Without NULL's hash in the index, get_indexer gives NULL the code -1 by itself.
                valid = np.asarray(d.column(cols).is_valid())
                d, hashes = d.filter(pa.array(valid)), hashes[valid]
            indexes[name], values[name] = pd.Index(hashes), d.drop_columns(["_h"])
        rows = duck.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
        pairs = values.pop("pair")
        return cls(sql, indexes, {c: t.column(c).combine_chunks() for c, t in values.items()},
                   list(zip(pairs.column("event").to_pylist(), pairs.column("page_path").to_pylist())),
                   expr.schema().to_pyarrow().field("ts").type, rows, batch_rows)

    @property
    def exact_secs(self) -> bool:
        return self.ts_type == pa.timestamp("us")  # else the SQL's casts decide: read its `secs`

    def read(self, duck: Any, part: int = 0, parts: int = 1) -> KernelInput:
        """The people with `hash(person_id) % parts == part`, streamed on `duck` (a DuckDB
        connection) and copied batch by batch into numpy."""
        numbers = {"ts": np.int64, "has_query": bool, "confidence": np.float64, "revenue": np.float64}
        if not self.exact_secs:
            numbers["secs"] = np.int64
        sql = self.sql if parts == 1 else f"SELECT * FROM ({self.sql}) WHERE hash(person_id) % {parts} = {part}"
        select = hashed_select(sql, with_secs=not self.exact_secs)
        texts: dict[str, list[pa.Array]] = {"message_id": [], "query": []}
        # Filled in place: concatenating the batches' arrays cost ~1 s at 10M events.
        out = _Growing({**{name: np.int32 for name in HASHED_KEYS}, **numbers}, math.ceil(self.rows / parts * 1.05))
        reader = duck.execute(select).to_arrow_reader(self.batch_rows)
        try:
            # Copied out: an imported batch stays alive whole while any of its columns is referenced.
            for batch in reader:
                rows = out.take(batch.num_rows)
                for name in HASHED_KEYS:
                    out[name][rows] = self.indexes[name].get_indexer(_np(batch.column(name)))
                for c in numbers:
                    out[c][rows] = _np(batch.column(c)).view(np.int64) if c == "ts" else _np(batch.column(c))
                for c in texts:
                    texts[c].append(pa.concat_arrays([batch.column(c)]))
                del batch
        finally:
            reader.close()
        col = out.arrays()
        coded = {c: Coded(col.pop(c), names) for c, names in self.names.items()}
        ts = col.pop("ts")
        moment = coded["moment"]
        intent_of = ~np.isin(np.asarray(moment.names.to_pylist(), object), list(NO_INTENT))
        # `whole_seconds`: micros floored to seconds.
        if self.exact_secs:
            col["secs"] = ts // 1_000_000
        col["intent"] = np.append(intent_of, False)[moment.codes]  # code -1 (NULL) reads the False
        types = reader.schema
        return KernelInput(
            coded=coded, message_id=pa.chunked_array(texts["message_id"], type=types.field("message_id").type),
            query=pa.chunked_array(texts["query"], type=types.field("query").type).combine_chunks(),
            ts=ts, ts_type=self.ts_type, columns=col,
            pairs=(col.pop("pair"), self.pairs),
        )

    def parts(self, con: Any, part_rows: int, max_parts: int = 8) -> Iterator[KernelInput]:
        """All people, in parts of about `part_rows` events (at most `max_parts`: each part's
        query scans every event's `person_id` to pick its people). Each next part is read on a
        cursor (a second connection) while the caller works on this one, when the query can run
        there (an Ibis memtable is visible to its own connection only: then one after another)."""
        parts = min(max(1, math.ceil(self.rows / max(part_rows, 1))), max(max_parts, 1))
        cursor = self._cursor(con.con) if parts > 1 else None
        if cursor is None:
            for part in range(parts):
                yield self.read(con.con, part, parts)
            return
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                pending = pool.submit(self.read, cursor, 0, parts)
                for part in range(parts):
                    inp = pending.result()
                    if part + 1 < parts:
                        pending = pool.submit(self.read, cursor, part + 1, parts)
                    yield inp
        finally:  # also when the caller stops early: the pool waits for a read under way first
            cursor.close()

    def _cursor(self, duck: Any) -> Any | None:
        import duckdb

        cursor = duck.cursor()
        try:
            cursor.execute(f"SELECT * FROM ({self.sql}) LIMIT 0")
        except duckdb.Error:
            cursor.close()
            return None
        return cursor


def read_hashed(con: Any, expr: ir.Table, batch_rows: int) -> KernelInput | None:
    """All of `expr` by the hashed read, in one part (None on a hash collision)."""
    prepared = HashedRead.prepare(con, expr, batch_rows)
    return None if prepared is None else prepared.read(con.con)


class _Growing:
    """numpy columns filled batch by batch, sized by a row count that may grow (rows that arrive
    between the count and the read)."""

    def __init__(self, dtypes: dict[str, Any], rows: int) -> None:
        self._cols = {c: np.empty(rows, t) for c, t in dtypes.items()}
        self.n = 0

    def take(self, rows: int) -> slice:
        """The next `rows` rows (capacity doubles if needed)."""
        need = self.n + rows
        for c, a in self._cols.items():
            if need > len(a):
                grown = np.empty(max(need, 2 * len(a)), a.dtype)
                grown[: self.n] = a[: self.n]
                self._cols[c] = grown
        out, self.n = slice(self.n, need), need
        return out

    def __getitem__(self, column: str) -> np.ndarray:
        return self._cols[column]

    def arrays(self) -> dict[str, np.ndarray]:
        return {c: a[: self.n] for c, a in self._cols.items()}


def _np(col: pa.ChunkedArray | pa.Array, fill: Any = None) -> np.ndarray:
    if fill is not None:
        col = pc.fill_null(col, fill)
    return col.to_numpy(zero_copy_only=False) if isinstance(col, pa.Array) else col.to_numpy()


def _take(col: pa.Array, idx: np.ndarray) -> pa.Array:
    """`col[idx]`, NULL where idx < 0."""
    return pc.take(col, pa.array(idx, mask=idx < 0))


def _gather(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """`values[idx]`, -1 where idx < 0 (the kernel's "none")."""
    if not len(values):
        return np.full(len(idx), -1, np.int64)
    return np.where(idx >= 0, values[np.maximum(idx, 0)], -1)


__all__ = ["CODED", "HASHED_KEYS", "Coded", "HashedRead", "KernelInput", "event_pairs", "hashed_select",
           "kernel_inputs", "read_hashed", "read_inputs"]
