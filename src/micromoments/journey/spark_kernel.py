"""Spark executor of the journey kernel: the DuckDB path's own code, run on partitions of people.

`build_journey` uses this on Spark. The kernel's inputs (`kernel_input.kernel_inputs`, the same
Ibis expression as on DuckDB) are hashed by `person_id` into partitions, so every person's events
are in one partition; each partition's Arrow batches go through `read_inputs` and
`fastpath._run_part` (`mapInArrow`) exactly as a part of people does on DuckDB, and the three
results (per-event keys, episodes, sessions) come back as one cached table, split into three
views. Stages, ids and outcomes are then the same Ibis expressions as on DuckDB, so both engines
share one implementation of sessions and episodes; the window-SQL path (`method="ibis"`) stays as
the tested reference.

>>> # j = build_journey(load_events(lake_store)[0], con=lake_store.ibis)  # method "auto" -> this on Spark
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from micromoments.journey.vocab import EventVocabulary

# Every output row is one of three kinds; the columns of the other kinds are NULL.
KEY_COLUMNS = {"message_id": pa.string(), "event_no": pa.int32(), "session_no": pa.int32()}
TS = pa.timestamp("us", tz="UTC")
EPISODE_COLUMNS = {
    "person_id": pa.string(), "session_no": pa.int64(), "episode_no": pa.int64(), "start": TS, "end": TS,
    "secs_start": pa.int64(), "duration_s": pa.int64(), "interactions": pa.int64(), "trigger_query": pa.string(),
    "channel": pa.string(), "moment": pa.string(), "confidence": pa.float64(), "next_moment": pa.string(),
    "conversions": pa.int64(), "revenue": pa.float64(), "product_views": pa.int64(), "cart_events": pa.int64(),
    "support_events": pa.int64(), "_first_buy": pa.int64(),
}
SESSION_COLUMNS = {
    "person_id": pa.string(), "session_no": pa.int64(), "start": TS, "secs_start": pa.int64(), "events": pa.int64(),
    "conversions": pa.int64(), "cart_events": pa.int64(), "product_views": pa.int64(),
    "support_events": pa.int64(), "revenue": pa.float64(), "moment": pa.string(), "_n": pa.int64(),
    "_first_buy": pa.int64(),
}
PREFIXES = (("k_", KEY_COLUMNS), ("e_", EPISODE_COLUMNS), ("s_", SESSION_COLUMNS))
OUT_SCHEMA = pa.schema([("_kind", pa.int8())] + [(p + c, t) for p, cols in PREFIXES for c, t in cols.items()])
SPARK_TYPES = {pa.string(): "string", pa.int32(): "int", pa.int64(): "bigint", pa.int8(): "tinyint",
               pa.float64(): "double", TS: "timestamp"}


def spark_schema() -> str:
    """The output's Spark DDL schema."""
    return ", ".join(f"`{f.name}` {SPARK_TYPES[f.type]}" for f in OUT_SCHEMA)


def _tagged(kind: int, table: pa.Table) -> pa.RecordBatch:
    """One output batch: `table`'s columns under their kind's prefix, the others NULL."""
    n = table.num_rows
    prefix, _ = PREFIXES[kind]
    arrays = [pa.array(np.full(n, kind, np.int8))]
    for f in list(OUT_SCHEMA)[1:]:
        name = f.name[len(prefix):] if f.name.startswith(prefix) else None
        if name is not None and name in table.column_names:
            col = table.column(name).combine_chunks() if n else pa.array([], f.type)
            arrays.append(col.cast(f.type))
        else:
            arrays.append(pa.nulls(n, f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=OUT_SCHEMA)


class _Batches:
    """What `read_inputs` reads from: a partition's Arrow batches in place of a DuckDB connection."""

    def __init__(self, first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]):
        self.first, self.rest = first, rest

    def schema(self) -> "_Batches":
        return self

    def to_pyarrow(self) -> pa.Schema:
        return self.first.schema

    def to_pyarrow_batches(self, expr: Any, chunk_size: int) -> pa.RecordBatchReader:
        def all_batches() -> Iterator[pa.RecordBatch]:
            yield self.first
            yield from self.rest
        return pa.RecordBatchReader.from_batches(self.first.schema, all_batches())


def run_partitions(vocab: EventVocabulary, gap_s: int, episode_gap_s: int,
                   batch_rows: int) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function each partition runs: its people's events in, tagged kernel results out."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from micromoments.journey.fastpath import EventFlags, _run_part
        from micromoments.journey.kernel_input import read_inputs

        first = next(batches, None)
        if first is None:
            return
        source = _Batches(first, batches)
        inp = read_inputs(source, source, batch_rows)  # type: ignore[arg-type]
        pair_bits = EventFlags.evaluate(vocab, inp.pairs[1])
        for keys, episodes, sessions in _run_part(inp, pair_bits, gap_s, episode_gap_s, batch_rows):
            for kind, table in enumerate((keys, episodes, sessions)):
                if table.num_rows:
                    yield _tagged(kind, table)

    return run


def kernel_tables(con: Any, narrow: ir.Table, vocab: EventVocabulary, gap_minutes: int, episode_gap_minutes: int,
                  batch_rows: int = 1_000_000) -> tuple[Any, Any, Any]:
    """(keys, episodes, sessions) Spark DataFrames of the kernel on the events of `narrow`."""
    from micromoments.journey.kernel_input import kernel_inputs

    session = con._session
    inputs = session.sql(con.compile(kernel_inputs(narrow)))
    parts = int(session.conf.get("spark.sql.shuffle.partitions"))
    out = (inputs.repartition(parts, "person_id")
           .mapInArrow(run_partitions(vocab, gap_minutes * 60, episode_gap_minutes * 60, batch_rows), spark_schema())
           .cache())
    frames = []
    for kind, (prefix, cols) in enumerate(PREFIXES):
        part = out.where(out._kind == kind)
        frames.append(part.select(*[part[prefix + c].alias(c) for c in cols]))
    return tuple(frames)  # type: ignore[return-value]
