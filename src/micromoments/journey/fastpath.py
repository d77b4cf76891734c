"""DuckDB executor of the journey kernel: one unordered read in, three tables out.

`build_journey` uses this on DuckDB. The events are read ONCE, in storage order, over only the
columns the kernel needs (moments joined in the same query), as Arrow record batches. Each batch's
text columns become integer codes at once (`person_id`, `event`, `page_path`, `channel`, `moment`;
the strings are dropped), numpy orders the events by (person, ts, message_id) with one stable
argsort of an integer key (`person_time_order`), and `sequence.sequence_kernel` walks them in
slices of whole people. Sorting in DuckDB instead carried every text column through the sort and
spilled under the memory cap (10M events: 9.3 s for the ordered read against 4.5 s for this read).
The vocabulary flags are evaluated once per distinct (event, page_path) (`EventFlags`).
`pipeline._build_with_kernel` writes the results back as Arrow into the tables the Ibis path builds
(`episodes_from_facts` -> `assign_stages`, `session_features_from_facts` -> `assign_stages`, and the
per-event keys `with_session_keys` joins), with the same columns, types and values; ids, outcome
and stages stay Ibis expressions. Other engines (Spark) run the Ibis path.

>>> # for keys, episodes, sessions in kernel_parts(con, narrow, EventVocabulary(), 30, 10): ...
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import ibis.expr.types as ir
import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from micromoments.journey.moments import NO_INTENT
from micromoments.journey.sequence import sequence_kernel
from micromoments.journey.vocab import EventVocabulary

# How `read_hashed` keys the text columns (tests make it collide to check the fallback).
HASH_SQL = "hash({})"
BATCH_ROWS = 1_000_000  # events per Arrow batch of the read, and per kernel call (whole people)

# (wall, CPU) seconds of the last build: `read` (DuckDB's join and the Arrow export, with the text
# columns coded), `order` (the argsort), `kernel` (flags, numpy, Arrow assembly) and `write`
# (tables back into DuckDB, with the stages); the benchmark prints them.
last_timings: dict[str, tuple[float, float]] = {}


@contextmanager
def timed(step: str) -> Iterator[None]:
    """Add the block's (wall, CPU) seconds to `last_timings[step]`."""
    t, c = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        w, u = last_timings.get(step, (0.0, 0.0))
        last_timings[step] = (w + time.perf_counter() - t, u + time.process_time() - c)

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
        secs=t.ts.epoch_seconds().cast("int64"),
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


