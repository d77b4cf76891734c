"""DuckDB executor of the journey kernel: one ordered query in, three tables out.

`build_journey` uses this on DuckDB. The events are read ONCE, ordered by (person, ts,
message_id) over only the columns the kernel needs (moments joined in the same query), streamed
as Arrow record batches (on a cursor, so the connection stays free for writing), cut at person
boundaries and run through `sequence.sequence_kernel`; the vocabulary flags are evaluated once
per distinct (event, page_path) (`EventFlags`). `pipeline._build_with_kernel` writes the results
back as Arrow into the tables the Ibis path builds (`episodes_from_facts` -> `assign_stages`,
`session_features_from_facts` -> `assign_stages`, and the per-event keys `with_session_keys`
joins), with the same columns, types and values; ids, outcome and stages stay Ibis expressions.
Other engines (Spark) run the Ibis path.

>>> # for keys, episodes, sessions in kernel_parts(con, narrow, EventVocabulary(), 30, 10): ...
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import duckdb
import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from micromoments.journey.moments import NO_INTENT
from micromoments.journey.sequence import sequence_kernel
from micromoments.journey.vocab import EventVocabulary

BATCH_ROWS = 500_000  # events per Arrow batch: bounded memory, few kernel calls
# One ordered query for all people. Splitting them into hash buckets (a query each) was tried:
# DuckDB applied the bucket filter after the moments join, so each bucket repeated the 10M x 9M
# join (10M events, 2GB cap: 34 CPU s in 4 buckets vs 26 in one), for a lower peak (2.9 vs 3.5 GB).

# (wall, CPU) seconds of the last build: `query` (the ordered reads, including DuckDB's join and
# sort), `kernel` (flags, numpy, Arrow assembly) and `write` (tables back into DuckDB, with the
# stages); the benchmark prints them.
last_timings: dict[str, tuple[float, float]] = {}


def ordered_events(narrow: ir.Table) -> ir.Table:
    """The kernel's input: one row per event with a person and a time, in (person, ts, id) order.

    `secs`, `has_query` and `intent` are the same Ibis expressions the Ibis path evaluates, so the
    two paths read identical values. `event` and `page_path` come along for the vocabulary flags
    (`EventFlags`): joining a flags table here cost a second pass over the events with their moments.
    """
    t = narrow.filter(narrow.person_id.notnull() & narrow.ts.notnull())
    return t.select(
        t.message_id, t.person_id, t.ts,
        secs=t.ts.epoch_seconds().cast("int64"),
        channel=t.channel, query=t.query, moment=t.moment, confidence=t.confidence, revenue=t.revenue,
        event=t.event, page_path=t.page_path,
        has_query=t.query.notnull() & (t.query.strip().length() > 0),
        intent=(t.moment.notnull() & ~t.moment.isin(list(NO_INTENT))).fill_null(False),
    ).order_by("person_id", "ts", "message_id")


class EventFlags:
    """The vocabulary flags (`is_conv`, `is_cart`, `is_view`, `is_support`) of each event.

    They depend only on (`event`, `page_path`), which take few distinct values: each new pair is
    evaluated once with the vocabulary's own Ibis expressions (on a private in-memory DuckDB, as
    the main connection is busy streaming) and the answers are looked up per event by code.
    """

    NAMES = ("is_conv", "is_cart", "is_view", "is_support")

    def __init__(self, vocab: EventVocabulary) -> None:
        self.vocab = vocab
        self.known: dict[tuple[str | None, str | None], int] = {}  # pair -> bit set of the flags
        self._con: Any = None

    def _evaluate(self, pairs: list[tuple[str | None, str | None]]) -> None:
        import ibis

        if self._con is None:
            self._con = ibis.duckdb.connect()
        t = ibis.memtable(pa.table({"event": pa.array([p[0] for p in pairs], pa.string()),
                                    "page_path": pa.array([p[1] for p in pairs], pa.string())}))
        v = self.vocab
        out = self._con.to_pyarrow(t.select(t.event, t.page_path, is_conv=v.is_conversion(t), is_cart=v.is_cart(t),
                                            is_view=v.is_product_view(t), is_support=v.is_support(t)))
        cols = [out.column(c).to_pylist() for c in ("event", "page_path", *self.NAMES)]
        for e, p, *flags in zip(*cols):
            self.known[(e, p)] = sum(int(bool(f)) << i for i, f in enumerate(flags))

    def __call__(self, event: pa.Array, page_path: pa.Array) -> dict[str, np.ndarray]:
        ev, pp = _encode(event), _encode(page_path)
        e_codes = _np(ev.indices, -1).astype(np.int64) + 1  # 0 = NULL
        p_codes = _np(pp.indices, -1).astype(np.int64) + 1
        width = len(pp.dictionary) + 1
        pair = e_codes * width + p_codes
        size = (len(ev.dictionary) + 1) * width
        if size <= 1 << 22:  # a lookup table by code: no sort
            uniq = np.flatnonzero(np.bincount(pair, minlength=size))
            lut = np.zeros(size, np.int64)
            lut[uniq] = np.arange(len(uniq))
            inverse = lut[pair]
        else:
            uniq, inverse = np.unique(pair, return_inverse=True)
        e_names = [None, *ev.dictionary.to_pylist()]
        p_names = [None, *pp.dictionary.to_pylist()]
        keys = [(e_names[u // width], p_names[u % width]) for u in uniq.tolist()]
        new = [k for k in keys if k not in self.known]
        if new:
            self._evaluate(new)
        bits = np.array([self.known[k] for k in keys], np.int64)[inverse.reshape(-1)]
        return {name: (bits >> i) & 1 == 1 for i, name in enumerate(self.NAMES)}


def _np(col: pa.ChunkedArray | pa.Array, fill: Any = None) -> np.ndarray:
    if fill is not None:
        col = pc.fill_null(col, fill)
    return col.to_numpy(zero_copy_only=False) if isinstance(col, pa.Array) else col.to_numpy()


def _encode(col: pa.ChunkedArray | pa.Array) -> pa.DictionaryArray:
    """Dictionary-encode (one dictionary for all chunks) into one array of codes."""
    enc = pc.dictionary_encode(col)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks() if enc.num_chunks else pa.DictionaryArray.from_arrays(
            pa.array([], pa.int32()), pa.array([], pa.string()))
    return enc


def _take(col: pa.Array, idx: np.ndarray) -> pa.Array:
    """`col[idx]`, NULL where idx < 0."""
    return pc.take(col, pa.array(idx, mask=idx < 0))


def run_chunk(chunk: pa.Table, gap_s: int, episode_gap_s: int,
              flags: EventFlags | None = None) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(keys, episodes, sessions) Arrow tables for a chunk of whole people in kernel order."""
    flags = flags or EventFlags(EventVocabulary())
    # Columns stay chunked (combining them copied every string); compute functions take chunks.
    col = {name: chunk.column(name) for name in chunk.column_names}
    n = chunk.num_rows
    person = col["person_id"]
    new_person = np.ones(n, bool)
    if n > 1:
        new_person[1:] = _np(pc.not_equal(person.slice(1), person.slice(0, n - 1)))
    # Moment names -> integer codes whose order is the names' (byte) order, as SQL sorts them.
    enc = _encode(col["moment"])
    names = enc.dictionary.to_pylist()
    order = sorted(range(len(names)), key=lambda i: names[i].encode())
    rank = np.empty(len(names), np.int64)
    rank[order] = np.arange(len(names))
    sorted_names = pa.array([names[i] for i in order], pa.string())
    codes = _np(enc.indices, -1).astype(np.int64)
    moment = np.where(codes >= 0, rank[np.maximum(codes, 0)] if len(names) else -1, -1)
    k = sequence_kernel(
        new_person=new_person, secs=_np(col["secs"]), intent=_np(col["intent"], False),
        moment=moment, has_query=_np(col["has_query"], False), conf=_np(col["confidence"], 1.0),
        **flags(col["event"], col["page_path"]),
        revenue=_np(pc.cast(col["revenue"], pa.float64()), np.nan), gap_s=gap_s, episode_gap_s=episode_gap_s,
    )
    i64 = lambda a: pa.array(np.asarray(a, np.int64))
    # `secs` is recomputed from `ts` by `with_session_keys`; int32 numbers keep this table small.
    keys = pa.table({"message_id": col["message_id"], "event_no": pa.array(k["event_no"].astype(np.int32)),
                     "session_no": pa.array(k["session_no"].astype(np.int32))})
    ts = col["ts"]
    episodes = pa.table({
        "person_id": _take(person, k["ep_first"]), "session_no": i64(k["ep_session_no"]),
        "episode_no": i64(k["ep_no"]), "start": _take(ts, k["ep_first"]), "end": _take(ts, k["ep_last"]),
        "secs_start": i64(k["ep_secs_start"]), "duration_s": i64(k["ep_duration"]),
        "interactions": i64(k["ep_interactions"]), "trigger_query": _take(col["query"], k["ep_trigger"]),
        "channel": _take(col["channel"], k["ep_first"]), "moment": _take(sorted_names, k["ep_moment"]),
        "confidence": pa.array(k["ep_confidence"], pa.float64()),
        "next_moment": _take(sorted_names, k["ep_next_moment"]),
        "conversions": i64(k["ep_conversions"]), "revenue": pa.array(k["ep_revenue"], pa.float64()),
        "product_views": i64(k["ep_product_views"]), "cart_events": i64(k["ep_cart_events"]),
        "support_events": i64(k["ep_support_events"]),
        "_first_buy": pa.array(k["ep_first_buy"], pa.int64(), mask=~k["ep_has_buy"]),
    })
    sessions = pa.table({
        "person_id": _take(person, k["s_first"]), "session_no": i64(k["s_no"]),
        "start": _take(ts, k["s_first"]), "secs_start": i64(k["s_secs_start"]), "events": i64(k["s_events"]),
        "conversions": i64(k["s_conversions"]), "cart_events": i64(k["s_cart_events"]),
        "product_views": i64(k["s_product_views"]), "support_events": i64(k["s_support_events"]),
        "revenue": pa.array(k["s_revenue"], pa.float64()), "moment": _take(sorted_names, k["s_moment"]),
        "_n": i64(k["s_episodes"]),
        "_first_buy": pa.array(k["s_first_buy"], pa.int64(), mask=~k["s_has_buy"]),
    })
    return keys, episodes, sessions


