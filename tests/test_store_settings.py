"""`store.settings.duckdb_settings`: settings for a block, restored after (also on error), sizes not shrinking."""

from __future__ import annotations

import duckdb
import pytest

from micromoments.store.settings import duckdb_settings


def setting(con: duckdb.DuckDBPyConnection, name: str) -> str:
    return con.execute(f"SELECT current_setting('{name}')").fetchone()[0]


def test_restored_after_the_block_and_after_an_error() -> None:
    con = duckdb.connect()
    con.execute("SET memory_limit = '2.75GiB'")
    before = {n: setting(con, n) for n in ("memory_limit", "threads")}
    with duckdb_settings(con, memory_limit="512MB", threads=1, preserve_insertion_order=None):
        assert setting(con, "threads") == 1 and setting(con, "memory_limit") != before["memory_limit"]
    with pytest.raises(RuntimeError), duckdb_settings(con, threads=1):
        raise RuntimeError("boom")
    assert {n: setting(con, n) for n in before} == before


def test_a_limit_shown_rounded_does_not_shrink_block_after_block() -> None:
    # DuckDB shows 2.75 GiB as '2.7 GiB'; restoring that text each time would lose 0.05 GiB a block.
    con = duckdb.connect()
    con.execute("SET memory_limit = '2.75GiB'")
    shown = setting(con, "memory_limit")
    for _ in range(20):
        with duckdb_settings(con, memory_limit="1GB"):
            pass
    assert setting(con, "memory_limit") == shown
