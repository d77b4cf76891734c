"""Row-level writes on either engine: replace the rows of some keys, or append rows.

DuckDB deletes and inserts in SQL. A lake is plain Parquet with no DELETE, so the table is read,
the replaced rows dropped, and the table rewritten whole, in the column types it already has. The
steps that use this write small tables (`personas`: one row per person; `survey_answers`,
`quarantine`), never `events`.

>>> from micromoments.store import Store
>>> import pandas as pd
>>> s = Store(":memory:")
>>> rows = pd.DataFrame({"person_id": ["p1"], "persona_id": [0], "persona": ["Browsers"], "distance": [0.5],
...                      "method": ["incremental"], "model_version": ["v1"],
...                      "assigned_at": [pd.Timestamp("2026-09-01")]})
>>> replace_rows(s, "personas", rows, "person_id"); replace_rows(s, "personas", rows, "person_id")
>>> s.count("personas")
1
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from micromoments.store.schema import TABLES


def on_lake(store: Any) -> bool:
    """True when `store` is a lake on Spark (`LakeStore`), False for DuckDB."""
    return getattr(store, "engine", "duckdb") == "spark"


def replace_rows(store: Any, table: str, rows: pd.DataFrame, key: str, keys: Iterable[Any] | None = None) -> None:
    """Delete the rows of `table` whose `key` is one of `keys` (default: the keys in `rows`), then
    insert `rows` (the table's columns, in its order)."""
    keys = pd.Series(list(rows[key].unique()) if keys is None else list(keys), dtype="object", name=key)
    cols = _columns(store, table, rows)
    if not on_lake(store):
        duck = store.duck
        duck.register("_mm_keys", keys.to_frame())
        duck.register("_mm_rows", rows)
        try:
            duck.execute(f'DELETE FROM "{table}" WHERE "{key}" IN (SELECT "{key}" FROM _mm_keys)')
            names = ", ".join(f'"{c}"' for c in cols)
            duck.execute(f'INSERT INTO "{table}" ({names}) SELECT {names} FROM _mm_rows')
        finally:
            duck.unregister("_mm_keys")
            duck.unregister("_mm_rows")
        return
    # Read whole before the overwrite: Spark cannot overwrite a folder its plan still reads from.
    old = store.view(table).toPandas() if store.count(table) else pd.DataFrame(columns=cols)
    kept = old[~old[key].isin(set(keys))]
    new = rows[cols]
    frame = pd.concat([f for f in (kept[cols], new) if len(f)], ignore_index=True) if len(kept) else new
    _write(store, table, frame, "overwrite")


def append_rows(store: Any, table: str, rows: pd.DataFrame) -> None:
    """Append `rows` (the table's columns, in its order) to `table`."""
    if rows.empty:
        return
    cols = _columns(store, table, rows)
    if not on_lake(store):
        duck = store.duck
        duck.register("_mm_rows", rows)
        try:
            names = ", ".join(f'"{c}"' for c in cols)
            duck.execute(f'INSERT INTO "{table}" ({names}) SELECT {names} FROM _mm_rows')
        finally:
            duck.unregister("_mm_rows")
        return
    _write(store, table, rows[cols], "append")


def _columns(store: Any, table: str, rows: pd.DataFrame) -> list[str]:
    # The stored table's columns when there is one (a rebuilt table may be wider than the schema).
    stored = list(store.table(table).columns) if store.has_table(table) else list(TABLES.get(table, rows.columns))
    return [c for c in stored if c in rows.columns]


def _write(store: Any, table: str, frame: pd.DataFrame, mode: str) -> None:
    """Write to the lake in the types the table has (or the schema's), so old and new files read as one."""
    from pyspark.sql.types import StructType

    from micromoments.store.lake import spark_ddl

    if store.has_table(table) and store.count(table):
        current = store.view(table).schema
    else:
        current = StructType.fromDDL(spark_ddl({c: t for c, t in TABLES.get(table, {}).items()}))
    fields = {f.name: f for f in current.fields}
    if not all(c in fields for c in frame.columns):  # a column the table lacks: let Spark infer the frame
        store.write_table(table, store.to_spark(frame), mode=mode)
        return
    schema = StructType([fields[c] for c in frame.columns])
    # None, not NaN, for missing values: Spark's schema check refuses a NaN in a string column.
    data = frame.astype(object).where(frame.notna(), None)
    store.write_table(table, store.spark.createDataFrame(data, schema=schema), mode=mode)
