"""Map JSON documents to the mapped columns of `events/sql.py`, in one DuckDB pass.

A format is a dict from mapped column to a `Pick`: JSON paths tried in order, and the
kind of value expected there. The generated SQL parses each document once
(`json_extract` with a list of paths), checks types and coalesces the paths.

>>> spec = {"user_id": Pick("id", "$.userId")}
>>> "json_extract" in mapping_sql(spec, "src")
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from micromoments.events.sql import MAPPED_COLUMNS, epoch_or_iso_sql, typed_null

KINDS = ("string", "id", "number", "object", "time", "sql")
_TEMPLATE_PATH = re.compile(r"\{(\$[^{}]*)\}")


@dataclass(frozen=True)
class Pick:
    """Where a mapped column comes from: `kind` and JSON paths tried in order.

    kind `sql` takes a SQL template (in `paths[0]`) in which `{$.a.b}` stands for the
    parsed JSON value at that path, for what paths alone cannot say (GA4's event_params).
    """

    kind: str
    paths: tuple[str, ...]

    def __init__(self, kind: str, *paths: str):
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "paths", tuple(paths))


def _display(path: str) -> str:
    return path.removeprefix("$.")


def mapping_sql(spec: dict[str, Pick], source_relation: str, *, extra_select: str = "") -> str:
    """SELECT over `source_relation(line_no, raw, j)` producing MAPPED_COLUMNS.

    `j` is the JSON text of one event; `raw` is what the quarantine keeps.
    """
    paths: list[str] = []
    for pick in spec.values():
        wanted = _TEMPLATE_PATH.findall(pick.paths[0]) if pick.kind == "sql" else pick.paths
        for p in wanted:
            if p not in paths:
                paths.append(p)
    index = {p: i + 1 for i, p in enumerate(paths)}  # DuckDB lists are 1-based
    path_list = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"

    def val(p: str) -> str:
        return f"v[{index[p]}]"

    exprs: dict[str, str] = {}
    checks: list[str] = []
    for column, pick in spec.items():
        vs = [val(p) for p in pick.paths] if pick.kind != "sql" else []
        if pick.kind in ("string", "id"):
            exprs[column] = "coalesce(" + ", ".join(f"{v}->>'$'" for v in vs) + ", NULL)"
            for p, v in zip(pick.paths, vs):
                checks.append(
                    f"WHEN json_type({v}) IN ('OBJECT', 'ARRAY') THEN "
                    f"'{_display(p)}: expected a string, got ' || lower(json_type({v}))"
                )
        elif pick.kind == "number":
            exprs[column] = "coalesce(" + ", ".join(f"TRY_CAST({v}->>'$' AS DOUBLE)" for v in vs) + ", NULL)"
            for p, v in zip(pick.paths, vs):
                checks.append(
                    f"WHEN {v} IS NOT NULL AND json_type({v}) <> 'NULL' AND TRY_CAST({v}->>'$' AS DOUBLE) IS NULL "
                    f"THEN '{_display(p)}: expected a number, got ' || left({v}::VARCHAR, 40)"
                )
        elif pick.kind == "object":
            exprs[column] = "coalesce(" + ", ".join(f"{v}::VARCHAR" for v in vs) + ", NULL)"
            for p, v in zip(pick.paths, vs):
                checks.append(
                    f"WHEN {v} IS NOT NULL AND json_type({v}) NOT IN ('OBJECT', 'NULL') "
                    f"THEN '{_display(p)}: expected an object, got ' || lower(json_type({v}))"
                )
        elif pick.kind == "time":
            parsed = [epoch_or_iso_sql(f"({v}->>'$')") for v in vs]
            exprs[column] = "coalesce(" + ", ".join(parsed) + ", NULL)"
        else:  # sql
            exprs[column] = _TEMPLATE_PATH.sub(lambda m: val(m.group(1)), pick.paths[0])

    type_error = "CASE " + " ".join(checks) + " END" if checks else "NULL"
    select = ",\n      ".join(f"{expr} AS {col}" for col, expr in exprs.items())
    missing = [c for c in MAPPED_COLUMNS if c not in exprs and c not in ("line_no", "raw", "type_error")]
    nulls = ",\n      ".join(f"{typed_null(c)} AS {c}" for c in missing)
    return f"""
    SELECT line_no, raw, {type_error} AS type_error,
      {select}{("," + chr(10) + "      " + nulls) if nulls else ""}{extra_select}
    FROM (SELECT line_no, raw, j, json_extract(j, {path_list}) AS v FROM {source_relation})
    """