def person_chunks(batches: Any) -> Any:
    """Re-cut a stream of record batches (ordered by person) so no person spans two chunks."""
    carry: pa.Table | None = None
    for batch in batches:
        t = pa.Table.from_batches([batch])
        if carry is not None and carry.num_rows:
            t = pa.concat_tables([carry, t])
        n = t.num_rows
        if n == 0:
            continue
        person = t.column("person_id")
        last = person[n - 1]
        # The last person's first row: everything before it is complete.
        same = _np(pc.equal(person, last), False)
        cut = int(np.flatnonzero(~same)[-1]) + 1 if not same.all() else 0
        if cut == 0:
            carry = t
            continue
        yield t.slice(0, cut)
        carry = t.slice(cut)
    if carry is not None and carry.num_rows:
        yield carry


def _open_reader(con: Any, expr: ir.Table, batch_rows: int) -> tuple[Any, Any]:
    """A record-batch reader of `expr`: on a cursor of the DuckDB connection when it can read
    the input (then `con` stays free, so results are written while the query streams), else on
    `con` itself (an input only `con` sees, such as an Ibis memtable). Returns (reader, cursor)."""
    if getattr(con, "name", "") == "duckdb":
        cursor = con.con.cursor()
        try:
            return cursor.execute(ibis.to_sql(expr, dialect="duckdb")).fetch_record_batch(batch_rows), cursor
        except duckdb.Error:
            cursor.close()
    return con.to_pyarrow_batches(expr, chunk_size=batch_rows), None


