"""The content catalog: items tagged by moment, stage, persona and channel, with Jinja2 templates.

A YAML catalog is a list under `items:`; a CSV catalog has one item per row, with list columns
separated by `|`. Empty tags match anything. Templates run in Jinja2's sandbox, so a catalog
edited by marketers cannot reach Python internals.

>>> cat = Catalog.from_yaml_text('''
... items:
...   - id: near-store
...     channels: [push]
...     moments: [go]
...     title: "Hi {{ first_name }}"
...     body: "{{ nearest_store.name }} is open until {{ nearest_store.weekday_close }}"
... ''', "catalog.yaml")
>>> item = cat.candidates(moment="go", channel="push")[0]
>>> cat.render(item, {"first_name": "Ana", "nearest_store": {"name": "Greenhaven Leeds",
...     "weekday_close": "20:00"}})["body"]
'Greenhaven Leeds is open until 20:00'
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from micromoments.activation.yamlfile import compose, model_error, node_at, read_text, where_of
from micromoments.errors import ConfigError

CHANNELS = ("push", "email", "webhook", "web", "app", "sms")
TEMPLATED = ("title", "subject", "body", "url", "image", "cta", "discount_code")


class ContentItem(BaseModel):
    """One piece of content. Tags (`moments`, `stages`, `personas`, `channels`) left empty match all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    channels: list[str] = Field(default_factory=list)
    moments: list[str] = Field(default_factory=list)
    stages: list[str] = Field(default_factory=list)
    personas: list[str] = Field(default_factory=list)
    title: str = ""
    subject: str = ""          # email subject (falls back to title)
    body: str = ""
    url: str = ""
    image: str = ""
    cta: str = ""
    discount_code: str = ""
    data: dict[str, Any] = Field(default_factory=dict)  # free fields passed through as-is

    def specificity(self, moment: str | None, stage: str | None, persona: str | None,
                    channel: str | None) -> int | None:
        """How many tags this item matched (None when one of them rules it out)."""
        score = 0
        for tags, value in ((self.moments, moment), (self.stages, stage), (self.personas, persona),
                            (self.channels, channel)):
            if tags:
                if value not in tags:
                    return None
                score += 1
        return score


class _CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[ContentItem]


# Not HTML-escaped on purpose: the content is plain text (text/plain email, push and webhook JSON,
# decide answers that micromoments.js puts in pages as text); see docs/security.md.
_ENV = SandboxedEnvironment(undefined=ChainableUndefined, autoescape=False, trim_blocks=True)


class Catalog:
    """Items by id, with their templates compiled once."""

    def __init__(self, items: list[ContentItem], source: str = "<catalog>",
                 lines: dict[str, str] | None = None):
        self.items = items
        self.source = source
        self.by_id: dict[str, ContentItem] = {}
        self._templates: dict[tuple[str, str], Any] = {}
        lines = lines or {}
        for item in items:
            where = lines.get(item.id, source)
            if item.id in self.by_id:
                raise ConfigError(f"duplicate content id '{item.id}'", where=where, hint="ids must be unique")
            for ch in item.channels:
                if ch not in CHANNELS:
                    raise ConfigError(f"item '{item.id}': unknown channel '{ch}'", where=where,
                                      hint=f"use one of {', '.join(CHANNELS)}")
            self.by_id[item.id] = item
            for name in TEMPLATED:
                text = getattr(item, name)
                if "{" in text:
                    try:
                        self._templates[(item.id, name)] = _ENV.from_string(text)
                    except TemplateSyntaxError as exc:
                        raise ConfigError(f"item '{item.id}' field '{name}': template error: {exc.message}",
                                          where=where, hint="check the {{ }} and {% %} pairs") from None

    def __len__(self) -> int:
        return len(self.items)

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def from_yaml_text(cls, text: str, path: str) -> Catalog:
        data, node = compose(text, path)
        try:
            parsed = _CatalogFile.model_validate(data)
        except ValidationError as exc:
            raise model_error(exc, path, node) from None
        lines = {it.id: where_of(path, node_at(node, ["items", i])) for i, it in enumerate(parsed.items)}
        return cls(parsed.items, path, lines)

    @classmethod
    def from_csv_text(cls, text: str, path: str) -> Catalog:
        items, lines = [], {}
        reader = csv.DictReader(io.StringIO(text))
        for row_no, row in enumerate(reader, start=2):
            clean: dict[str, Any] = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            for key in ("channels", "moments", "stages", "personas"):
                clean[key] = [x.strip() for x in clean.get(key, "").split("|") if x.strip()]
            try:
                item = ContentItem.model_validate(clean)
            except ValidationError as exc:
                err = exc.errors()[0]
                raise ConfigError(f"column '{err['loc'][0] if err['loc'] else '?'}': {err['msg']}",
                                  where=f"{path}:{row_no}", hint="fix this row") from None
            items.append(item)
            lines[item.id] = f"{path}:{row_no}"
        return cls(items, path, lines)

    @classmethod
    def load(cls, path: str | Path) -> Catalog:
        """A catalog from a `.yaml`/`.yml` or `.csv` file."""
        text = read_text(path)
        if str(path).lower().endswith(".csv"):
            return cls.from_csv_text(text, str(path))
        return cls.from_yaml_text(text, str(path))

    # -- choosing and rendering ------------------------------------------------------------------
    def candidates(self, *, moment: str | None = None, stage: str | None = None,
                   persona: str | None = None, channel: str | None = None,
                   ids: list[str] | None = None) -> list[ContentItem]:
        """The best-matching items (all with the highest specificity), from `ids` if given."""
        pool = [self.by_id[i] for i in ids if i in self.by_id] if ids else self.items
        best: list[ContentItem] = []
        top = -1
        for item in pool:
            s = item.specificity(moment, stage, persona, channel)
            if s is None or s < top:
                continue
            if s > top:
                best, top = [], s
            best.append(item)
        return best

    def render(self, item: ContentItem, context: dict[str, Any]) -> dict[str, Any]:
        """The item as a dict with its templated fields filled from `context`."""
        out: dict[str, Any] = {"id": item.id}
        # The discount code may itself be a template (e.g. "SAVE-{{ person_code }}"): render it first.
        code_tpl = self._templates.get((item.id, "discount_code"))
        code = code_tpl.render(context) if code_tpl is not None else item.discount_code
        ctx = {**context, "discount_code": context.get("discount_code") or code}
        for name in TEMPLATED:
            tpl = self._templates.get((item.id, name))
            out[name] = tpl.render(ctx) if tpl is not None else getattr(item, name)
        out["discount_code"] = ctx["discount_code"]
        out["subject"] = out["subject"] or out["title"]
        if item.data:
            out["data"] = dict(item.data)
        return out
