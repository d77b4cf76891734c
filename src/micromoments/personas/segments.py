"""Segments for activation: export personas and rule-based segments, and keep personas fresh.

**Rules** are conditions joined by `&`, relative to the latest event in the store (or `now`):

| condition               | people who…                                                   |
|-------------------------|---------------------------------------------------------------|
| `moment:buy<=7d`        | had a buy moment in the last 7 days (any moment type)         |
| `event:Product Added<=3d` | did that event in the last 3 days                           |
| `purchase<=30d`         | purchased in the last 30 days                                  |
| `!…`                    | negates any condition, e.g. `!purchase<=7d`                    |
| `persona=Deal hunters`  | belong to that persona (name or id)                            |
| `p_alive<0.3`, `clv>=100` | a `person_features` column compared with a number            |

A rule may be named: `abandoners=moment:buy<=7d & !purchase<=7d`.

**Incremental assignment:** `assign_incremental` recomputes features only for people with new
events (or no persona yet) and gives them the nearest centroid of the saved model, without
re-clustering anybody. `update_personas` re-clusters when the model is older than
`[personas] recluster_days`, and assigns incrementally otherwise (run it from cron).

>>> parse_rule("abandoners=moment:buy<=7d & !purchase<=7d").name
'abandoners'
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from micromoments.errors import InputError
from micromoments.store.rows import replace_rows

_WINDOW = re.compile(r"^(?P<neg>!?)\s*(?P<kind>moment|event|purchase)(?::(?P<value>[^<]+?))?\s*<=\s*(?P<n>\d+(?:\.\d+)?)(?P<unit>[dh])$")
_PERSONA = re.compile(r"^(?P<neg>!?)\s*persona\s*=\s*(?P<value>.+)$")
_COMPARE = re.compile(r"^(?P<neg>!?)\s*(?P<col>[a-z_][a-z0-9_]*)\s*(?P<op><=|>=|==|!=|<|>|=)\s*(?P<num>-?\d+(?:\.\d+)?)$")


@dataclass
class Condition:
    kind: str            # moment / event / purchase / persona / feature
    negate: bool = False
    value: str = ""
    seconds: float = 0.0
    op: str = ""
    number: float = 0.0


@dataclass
class Rule:
    name: str
    text: str
    conditions: list[Condition]


def parse_rule(text: str) -> Rule:
    """Parse `name=cond & cond ...` (the name is optional).

    >>> [c.kind for c in parse_rule("moment:buy<=7d & !purchase<=7d & clv>10").conditions]
    ['moment', 'purchase', 'feature']
    """
    raw = text.strip()
    name, body = "", raw
    head, sep, tail = raw.partition("=")
    if sep and re.fullmatch(r"[A-Za-z0-9_\- ]+", head.strip()) and not head.strip().startswith(("persona",)) \
            and not _COMPARE.match(raw) and head.strip() not in ("persona",):
        name, body = head.strip(), tail
    conds = []
    for part in [p.strip() for p in body.split("&")]:
        if not part:
            raise InputError("empty condition", where=f"rule '{raw}'", hint="join conditions with ' & '")
        if m := _WINDOW.match(part):
            secs = float(m["n"]) * (86400 if m["unit"] == "d" else 3600)
            conds.append(Condition(m["kind"], bool(m["neg"]), (m["value"] or "").strip(), secs))
        elif m := _PERSONA.match(part):
            conds.append(Condition("persona", bool(m["neg"]), m["value"].strip()))
        elif m := _COMPARE.match(part):
            op = "==" if m["op"] == "=" else m["op"]
            conds.append(Condition("feature", bool(m["neg"]), m["col"], op=op, number=float(m["num"])))
        else:
            raise InputError(f"cannot read condition '{part}'", where=f"rule '{raw}'",
                             hint="e.g. moment:buy<=7d, !purchase<=7d, persona=Deal hunters, p_alive<0.3")
    return Rule(name or re.sub(r"[^a-z0-9]+", "-", body.lower()).strip("-")[:60], raw, conds)


def _people_with(store: Any, cond: Condition, now_secs: ir.Value) -> ir.Table:
    from micromoments.journey.pipeline import load_events
    from micromoments.journey.vocab import EventVocabulary

    if cond.kind in ("moment", "event", "purchase"):
        ev, _ = load_events(store)
        ev = ev.filter(ev.person_id.notnull() & ev.ts.notnull())
        recent = ev.filter(ev.ts.epoch_seconds() >= now_secs - cond.seconds)
        if cond.kind == "moment":
            recent = recent.filter(recent.moment == cond.value) if cond.value else recent.filter(
                recent.moment.notnull() & (recent.moment != "other"))
        elif cond.kind == "event":
            recent = recent.filter(recent.event == cond.value)
        else:
            recent = recent.filter(EventVocabulary().is_conversion(recent))
        return recent.select("person_id").distinct()
    if cond.kind == "persona":
        p = store.table("personas")
        match = (p.persona == cond.value) | (p.persona_id.cast("string") == cond.value)
        return p.filter(match).select("person_id").distinct()
    f = store.table("person_features")
    if cond.value not in f.columns:
        raise InputError(f"no feature '{cond.value}'", where="rule",
                         hint="run `micromoments personas build`; columns: " + ", ".join(f.columns[:30]))
    col = f[cond.value]
    ops = {"<": col < cond.number, "<=": col <= cond.number, ">": col > cond.number, ">=": col >= cond.number,
           "==": col == cond.number, "!=": col != cond.number}
    return f.filter(ops[cond.op].fill_null(False)).select("person_id").distinct()


def segment_members(store: Any, rule: Rule | str, *, now: dt.datetime | None = None) -> pd.DataFrame:
    """The people matching `rule`, with their persona when personas are built.

    >>> # segment_members(store, "moment:buy<=7d & !purchase<=7d")
    """
    rule = parse_rule(rule) if isinstance(rule, str) else rule
    events = store.table("events")
    if now is None:
        now_secs = events.ts.max().epoch_seconds().as_scalar()
    else:
        now_secs = ibis.literal(int(now.replace(tzinfo=None).timestamp() if now.tzinfo else
                                    (now - dt.datetime(1970, 1, 1)).total_seconds()))
    people = events.filter(events.person_id.notnull()).select("person_id").distinct()
    for cond in rule.conditions:
        match = _people_with(store, cond, now_secs).rename(_m="person_id")
        if cond.negate:
            people = people.anti_join(match, people.person_id == match._m)
        else:
            people = people.semi_join(match, people.person_id == match._m)
    if store.has_table("personas") and store.count("personas"):
        p = store.table("personas").select(_pp="person_id", persona_id="persona_id", persona="persona")
        people = people.left_join(p, people.person_id == p._pp).drop("_pp")
    frame = store.ibis.execute(people.order_by("person_id"))
    frame.insert(0, "segment", rule.name)
    return frame


def export_frame(frame: pd.DataFrame, path: str | Path, fmt: str | None = None) -> Path:
    """Write CSV or Parquet (from `fmt` or the file extension)."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".") or "csv").lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        raise InputError(f"unknown format '{fmt}'", where="--format", hint="use csv or parquet")
    return path


