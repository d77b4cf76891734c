"""Declared data: survey, interview and CRM answers from CSV, keyed by user id or email.

Every answer becomes one row of `survey_answers` (person, field, value). Emails are
normalised (trimmed, lower-cased) and hashed with SHA-256 and a salt from `micromoments.toml`
(`[personas] email_salt`); the raw address is stored only when `store_raw_email = true`.
People are matched by user id (through `identities`) or by the hash of the email in their
profile traits, computed on the fly, so raw emails from the store are never written either.

Bad rows (missing or malformed key, wrong number of cells) go to `quarantine` with the line
and the reason (emails in the raw text are replaced by their hash), or raise `InputError`
with `on_bad="error"`.

>>> hash_email(" Ann@Example.org ", "s") == hash_email("ann@example.org", "s")
True
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from micromoments.errors import ConfigError, InputError
from micromoments.store.rows import append_rows, replace_rows

EMAIL_RE = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
ANY_EMAIL_RE = re.compile(r"[^@\s,;\"']+@[^@\s,;\"']+\.[^@\s,;\"']+")
KEYS = ("user_id", "email")
MAX_VALUE_CHARS = 2000


def normalise_email(email: str) -> str:
    return email.strip().lower()


def hash_email(email: str, salt: str) -> str:
    """Salted SHA-256 of the normalised email, as hex.

    >>> len(hash_email("a@b.co", "salt")), hash_email("a@b.co", "x") != hash_email("a@b.co", "y")
    (64, True)
    """
    if not salt:
        raise ConfigError("no salt to hash emails with", where="[personas] email_salt",
                          hint="set email_salt in micromoments.toml to a long random string and keep it secret")
    return hashlib.sha256(f"{salt}:{normalise_email(email)}".encode()).hexdigest()


@dataclass
class SurveyImportResult:
    rows: int
    imported_rows: int
    answers: int
    quarantined: int
    matched_people: int
    unmatched_keys: int

    def summary(self) -> str:
        return (f"{self.imported_rows:,} of {self.rows:,} rows imported ({self.answers:,} answers), "
                f"{self.quarantined:,} quarantined; {self.matched_people:,} people matched, "
                f"{self.unmatched_keys:,} keys not seen in the events yet")


def _redact(text: str, salt: str) -> str:
    return ANY_EMAIL_RE.sub(lambda m: f"sha256:{hash_email(m.group(0), salt)[:16]}", text) if salt else \
        ANY_EMAIL_RE.sub("<email>", text)


def _person_lookup(store: Any, key: str, salt: str) -> dict[str, str]:
    """user id -> person_id, or email hash -> person_id (hashing the emails in profile traits).
    Ibis, so it runs on either engine; the traits JSON is read here, not by the engine."""
    ev = store.table("events")
    if key == "user_id":
        ids = store.table("identities")
        rows = store.ibis.execute(ids.filter(ids.id_type == "user").select(a=ids.id, b=ids.person_id))
        seen = ev.filter(ev.user_id.notnull()).select(a=ev.user_id, b=ev.person_id).distinct()
        rows = pd.concat([rows, store.ibis.execute(seen)], ignore_index=True)
        return {str(a): str(b) for a, b in zip(rows.a, rows.b) if _given(a) and _given(b)}
    found = ev.filter(ev.traits.notnull() & ev.traits.contains("email") & ev.person_id.notnull())
    rows = store.ibis.execute(found.select("person_id", "traits").distinct().order_by(["person_id", "traits"]))
    out: dict[str, str] = {}
    for person, traits in zip(rows.person_id, rows.traits):
        email = _email_in(traits)
        if email and EMAIL_RE.match(email.strip()):
            out.setdefault(hash_email(email, salt), person)
    return out


def _given(value: Any) -> bool:
    return value is not None and value == value  # not None, not NaN


def _email_in(traits: str) -> str | None:
    """The `email` of a traits JSON object as text (what json_extract_string gives), else None."""
    try:
        value = json.loads(traits).get("email")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) or value is None else json.dumps(value)


def import_survey(store: Any, path: str | Path, *, key: Literal["user_id", "email"] = "user_id",
                  config: Any | None = None, salt: str | None = None, store_raw_email: bool | None = None,
                  on_bad: Literal["quarantine", "error"] = "quarantine") -> SurveyImportResult:
    """Import a survey/CRM CSV into `survey_answers`; returns counts.

    >>> # import_survey(store, "survey.csv", key="email", config=load_config())
    """
    path = Path(path)
    pcfg = getattr(config, "personas", None)
    salt = salt if salt is not None else str(getattr(pcfg, "email_salt", "") or "")
    keep_raw = store_raw_email if store_raw_email is not None else bool(getattr(pcfg, "store_raw_email", False))
    if key not in KEYS:
        raise InputError(f"unknown key '{key}'", where="--key", hint="use user_id or email")
    if key == "email" and not salt:
        hash_email("x@y.z", salt)  # raises the ConfigError that says how to set the salt
    if not path.exists():
        raise InputError("file not found", where=str(path), hint="check the path")
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InputError("the file is empty", where=str(path), hint="the first line must be a header") from None
    if key not in header:
        raise InputError(f"no '{key}' column in the header", where=f"{path}:1",
                         hint=f"columns found: {', '.join(header)}; pass --key user_id or --key email")
    if len(set(header)) != len(header) or any(not h for h in header):
        raise InputError("the header has empty or repeated column names", where=f"{path}:1")
    k_idx = header.index(key)
    lookup = _person_lookup(store, key, salt)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    answers: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    n_rows = imported = 0
    matched: set[str] = set()
    unmatched = 0
    raw_lines = text.splitlines()
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        n_rows += 1
        reason, field = None, key
        k = cells[k_idx].strip() if len(cells) > k_idx else ""
        if len(cells) != len(header):
            reason, field = f"{len(cells)} cells, the header has {len(header)}", ""
        elif not k:
            reason = f"empty {key}"
        elif key == "email" and not EMAIL_RE.match(k):
            reason = "not an email address"
        elif any(len(c) > MAX_VALUE_CHARS for c in cells):
            reason, field = f"a value is longer than {MAX_VALUE_CHARS} characters", ""
        if reason:
            raw = raw_lines[line - 1] if 0 < line <= len(raw_lines) else ",".join(cells)
            if on_bad == "error":
                raise InputError(f"{reason}{f' (field {field})' if field else ''}", where=f"{path}:{line}",
                                 hint="fix the row or import with quarantine")
            bad.append({"source": str(path), "line": line, "field": field, "reason": reason,
                        "raw": _redact(raw, salt), "quarantined_at": now})
            continue
        imported += 1
        ident = {"user_id": None, "email_hash": None, "email": None}
        if key == "email":
            ident["email_hash"] = hash_email(k, salt)
            ident["email"] = normalise_email(k) if keep_raw else None
            person = lookup.get(ident["email_hash"])
        else:
            ident["user_id"] = k
            person = lookup.get(k)
        if person:
            matched.add(person)
        else:
            unmatched += 1
        for col, value in zip(header, cells):
            if col == key or not value.strip():
                continue
            if key != "email" and col.lower() in ("email", "e-mail", "email_address"):
                # An email column next to a user id is hashed too: never stored raw unless configured.
                if not salt:
                    continue
                value = hash_email(value, salt) if not keep_raw else normalise_email(value)
                col = "email_hash" if not keep_raw else col
            answers.append({"person_id": person, **ident, "field": col, "value": value.strip(),
                            "source": str(path), "line": line, "imported_at": now})
    if answers:  # a re-import of the same file replaces its answers
        replace_rows(store, "survey_answers", pd.DataFrame(answers), "source", [str(path)])
    if bad:
        append_rows(store, "quarantine", pd.DataFrame(bad))
    return SurveyImportResult(n_rows, imported, len(answers), len(bad), len(matched), unmatched)


def declared_features(store: Any) -> pd.DataFrame:
    """Survey answers per person, one column per field (`survey_<field>`), the latest import winning.

    >>> # declared_features(store).columns -> ['person_id', 'survey_goal', 'survey_age_band', ...]
    """
    frame = store.duck.execute(
        "SELECT person_id, field, arg_max(value, imported_at) AS value FROM survey_answers "
        "WHERE person_id IS NOT NULL AND field <> 'email_hash' GROUP BY person_id, field").df()
    if frame.empty:
        return pd.DataFrame({"person_id": pd.Series(dtype="string")})
    wide = frame.pivot(index="person_id", columns="field", values="value")
    wide.columns = [f"survey_{re.sub(r'[^a-z0-9]+', '_', str(c).lower()).strip('_')}" for c in wide.columns]
    return wide.reset_index()