def read_hashed(con: Any, expr: ir.Table, batch_rows: int = BATCH_ROWS) -> KernelInput | None:
    """`read_inputs` without exporting the coded text columns: DuckDB exports each one's 64-bit
    `hash()` (a number), the distinct values come from one small `GROUP BY` per column, and
    pandas maps the hashes to codes. None when two distinct values share a hash (the caller then
    reads the text). `event` and `page_path` travel as one hash of the pair (the flags need only
    the pair); `secs` and `intent` are derived here from `ts` and the moment codes, exactly as the
    SQL computes them, because DuckDB's export costs about the same per value whatever its width.

    Exporting the text columns and coding them in Python took 7.4 s of a 13.5 s build at 10M
    events (docs/benchmarks.md, journey).
    """
    duck = con.con
    sql = ibis.to_sql(expr, dialect="duckdb")
    keys = {"person_id": "person_id", "channel": "channel", "moment": "moment", "pair": "event, page_path"}
    indexes: dict[str, pd.Index] = {}
    values: dict[str, pa.Table] = {}
    for name, cols in keys.items():
        d = duck.execute(f"SELECT {cols}, {HASH_SQL.format(cols)} AS _h FROM ({sql}) GROUP BY ALL").to_arrow_table()
        hashes = d.column("_h").to_numpy()
        if not pd.Index(hashes).is_unique:
            return None
        if name != "pair":
            # Without NULL's hash in the index, get_indexer gives NULL the code -1 by itself.
            valid = np.asarray(d.column(cols).is_valid())
            d, hashes = d.filter(pa.array(valid)), hashes[valid]
        indexes[name], values[name] = pd.Index(hashes), d.drop_columns(["_h"])
    ts_type = expr.schema().to_pyarrow().field("ts").type
    exact_secs = ts_type == pa.timestamp("us")  # else the SQL's casts decide: read its `secs`
    numbers = {"ts": np.int64, "has_query": bool, "confidence": np.float64, "revenue": np.float64}
    if not exact_secs:
        numbers["secs"] = np.int64
    texts: dict[str, list[pa.Array]] = {"message_id": [], "query": []}
    # Filled in place (concatenating the batches' arrays cost ~1 s at 10M events). Counted before
    # the read starts: another query on the connection would end its stream.
    out = _Growing({**{name: np.int32 for name in keys}, **numbers},
                   duck.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0])
    reader = duck.execute(f"""
        SELECT {", ".join(f"{HASH_SQL.format(cols)} AS {name}" for name, cols in keys.items())},
               ts, {"" if exact_secs else "secs, "}coalesce(has_query, false) AS has_query,
               coalesce(confidence, 1.0)::DOUBLE AS confidence,
               coalesce(revenue::DOUBLE, 'NaN'::DOUBLE) AS revenue, message_id, query
        FROM ({sql})""").to_arrow_reader(batch_rows)
    try:
        # Batch by batch, copied out (an imported batch stays alive whole while any of its columns
        # is referenced): the whole export at once peaked at 3.8 GB at 10M events.
        for batch in reader:
            rows = out.take(batch.num_rows)
            for name in keys:
                out[name][rows] = indexes[name].get_indexer(_np(batch.column(name)))
            for c in numbers:
                out[c][rows] = _np(batch.column(c)).view(np.int64) if c == "ts" else _np(batch.column(c))
            for c in texts:
                texts[c].append(pa.concat_arrays([batch.column(c)]))
            del batch
    finally:
        reader.close()
    col = out.arrays()
    coded = {c: Coded(col.pop(c), values[c].column(c).combine_chunks()) for c in ("person_id", "channel", "moment")}
    ts = col.pop("ts")
    moment = coded["moment"]
    intent_of = ~np.isin(np.asarray(moment.names.to_pylist(), object), list(NO_INTENT))
    # DuckDB: CAST(EPOCH(ts) AS BIGINT), a DOUBLE of micros / 1e6 cast with halves to even (rint).
    if exact_secs:
        col["secs"] = np.rint(ts / 1e6).astype(np.int64)
    col["intent"] = np.append(intent_of, False)[moment.codes]  # code -1 (NULL) reads the False
    pairs = values["pair"]
    types = reader.schema
    return KernelInput(
        coded=coded, message_id=pa.chunked_array(texts["message_id"], type=types.field("message_id").type),
        query=pa.chunked_array(texts["query"], type=types.field("query").type).combine_chunks(),
        ts=ts, ts_type=ts_type, columns=col,
        pairs=(col.pop("pair"), list(zip(pairs.column("event").to_pylist(), pairs.column("page_path").to_pylist()))),
    )


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