def personas_frame(store: Any) -> pd.DataFrame:
    """Each person's persona with the persona's description and their value (for export)."""
    if not store.has_table("personas") or store.count("personas") == 0:
        raise InputError("no personas yet", where=store.path, hint="run `micromoments personas build` first")
    # Ibis, so it runs on either engine (a lake on Spark too).
    p = store.table("personas")
    f = store.table("person_features").select(_fp="person_id", p_alive="p_alive", clv="clv")
    d = store.table("persona_descriptions").select(_dp="persona_id", description="description")
    j = p.left_join(f, p.person_id == f._fp).left_join(d, p.persona_id == d._dp)
    cols = ["person_id", "persona_id", "persona", "method", "assigned_at", "p_alive", "clv", "description"]
    frame = store.ibis.execute(j.select(*cols).order_by("person_id"))
    if isinstance(frame["assigned_at"].dtype, pd.DatetimeTZDtype):  # Spark gives UTC; DuckDB naive UTC
        frame["assigned_at"] = frame["assigned_at"].dt.tz_convert("UTC").dt.tz_localize(None)
    return frame


def persona_lookup(store: Any) -> dict[str, str]:
    """person_id -> persona name of everyone who has one, for the live path to load (targeting by persona)."""
    t = store.table("personas")
    # Filtered in the query: a NULL comes back as NaN in a pandas string column, not as None.
    frame = store.ibis.execute(t.filter(t.persona.notnull()).select("person_id", "persona"))
    return dict(zip(frame.person_id, frame.persona))


def people_with_new_data(store: Any) -> list[str]:
    """The people with events received (or timed) after their persona was assigned, or with no persona."""
    e = store.table("events")
    e = e.filter(e.person_id.notnull())
    last = e.group_by("person_id").aggregate(_recv=e.received_at.max(), _ts=e.ts.max())
    p = store.table("personas").select(_pp="person_id", _at="assigned_at")
    j = last.left_join(p, last.person_id == p._pp)
    stale = j.filter(j._at.isnull() | (j._recv > j._at) | (j._ts > j._at)).select("person_id").distinct()
    return sorted(store.ibis.execute(stale).person_id)


def assign_incremental(store: Any, config: Any | None = None, *, person_ids: list[str] | None = None,
                       model_path: str | Path | None = None, stores_path: str | Path | None = None) -> pd.DataFrame:
    """Assign people with new data (or `person_ids`) to the nearest centroid of the saved model.

    Only their features are recomputed; nobody else moves. Returns their new rows of `personas`.
    """
    from micromoments.personas.build import compute_features, model_path_for
    from micromoments.personas.clustering import PersonaModel

    model = PersonaModel.load(model_path or model_path_for(store, config))
    if person_ids is None:
        person_ids = people_with_new_data(store)
    if not person_ids:
        return pd.DataFrame(columns=["person_id", "persona_id", "persona", "distance", "method"])
    feats = compute_features(store, config, stores_path=stores_path, person_ids=person_ids)
    labels = model.predict(feats)
    dist = model.distances(feats)[np.arange(len(feats)), labels]
    names = getattr(model, "names", {})
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = pd.DataFrame({"person_id": feats.person_id, "persona_id": labels.astype("int64"),
                         "persona": [names.get(int(k), f"persona {int(k) + 1}") for k in labels],
                         "distance": dist.astype("float64"), "method": "incremental",
                         "model_version": getattr(model, "version", ""), "assigned_at": now})
    replace_rows(store, "personas", rows, "person_id")
    return rows


def update_personas(store: Any, config: Any | None = None, *, stores_path: str | Path | None = None,
                    now: dt.datetime | None = None) -> tuple[str, int]:
    """The scheduled job: re-cluster everyone when the model is missing or older than
    `[personas] recluster_days`, else assign only people with new data. Returns (action, people)."""
    from micromoments.personas.build import build_personas, model_path_for
    from micromoments.personas.clustering import PersonaModel

    path = model_path_for(store, config)
    days = int(getattr(getattr(config, "personas", None), "recluster_days", 7))
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if path.exists():
        built = getattr(PersonaModel.load(path), "built_at", None)
        if built is not None and now - built < dt.timedelta(days=days):
            return "incremental", len(assign_incremental(store, config, stores_path=stores_path))
    result = build_personas(store, config, stores_path=stores_path)
    return "recluster", len(result.features)
