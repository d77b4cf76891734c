"""DuckDB settings changed for a block of work and restored after it (ingest, journey builds).

>>> import duckdb
>>> con = duckdb.connect()
>>> before = con.execute("SELECT current_setting('threads')").fetchone()[0]
>>> with duckdb_settings(con, memory_limit="1GB", threads=1):
...     con.execute("SELECT current_setting('threads')").fetchone()[0]
1
>>> con.execute("SELECT current_setting('threads')").fetchone()[0] == before
True
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from micromoments.events.sql import sql_literal

__all__ = ["duckdb_settings", "unrounded"]


@contextmanager
def duckdb_settings(con: Any, **values: Any) -> Iterator[None]:
    """Set DuckDB settings on `con` (a duckdb connection) for the block; None leaves one as it is.

    The previous values come back afterwards, also on error; a size comes back as `unrounded`
    gives it, so restoring a limit does not shrink it run after run.
    """
    previous: dict[str, str] = {}
    try:
        for name, value in values.items():
            if value is None:
                continue
            previous[name] = con.execute(f"SELECT current_setting({sql_literal(name)})").fetchone()[0]
            con.execute(f"SET {name} = {sql_literal(str(value))}")
        yield
    finally:
        for name, value in previous.items():
            con.execute(f"SET {name} = {sql_literal(unrounded(str(value)))}")


def unrounded(setting: str) -> str:
    """A size as DuckDB shows it ('2.7 GiB', cut to one decimal) -> the middle of what it
    stands for ('2.75GiB'); anything else unchanged.

    >>> unrounded("2.7 GiB"), unrounded("8"), unrounded("fsst")
    ('2.75GiB', '8', 'fsst')
    """
    match = re.fullmatch(r"(\d+)\.(\d) ?([KMGTP]i?B)", setting.strip())
    return f"{match.group(1)}.{match.group(2)}5{match.group(3)}" if match else setting
