"""The analytics store: a DuckDB file reached through Ibis.

>>> store = Store(":memory:")
>>> store.count("events")
0
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ibis

from micromoments.errors import StoreError
from micromoments.store.schema import TABLES, create_table_sql

__all__ = ["Store", "engine_of", "open_configured", "open_store"]


class Store:
    """One DuckDB database file plus the Ibis connection over it.

    `ibis` is the Ibis backend: analytics build expressions on `store.table(name)`.
    `duck` is the raw DuckDB connection, for bulk loading at the edges.
    """

    def __init__(self, path: str | Path = "micromoments.duckdb", *, read_only: bool = False):
        self.path = str(path)
        try:
            self.ibis = ibis.duckdb.connect(self.path, read_only=read_only)
        except Exception as exc:  # duckdb raises IOException for a locked or corrupt file
            raise StoreError(f"cannot open the store: {exc}", where=self.path,
                             hint="is another micromoments process holding it open?") from exc
        self.duck: Any = self.ibis.con
        self.duck.execute("SET TimeZone = 'UTC'")
        if not read_only:
            self.ensure_schema()

    def ensure_schema(self) -> None:
        for name, columns in TABLES.items():
            self.duck.execute(create_table_sql(name, columns))

    def has_table(self, name: str) -> bool:
        return name in self.ibis.list_tables()

    def table(self, name: str) -> ibis.Table:
        if not self.has_table(name):
            raise StoreError(f"table '{name}' does not exist", where=self.path,
                             hint="run `micromoments ingest` (or the step that builds it) first")
        return self.ibis.table(name)

    def count(self, name: str) -> int:
        return int(self.duck.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])

    def close(self) -> None:
        self.duck.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(path: str | Path | None = None, *, read_only: bool = False) -> Store:
    """Open the existing store at `path`, or the one named in `micromoments.toml`.

    For commands that read: a missing file is an error naming the path (DuckDB would create an
    empty store there and the command would print empty tables). `ingest` and `demo` create stores.

    >>> open_store("/nonexistent/m.duckdb")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    micromoments.errors.StoreError: /nonexistent/m.duckdb: no store at this path (ingest events first ...)
    """
    if path is None:
        from micromoments.config import load_config

        path = load_config().store.path
    if str(path) != ":memory:" and not Path(path).exists():
        raise StoreError("no store at this path", where=str(path),
                         hint=f"ingest events first (micromoments ingest FILE --db {path}), "
                              "or name the store with --db or [store] path in micromoments.toml")
    return Store(path, read_only=read_only)


def open_configured(config: Any, db: str | Path | None = None, *, read_only: bool = False,
                    create: bool = False) -> Any:
    """The store of `config`'s engine: a DuckDB `Store` (`[store] path`, or `db`), or with
    engine = "spark" a `LakeStore` over `[store] lake` (or `db`) on the `[spark]` session.

    Commands that read need an existing store (`open_store`'s error); `create=True` (ingest) makes one.

    >>> from micromoments.config import Config
    >>> open_configured(Config(), ":memory:").count("events")
    0
    """
    if config.store.engine == "spark":
        from micromoments.store.lake import LakeStore, prepare_lake
        from micromoments.store.spark_session import get_spark

        prepare_lake(str(db) if db else config.store.lake, create=create and not read_only)
        return LakeStore(str(db) if db else config.store.lake, get_spark(config.spark), read_only=read_only,
                         create=create)
    if create:
        return Store(db or config.store.path, read_only=read_only)
    return open_store(db or config.store.path, read_only=read_only)


def engine_of(store: Any) -> str:
    """"duckdb" or "spark": which engine a store object runs on."""
    return getattr(store, "engine", "duckdb")
