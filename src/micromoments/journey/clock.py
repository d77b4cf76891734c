"""Whole seconds since the epoch, the same on every engine.

DuckDB's `CAST(epoch(ts) AS BIGINT)` rounds to the nearest second while Spark's
`unix_timestamp(ts)` truncates, so 10:59:59.7 fell in hour 11 on one and hour 10 on the other
(and a session gap could differ by a second). Truncating first makes both floor.

>>> import ibis
>>> t = ibis.memtable({"ts": ["2026-01-01 10:59:59.7"]}).cast({"ts": "timestamp"})
>>> int(t.select(s=whole_seconds(t.ts)).execute().s[0]) % 3600
3599
"""

from __future__ import annotations

import ibis.expr.types as ir


def whole_seconds(ts: ir.TimestampValue) -> ir.IntegerValue:
    """`ts` as int64 seconds since 1970-01-01, floored (sub-second parts dropped)."""
    return ts.truncate("s").epoch_seconds().cast("int64")
