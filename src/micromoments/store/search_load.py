"""Load search exports into `search_rows`; bad rows go to `quarantine` with their reason.

Each file (each CSV of a zip) is one transaction. Loading a file again replaces its rows (they are
keyed by a hash of the file), so several files merge and a repeated one never counts twice.

>>> import duckdb, tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "Queries.csv"
>>> _ = p.write_text("Top queries,Clicks,Impressions,CTR,Position\\nlay turf,1,10,10%,2\\n,1,5,20%,3\\n")
>>> con = duckdb.connect()
>>> load_search_files(con, [p]).summary()
'1 loaded, 1 quarantined from 1 table'
>>> con.execute("SELECT line, field, reason FROM quarantine").fetchall()
[(3, 'Top queries', 'is empty')]
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from micromoments.sources.search import SRC_VIEW, search_parts
from micromoments.store.schema import QUARANTINE_COLUMNS, SEARCH_ROWS_COLUMNS, create_table_sql

STAGED = "_mm_search_staged"
_QUOTED = re.compile(r"'[^']*'")


@dataclass
class TableLoad:
    """What one table of an export did: rows kept and quarantined, rows of an earlier load replaced."""

    source: str
    kind: str
    grain: str
    loaded: int
    quarantined: int
    replaced: int


@dataclass
class SearchLoad:
    """Every table loaded, and the quarantine reasons counted by kind."""

    tables: list[TableLoad] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def loaded(self) -> int:
        return sum(t.loaded for t in self.tables)

    @property
    def quarantined(self) -> int:
        return sum(t.quarantined for t in self.tables)

    def summary(self) -> str:
        n = len(self.tables)
        return f"{self.loaded:,} loaded, {self.quarantined:,} quarantined from {n} table{'s' if n != 1 else ''}"


def ensure_search_tables(con: Any) -> None:
    """Create `search_rows` (and `quarantine`, outside a store) if they are missing."""
    con.execute(create_table_sql("search_rows", SEARCH_ROWS_COLUMNS))
    con.execute(create_table_sql("quarantine", QUARANTINE_COLUMNS))


def load_search_files(con: Any, paths: Sequence[str | Path], *, fmt: str = "auto") -> SearchLoad:
    """Load every file into `search_rows` of the DuckDB connection `con` (a store's `duck`, or any).

    `fmt` is `auto` (told from each header), `gsc-ui`, `gsc-bulk` or `bing`. Raises `InputError` for a
    file that is no search export at all; a bad row never stops the load.
    """
    ensure_search_tables(con)
    result = SearchLoad()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    columns = ", ".join(f'"{c}"' for c in SEARCH_ROWS_COLUMNS if c not in ("file_id", "source", "source_line"))
    for path in paths:
        for part in search_parts(con, path, fmt):
            con.execute(f"CREATE OR REPLACE TEMP TABLE {STAGED} AS {part.select}")
            con.execute("BEGIN TRANSACTION")
            try:
                replaced = con.execute("DELETE FROM search_rows WHERE file_id = ?", [part.file_id]).fetchone()[0]
                con.execute("DELETE FROM quarantine WHERE source = ?", [part.source])
                loaded = con.execute(
                    f"INSERT INTO search_rows SELECT ?, ?, _line, {columns} FROM {STAGED} WHERE _check IS NULL",
                    [part.file_id, part.source]).fetchone()[0]
                bad = con.execute(
                    f"INSERT INTO quarantine SELECT ?, b._line, split_part(b._check, chr(9), 1), "
                    f"split_part(b._check, chr(9), 2), {part.raw_sql}, ? "
                    f"FROM {STAGED} b JOIN {SRC_VIEW} s ON s._line = b._line WHERE b._check IS NOT NULL",
                    [part.source, now]).fetchone()[0]
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
            if bad:
                for check, n in con.execute(f"SELECT _check, count(*) FROM {STAGED} WHERE _check IS NOT NULL "
                                            "GROUP BY 1").fetchall():
                    key = _QUOTED.sub("…", check.replace("\t", ": ", 1))
                    result.reasons[key] = result.reasons.get(key, 0) + int(n)
            result.tables.append(TableLoad(part.source, part.kind, part.grain, int(loaded), int(bad), int(replaced)))
    con.execute(f"DROP TABLE IF EXISTS {STAGED}")
    con.execute(f"DROP VIEW IF EXISTS {SRC_VIEW}")
    return result