def _timed(batches: Any, spent: list[float]) -> Iterator[Any]:
    """`batches`, adding the (wall, CPU) seconds spent waiting for each one to `spent`."""
    it = iter(batches)
    while True:
        t, c = time.perf_counter(), time.process_time()
        try:
            batch = next(it)
        except StopIteration:
            return
        finally:
            spent[0] += time.perf_counter() - t
            spent[1] += time.process_time() - c
        yield batch


def kernel_parts(con: Any, narrow: ir.Table, vocab: EventVocabulary, gap_minutes: int,
                 episode_gap_minutes: int, batch_rows: int | None = None) -> Iterator[tuple[pa.Table, pa.Table, pa.Table]]:
    """Run the ordered query and the kernel on each person chunk; yield (keys, episodes, sessions).

    When the query streams on a cursor, each chunk's results are yielded at once, so the caller
    writes them on `con` and Python holds one chunk of results at a time; otherwise they are
    yielded together after the query has finished.
    """
    batch_rows = batch_rows or BATCH_ROWS
    flags = EventFlags(vocab)
    last_timings.clear()
    spent = {"query": [0.0, 0.0], "kernel": [0.0, 0.0]}
    produced = False
    parts: list[tuple[pa.Table, pa.Table, pa.Table]] = []
    t, c = time.perf_counter(), time.process_time()
    reader, cursor = _open_reader(con, ordered_events(narrow), batch_rows)
    spent["query"][0] += time.perf_counter() - t
    spent["query"][1] += time.process_time() - c
    try:
        for chunk in person_chunks(_timed(reader, spent["query"])):
            t, c = time.perf_counter(), time.process_time()
            part = run_chunk(chunk, gap_minutes * 60, episode_gap_minutes * 60, flags)
            spent["kernel"][0] += time.perf_counter() - t
            spent["kernel"][1] += time.process_time() - c
            last_timings.update({k: (v[0], v[1]) for k, v in spent.items()})
            if cursor is not None:
                produced = True
                yield part
            else:
                parts.append(part)
    finally:
        # Free DuckDB's sorted result before the caller writes the gathered parts back.
        reader.close()
        del reader
        if cursor is not None:
            cursor.close()
    last_timings.update({k: (v[0], v[1]) for k, v in spent.items()})
    if parts:
        produced = True
        yield tuple(pa.concat_tables([p[i] for p in parts]) for i in range(3))  # type: ignore[misc]
    del parts
    if not produced:  # no events at all: one empty chunk gives the right columns
        empty = ordered_events(narrow).schema().to_pyarrow().empty_table()
        yield run_chunk(empty, gap_minutes * 60, episode_gap_minutes * 60, flags)


__all__ = ["BATCH_ROWS", "EventFlags", "kernel_parts", "ordered_events", "person_chunks", "run_chunk"]
