"""Keys for rows without an id: their content, plus their occurrence among identical rows of the file.

A row without a message id is keyed `h:<md5 of its text>` when it is mapped. Identical rows of one
file are real repeats (a customer buying the same thing twice on one day, in a transaction log
with dates and no order id), so the second becomes `h:<md5>#2`, the third `h:<md5>#3`, ...,
numbered in file order across the file's chunks. Re-ingesting the file gives the same keys, so it
adds nothing; the first occurrence keeps the plain `h:<md5>` that stores written before had.

>>> import duckdb
>>> con = duckdb.connect()
>>> _ = con.execute("CREATE TABLE t AS SELECT * FROM (VALUES (1, 'h:a', NULL), (2, 'h:a', NULL), "
...                 "(3, 'm1', NULL), (4, 'h:b', NULL)) v(line_no, message_id, _reason)")
>>> keys = OccurrenceKeys(con, "main")
>>> keys.number(con, "t") is not None
True
>>> con.execute("SELECT message_id FROM t ORDER BY line_no").fetchall()
[('h:a',), ('h:a#2',), ('m1',), ('h:b',)]
>>> _ = con.execute("CREATE TABLE t2 AS SELECT * FROM (VALUES (5, 'h:a', NULL)) v(line_no, message_id, _reason)")
>>> _ = keys.number(con, "t2"); con.execute("SELECT message_id FROM t2").fetchall()
[('h:a#3',)]
>>> keys.content_keyed, keys.repeats_kept
(4, 2)
"""

from __future__ import annotations

import itertools
from typing import Any

__all__ = ["CONTENT_PREFIX", "OccurrenceKeys"]

CONTENT_PREFIX = "h:"  # what the readers put before the md5 of a row that has no id
_names = itertools.count(1)


class OccurrenceKeys:
    """Numbers the repeats of content keys over one file's chunks (see the module doc).

    Keeps one row per (content key, chunk) in a table under `schema`: a later chunk's identical
    row continues the count. Only content-keyed rows are looked at; rows with ids cost nothing.
    """

    def __init__(self, con: Any, schema: str):
        n = next(_names)
        self.seen = f"{schema}._mm_keys_seen_{n}"  # (message_id, n): content keys of earlier chunks
        self.counts = f"{schema}._mm_keys_counts_{n}"
        self.changes = f"{schema}._mm_keys_changes_{n}"
        con.execute(f"CREATE TABLE {self.seen} (message_id VARCHAR, n BIGINT)")
        self.content_keyed = 0  # valid rows keyed by their content
        self.repeats_kept = 0   # of those, identical to an earlier row of the file (numbered #2, #3, ...)

    def number(self, con: Any, table: str) -> str | None:
        """Give the repeated content keys of `table` (columns line_no, message_id, _reason; valid
        rows only, in line order) their occurrence numbers, in place.

        Returns the table of changed rows `(line_no, message_id)` (None when nothing changed), for
        a caller that maps the rows again and must use the new keys.
        """
        valid = f"_reason IS NULL AND starts_with(message_id, '{CONTENT_PREFIX}')"
        con.execute(f"CREATE OR REPLACE TABLE {self.counts} AS "
                    f"SELECT message_id, count(*) AS c FROM {table} WHERE {valid} GROUP BY message_id")
        keyed = con.execute(f"SELECT coalesce(sum(c), 0) FROM {self.counts}").fetchone()[0]
        if not keyed:
            return None
        self.content_keyed += int(keyed)
        # Keys seen twice in this chunk, or in an earlier one: their rows get numbers.
        con.execute(f"""
            CREATE OR REPLACE TABLE {self.changes} AS
            WITH before AS (
                SELECT message_id, sum(n) AS b FROM {self.seen}
                WHERE message_id IN (SELECT message_id FROM {self.counts}) GROUP BY message_id),
            todo AS (
                SELECT c.message_id, coalesce(b.b, 0) AS b FROM {self.counts} c LEFT JOIN before b USING (message_id)
                WHERE c.c > 1 OR b.b IS NOT NULL),
            ranked AS (
                SELECT t.rowid AS r, t.line_no, t.message_id,
                       todo.b + row_number() OVER (PARTITION BY t.message_id ORDER BY t.line_no, t.rowid) AS k
                FROM {table} t JOIN todo USING (message_id) WHERE t._reason IS NULL)
            SELECT r, line_no, message_id || '#' || k AS message_id FROM ranked WHERE k > 1""")
        con.execute(f"INSERT INTO {self.seen} SELECT message_id, c FROM {self.counts}")
        changed = int(con.execute(f"SELECT count(*) FROM {self.changes}").fetchone()[0])
        if not changed:
            return None
        self.repeats_kept += changed
        con.execute(f"UPDATE {table} AS t SET message_id = c.message_id FROM {self.changes} c WHERE t.rowid = c.r")
        return self.changes

    def close(self, con: Any) -> None:
        """Drop the tables (the caller's scratch schema may outlive the file)."""
        for name in (self.seen, self.counts, self.changes):
            con.execute(f"DROP TABLE IF EXISTS {name}")
