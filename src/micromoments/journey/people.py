"""Who counts as a person in a headline: ids (after stitching) that signed in at least once.

An anonymous id that never signed in is not linked to anyone yet, so it may be a device of someone
already counted: headlines count it apart ("anonymous ids not linked"). A data set with no user ids
at all counts every id as a person. One rule for the report, the app and the personas.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def _known_per_id(events: Any) -> Any:
    """One row per person_id with `_known`: it carried a user id at least once."""
    return events.group_by("person_id").aggregate(_known=events.user_id.notnull().any())


def split_people(ids: int, known: int) -> tuple[int, int]:
    """`(people, anonymous)` from the number of ids and of those that signed in.

    >>> split_people(10, 4), split_people(10, 0)
    ((4, 6), (10, 0))
    """
    return (known, ids - known) if known else (ids, 0)


def people_counts(events: Any, con: Any) -> tuple[int, int]:
    """`(people, anonymous)`: people (after stitching) who signed in at least once, and the ids
    that never did, so they are not linked to anyone yet. With no user ids at all (an anonymous
    data set) every id counts as a person and `anonymous` is 0.

    >>> import ibis
    >>> ev = ibis.memtable({"person_id": ["u1", "u1", "a2", "a3"], "user_id": ["u1", None, None, None]})
    >>> people_counts(ev, ibis.duckdb.connect())
    (1, 2)
    """
    per = _known_per_id(events)
    row = con.execute(per.aggregate(n=per.count(), known=per._known.cast("int64").sum()))
    return split_people(int(row.n[0]), int(row.known[0] or 0))


def counts_as_person(events: Any, con: Any) -> pd.Series:
    """person_id -> True when the id counts as a person (the rule of `people_counts`, per id), for
    counting people in any group (a persona, a segment).

    >>> import ibis
    >>> ev = ibis.memtable({"person_id": ["u1", "a2"], "user_id": ["u1", None]})
    >>> counts_as_person(ev, ibis.duckdb.connect()).to_dict()
    {'a2': False, 'u1': True}
    """
    per = con.execute(_known_per_id(events.filter(events.person_id.notnull())).order_by("person_id"))
    flags = per.set_index("person_id")._known.astype(bool)
    return flags if flags.any() else flags | True


def anonymous_note(anonymous: int) -> str:
    """What a people count leaves out, in plain words ("" when nothing is left out).

    >>> anonymous_note(1837)[:60]
    'People are customers who signed in at least once, all their '
    """
    if not anonymous:
        return ""
    return (f"People are customers who signed in at least once, all their devices linked; {anonymous:,} more "
            "anonymous ids were active but never signed in, so they are not linked to anyone yet.")
