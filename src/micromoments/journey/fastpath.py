"""DuckDB executor of the journey kernel: unordered reads in, three tables out.

`build_journey` uses this on DuckDB. The events are read once, in storage order, over only the
columns the kernel needs, as integer codes and numbers (`journey.kernel_input`: DuckDB exports
hashes of the text columns), in parts of whole people; numpy orders each part's events by
(person, ts, message_id) with one stable argsort of an integer key (`person_time_order`), and
`sequence.sequence_kernel` walks them in slices of whole people while the next part is read.
Sorting in DuckDB instead carried every text column through the sort and spilled under the
memory cap (10M events: 9.3 s for an ordered read against 4.5 s for an unordered one).
The vocabulary flags are evaluated once per distinct (event, page_path) (`EventFlags`).
`pipeline._build_with_kernel` writes the results back as Arrow into the tables the Ibis path builds
(`episodes_from_facts` -> `assign_stages`, `session_features_from_facts` -> `assign_stages`, and the
per-event keys `with_session_keys` joins), with the same columns, types and values; ids, outcome
and stages stay Ibis expressions. Spark runs this same code on partitions of people (`journey.spark_kernel`).

>>> # for keys, episodes, sessions in kernel_parts(con, narrow, EventVocabulary(), 30, 10): ...
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from micromoments.journey.kernel_input import (
    HashedRead,
    KernelInput,
    _gather,
    _np,
    _take,
    hashed_select,
    kernel_inputs,
    read_hashed,
    read_inputs,
)
from micromoments.journey.sequence import sequence_kernel
from micromoments.journey.vocab import EventVocabulary

BATCH_ROWS = 1_000_000  # events per Arrow batch of the read, and per kernel call (whole people)
# Events per part of the hashed read: the people are read and run part by part, the next part
# read while the kernel runs on this one, and memory holds about two parts.
PART_ROWS = 4_000_000

# (wall, CPU) seconds of the last build: `read` (DuckDB's export with the text columns coded; for
# a part read ahead, only the wait for it), `order` (the argsort), `kernel` (flags, numpy, Arrow
# assembly) and `write`
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

    def __init__(self, pair_bits: np.ndarray, pair_codes: np.ndarray) -> None:
        """`pair_bits`: `evaluate`'s answer for the pairs that `pair_codes` (one per event) index."""
        self.bits = (pair_bits[pair_codes] if len(pair_bits) else np.zeros(0)).astype(np.uint8)

    @staticmethod
    def evaluate(vocab: EventVocabulary, pairs: list[tuple[str | None, str | None]]) -> np.ndarray:
        """The flags of each (event, page_path) pair, as bits in `NAMES` order."""
        if not pairs:
            return np.zeros(0, np.int64)
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

    Yields (keys, episodes, sessions) Arrow tables, part by part of the people: first the
    episodes and sessions of each slice (with no keys), then the part's per-event keys
    (message_id, event_no, session_no) in slices of `batch_rows` (with no episodes or sessions).
    The caller writes them on `con`.
    """
    batch_rows = batch_rows or BATCH_ROWS
    last_timings.clear()
    expr = kernel_inputs(narrow)
    with timed("read"):
        hashed = HashedRead.prepare(con, expr, batch_rows)
        if hashed is not None:
            pairs, inputs = hashed.pairs, hashed.parts(con, PART_ROWS)
        else:
            whole = read_inputs(con, expr, batch_rows)
            pairs, inputs = whole.pairs[1], iter([whole])
    with timed("kernel"):  # once: every part's pair codes index the same pairs
        pair_bits = EventFlags.evaluate(vocab, pairs)
    while True:
        with timed("read"):  # on a part read ahead, only the wait for it
            inp = next(inputs, None)
        if inp is None:
            return
        yield from _run_part(inp, pair_bits, gap_minutes * 60, episode_gap_minutes * 60, batch_rows)


def _run_part(inp: KernelInput, pair_bits: np.ndarray, gap_s: int, episode_gap_s: int,
              batch_rows: int) -> Iterator[tuple[pa.Table, pa.Table, pa.Table]]:
    """`kernel_parts` for the people of one input."""
    with timed("order"):
        person = inp.coded["person_id"].codes
        order = person_time_order(person, inp.ts, inp.message_id)
    with timed("kernel"):
        moment, moment_names = inp.coded["moment"].ranked()
        flags = EventFlags(pair_bits, inp.pairs[0])
        event_no = np.zeros(inp.n, np.int32)
        session_no = np.zeros(inp.n, np.int32)
    keys_schema = pa.schema([("message_id", inp.message_id.type), ("event_no", pa.int32()), ("session_no", pa.int32())])
    empty_keys = keys_schema.empty_table()
    episodes = sessions = None
    for a, b in _slices(person[order], batch_rows):
        with timed("kernel"):
            rows = order[a:b]
            k, episodes, sessions = run_slice(inp, rows, person, moment, moment_names, flags, gap_s, episode_gap_s)
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


__all__ = ["BATCH_ROWS", "PART_ROWS", "EventFlags", "KernelInput", "hashed_select", "kernel_inputs", "kernel_parts",
           "person_time_order", "read_hashed", "read_inputs", "run_slice", "timed"]
