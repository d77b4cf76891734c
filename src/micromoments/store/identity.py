"""Identity stitching: every anonymous and known id that met is one person.

Links come from identify calls, alias calls and any event carrying both ids. The
connected components of that graph are people; a component's `person_id` is its
smallest user id, or its smallest anonymous id when nobody logged in.

>>> resolve_people([("anon-1", "u-1"), ("anon-2", "u-1"), ("anon-3", "anon-3")], {"u-1"})
{'anon-1': 'u-1', 'u-1': 'u-1', 'anon-2': 'u-1', 'anon-3': 'anon-3'}
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pyarrow as pa


def resolve_people(links: Iterable[tuple[str, str]], user_ids: set[str]) -> dict[str, str]:
    """Union-find over id pairs; returns {id: person_id} for every id in `links`."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def better(a: str, b: str) -> bool:
        # A user id beats an anonymous id; then the smaller string wins (deterministic).
        return (a not in user_ids, a) < (b not in user_ids, b)

    for a, b in links:
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        ra, rb = find(a), find(b)
        if ra != rb:
            if better(ra, rb):
                parent[rb] = ra
            else:
                parent[ra] = rb
    return {x: find(x) for x in parent}


class PeopleSoFar:
    """Union-find kept across the chunks of one ingest, so events are stored with the
    person they belong to as far as the links seen so far say.

    `rebuild_identities` still recomputes everything at the end; this only makes the
    re-keying UPDATE it runs small (an UPDATE of millions of rows was the ingest's
    biggest memory peak, as DuckDB keeps updated values in memory until a checkpoint).

    >>> people = PeopleSoFar([("anon-1", "u-1")])
    >>> people.add([("anon-2", "u-1")])
    >>> people.person_of(["anon-2", "anon-9"])
    {'anon-2': 'u-1'}
    """

    def __init__(self, links: Iterable[tuple[str, str]] = ()):
        self.parent: dict[str, str] = {}
        self.users: set[str] = set()
        self.add(links)

    def _find(self, x: str) -> str:
        parent = self.parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def add(self, links: Iterable[tuple[str, str]]) -> None:
        links = list(links)
        self.users.update(b for _, b in links)  # the right-hand side of every link is a user id
        for a, b in links:
            self.parent.setdefault(a, a)
            self.parent.setdefault(b, b)
            ra, rb = self._find(a), self._find(b)
            if ra != rb:
                if (ra not in self.users, ra) < (rb not in self.users, rb):
                    self.parent[rb] = ra
                else:
                    self.parent[ra] = rb

    def person_of(self, ids: Iterable[str]) -> dict[str, str]:
        """{id: person} for the given ids that belong to someone else (others are their own)."""
        out = {}
        for i in ids:
            if i in self.parent:
                root = self._find(i)
                if root != i:
                    out[i] = root
        return out


Link = tuple[str, str, str]  # (a, b, via): b is a user id; via is identify / alias / event


def links_in(con: duckdb.DuckDBPyConnection, table: str) -> list[Link]:
    """The distinct id links among the valid rows (`_reason IS NULL`) of a staged `table` with
    `anonymous_id`, `user_id`, `previous_id` and `type`: a few per person, not per event.

    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE t AS SELECT * FROM (VALUES ('a1', 'u1', NULL, 'identify', NULL), "
    ...                 "('a1', 'u1', NULL, 'track', NULL), (NULL, 'u2', 'u1', 'alias', NULL), "
    ...                 "('a9', 'u9', NULL, 'track', 'bad')) v(anonymous_id, user_id, previous_id, type, _reason)")
    >>> sorted(links_in(con, "t"))
    [('a1', 'u1', 'event'), ('a1', 'u1', 'identify'), ('u1', 'u2', 'alias')]
    """
    return con.execute(
        f"""SELECT DISTINCT anonymous_id, user_id, CASE WHEN type = 'identify' THEN 'identify' ELSE 'event' END
           FROM {table} WHERE _reason IS NULL AND anonymous_id IS NOT NULL AND user_id IS NOT NULL
             AND anonymous_id <> user_id
           UNION ALL
           SELECT DISTINCT previous_id, user_id, 'alias'
           FROM {table} WHERE _reason IS NULL AND type = 'alias' AND previous_id <> user_id""").fetchall()


def record_links(con: duckdb.DuckDBPyConnection, links: list[Link]) -> None:
    """Append `links` (see `links_in`) to `identity_links`, on the caller's transaction."""
    if not links:
        return
    a, b, via = zip(*links)
    con.register("_links", pa.table({"a": a, "b": b, "via": via}))
    try:
        con.execute("INSERT INTO identity_links SELECT a, b, via FROM _links")
    finally:
        con.unregister("_links")


def rebuild_identities(con: duckdb.DuckDBPyConnection) -> int:
    """Recompute `identities` from `identity_links`, then re-key `events`; returns rows re-keyed."""
    con.execute("CREATE OR REPLACE TABLE identity_links AS "
                "SELECT a, b, min(via) AS via FROM identity_links GROUP BY a, b")
    links = con.execute("SELECT a, b FROM identity_links").fetchall()
    users = {b for _, b in links}  # the right-hand side of every link is a user id
    people = resolve_people(links, users)
    ids = list(people)
    table = pa.table({
        "id": pa.array(ids, pa.string()),
        "id_type": pa.array(["user" if i in users else "anonymous" for i in ids], pa.string()),
        "person_id": pa.array([people[i] for i in ids], pa.string()),
    })
    con.register("_identities_new", table)
    try:
        con.execute("DELETE FROM identities")
        con.execute("INSERT INTO identities SELECT id, id_type, person_id FROM _identities_new")
    finally:
        con.unregister("_identities_new")
    changed = con.execute(
        """UPDATE events SET person_id = i.person_id
           FROM identities i
           WHERE i.id = coalesce(events.user_id, events.anonymous_id)
             AND events.person_id IS DISTINCT FROM i.person_id"""
    ).fetchone()
    return int(changed[0]) if changed else 0