def person_time_order(person: np.ndarray, t: np.ndarray, message_id: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Row indices in (person, t, message_id) order, message_id NULLs last (SQL's ORDER BY).

    One stable argsort of `person << bits | t` (t made coarser when the two do not fit in 63
    bits); rows whose key ties are then ordered by (t, message_id) among themselves.

    >>> person_time_order(np.array([1, 0, 1, 0]), np.array([5, 9, 5, 1]), pa.array(["b", "x", "a", None])).tolist()
    [3, 1, 2, 0]
    """
    n = len(person)
    if n == 0:
        return np.zeros(0, np.int64)
    t = t.astype(np.int64, copy=False)
    t0 = int(t.min())
    tbits = int(t.max() - t0).bit_length()
    pbits = max(int(person.max()), 0).bit_length()
    shift = max(0, pbits + tbits - 62)
    key = (person.astype(np.int64) << (tbits - shift)) | ((t - t0) >> shift)
    order = np.argsort(key, kind="stable")
    ks = key[order]
    tie = ks[1:] == ks[:-1]
    if not tie.any():
        return order
    in_group = np.zeros(n, bool)
    in_group[1:] |= tie
    in_group[:-1] |= tie
    pos = np.flatnonzero(in_group)
    follows = np.zeros(len(pos), bool)
    follows[pos > 0] = tie[pos[pos > 0] - 1]
    group = np.cumsum(~follows)
    rows = order[pos]
    ids = pc.take(message_id, pa.array(rows)).to_pylist()
    missing = np.array([i is None for i in ids], bool)
    text = np.array(["" if i is None else i for i in ids], dtype=str)
    order[pos] = rows[np.lexsort((text, missing, t[rows], group))]
    return order


class EventFlags:
    """The vocabulary flags (`is_conv`, `is_cart`, `is_view`, `is_support`) of each event.

    They depend only on (`event`, `page_path`), which take few distinct values: each distinct pair
    is evaluated once with the vocabulary's own Ibis expressions (on a private in-memory DuckDB)
    and the answers are looked up per event by the pair's code.
    """

    NAMES = ("is_conv", "is_cart", "is_view", "is_support")

    def __init__(self, vocab: EventVocabulary, pair_codes: np.ndarray,
                 pairs: list[tuple[str | None, str | None]]) -> None:
        self.bits = (self._evaluate(vocab, pairs)[pair_codes] if pairs else np.zeros(0)).astype(np.uint8)

    @staticmethod
    def _evaluate(vocab: EventVocabulary, pairs: list[tuple[str | None, str | None]]) -> np.ndarray:
        import ibis

        con = ibis.duckdb.connect()
        t = ibis.memtable(pa.table({"event": pa.array([p[0] for p in pairs], pa.string()),
                                    "page_path": pa.array([p[1] for p in pairs], pa.string()),
                                    "_i": pa.array(np.arange(len(pairs)))}))
        out = con.to_pyarrow(t.select(t._i, is_conv=vocab.is_conversion(t), is_cart=vocab.is_cart(t),
                                      is_view=vocab.is_product_view(t), is_support=vocab.is_support(t)))
        bits = np.zeros(len(pairs), np.int64)
        at = _np(out.column("_i")).astype(np.int64)
        for i, name in enumerate(EventFlags.NAMES):
            bits[at] |= _np(out.column(name), False).astype(np.int64) << i
        return bits

    def at(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        bits = self.bits[idx]
        return {name: (bits >> i) & 1 == 1 for i, name in enumerate(self.NAMES)}


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


def run_slice(inp: KernelInput, rows: np.ndarray, person: np.ndarray, moment: np.ndarray,
              moment_names: pa.Array, flags: EventFlags, gap_s: int,
              episode_gap_s: int) -> tuple[dict[str, np.ndarray], pa.Table, pa.Table]:
    """Kernel output (per-event numbers) and the episodes and sessions tables for `rows`: read
    positions of whole people in (person, ts, message_id) order."""
    n = len(rows)
    p = person[rows]
    new_person = np.ones(n, bool)
    if n > 1:
        new_person[1:] = p[1:] != p[:-1]
    col = inp.columns
    k = sequence_kernel(
        new_person=new_person, secs=col["secs"][rows], intent=col["intent"][rows], moment=moment[rows],
        has_query=col["has_query"][rows], conf=col["confidence"][rows], **flags.at(rows),
        revenue=col["revenue"][rows], gap_s=gap_s, episode_gap_s=episode_gap_s,
    )

    def at(i: np.ndarray) -> np.ndarray:  # kernel index -> read position (-1 stays -1)
        return _gather(rows, i)

    def ts(i: np.ndarray) -> pa.Array:
        return pa.array(inp.ts[at(i)], pa.int64()).cast(inp.ts_type)

    people, channel = inp.coded["person_id"], inp.coded["channel"]
    i64 = lambda a: pa.array(np.asarray(a, np.int64))
    episodes = pa.table({
        "person_id": people.take(at(k["ep_first"])), "session_no": i64(k["ep_session_no"]),
        "episode_no": i64(k["ep_no"]), "start": ts(k["ep_first"]), "end": ts(k["ep_last"]),
        "secs_start": i64(k["ep_secs_start"]), "duration_s": i64(k["ep_duration"]),
        "interactions": i64(k["ep_interactions"]), "trigger_query": _take(inp.query, at(k["ep_trigger"])),
        "channel": channel.take(at(k["ep_first"])), "moment": _take(moment_names, k["ep_moment"]),
        "confidence": pa.array(k["ep_confidence"], pa.float64()),
        "next_moment": _take(moment_names, k["ep_next_moment"]),
        "conversions": i64(k["ep_conversions"]), "revenue": pa.array(k["ep_revenue"], pa.float64()),
        "product_views": i64(k["ep_product_views"]), "cart_events": i64(k["ep_cart_events"]),
        "support_events": i64(k["ep_support_events"]),
        "_first_buy": pa.array(k["ep_first_buy"], pa.int64(), mask=~k["ep_has_buy"]),
    })
    sessions = pa.table({
        "person_id": people.take(at(k["s_first"])), "session_no": i64(k["s_no"]),
        "start": ts(k["s_first"]), "secs_start": i64(k["s_secs_start"]), "events": i64(k["s_events"]),
        "conversions": i64(k["s_conversions"]), "cart_events": i64(k["s_cart_events"]),
        "product_views": i64(k["s_product_views"]), "support_events": i64(k["s_support_events"]),
        "revenue": pa.array(k["s_revenue"], pa.float64()), "moment": _take(moment_names, k["s_moment"]),
        "_n": i64(k["s_episodes"]),
        "_first_buy": pa.array(k["s_first_buy"], pa.int64(), mask=~k["s_has_buy"]),
    })
    return k, episodes, sessions


def _slices(person_sorted: np.ndarray, size: int) -> Iterator[tuple[int, int]]:
    """[a, b) ranges of about `size` rows that never cut a person."""
    n = len(person_sorted)
    if n == 0:
        yield 0, 0
        return
    starts = np.flatnonzero(np.r_[True, person_sorted[1:] != person_sorted[:-1]])
    a = 0
    while a < n:
        j = int(np.searchsorted(starts, a + max(size, 1)))
        b = int(starts[j]) if j < len(starts) else n
        yield a, b
        a = b


def kernel_parts(con: Any, narrow: ir.Table, vocab: EventVocabulary, gap_minutes: int,
                 episode_gap_minutes: int, batch_rows: int | None = None) -> Iterator[tuple[pa.Table, pa.Table, pa.Table]]:
    """Read the events, order them and run the kernel on slices of whole people.

    Yields (keys, episodes, sessions) Arrow tables: first the episodes and sessions of each slice
    (with no keys), then the per-event keys (message_id, event_no, session_no) in read order, in
    slices of `batch_rows` (with no episodes or sessions). The caller writes them on `con`.
    """
    batch_rows = batch_rows or BATCH_ROWS
    last_timings.clear()
    with timed("read"):
        expr = kernel_inputs(narrow)
        inp = read_hashed(con, expr, batch_rows) or read_inputs(con, expr, batch_rows)
    with timed("order"):
        person = inp.coded["person_id"].codes
        order = person_time_order(person, inp.ts, inp.message_id)
    with timed("kernel"):
        moment, moment_names = inp.coded["moment"].ranked()
        flags = EventFlags(vocab, *inp.pairs)
        event_no = np.zeros(inp.n, np.int32)
        session_no = np.zeros(inp.n, np.int32)
    keys_schema = pa.schema([("message_id", inp.message_id.type), ("event_no", pa.int32()), ("session_no", pa.int32())])
    empty_keys = keys_schema.empty_table()
    episodes = sessions = None
    for a, b in _slices(person[order], batch_rows):
        with timed("kernel"):
            rows = order[a:b]
            k, episodes, sessions = run_slice(inp, rows, person, moment, moment_names, flags,
                                              gap_minutes * 60, episode_gap_minutes * 60)
            # Scattered back to read order, so the keys table needs no copy of the message ids.
            event_no[rows] = k["event_no"]
            session_no[rows] = k["session_no"]
        yield empty_keys, episodes, sessions
    assert episodes is not None and sessions is not None
    for a in range(0, inp.n, batch_rows):
        b = min(a + batch_rows, inp.n)
        yield (pa.table({"message_id": inp.message_id.slice(a, b - a), "event_no": event_no[a:b],
                         "session_no": session_no[a:b]}, schema=keys_schema),
               episodes.slice(0, 0), sessions.slice(0, 0))


__all__ = ["BATCH_ROWS", "Coded", "EventFlags", "KernelInput", "kernel_inputs", "kernel_parts",
           "person_time_order", "read_inputs", "run_slice", "timed"]
