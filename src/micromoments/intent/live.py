"""One event at a time, in memory: the live path's twin of `classify_store` (same texts, same rules).

>>> moment_for_event({"type": "track", "event": "Products Searched", "query": "b&q near me"}).moment
'go'
>>> m = moment_for_event({"type": "track", "event": "Order Completed", "properties": {"revenue": 30}})
>>> (m.moment, m.basis)
('buy', 'rule')
>>> moment_for_event({"type": "identify", "traits": {"email": "a@b.c"}}) is None
True
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from micromoments.config import Config
from micromoments.intent.classifier import Classifier, get_classifier
from micromoments.intent.rules import EventRule, load_rules, match_rule
from micromoments.intent.text import normalize_text, url_to_text

_TITLE_SUFFIX = re.compile(r"\s+[|–—-]\s+[^|–—-]+$")


@dataclass
class EventMoment:
    """The moment of one event and what it was read from (query / title / url / rule)."""

    moment: str
    go_type: str | None
    confidence: float
    basis: str
    cues: list[str] = field(default_factory=list)


def _get(event: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value: Any = event
        for part in key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value not in (None, ""):
            return value
    return None


def moment_for_event(
    event: Mapping[str, Any],
    *,
    config: Config | None = None,
    classifier: Classifier | None = None,
    rules: Sequence[EventRule] | None = None,
) -> EventMoment | None:
    """The moment of a canonical or raw Segment-style event dict, or None if it carries no intent.

    Precedence matches the store step: the query, else an event rule, else the page title or
    screen name, else the URL's path words.
    """
    clf = classifier or get_classifier(config)
    rules = rules if rules is not None else load_rules(config)
    query = _get(event, "query", "properties.query", "properties.search")
    if query and normalize_text(query):
        r = clf.predict([query])[0]
        return EventMoment(r.moment, r.go_type, r.confidence, "query", r.cues)
    props = event.get("properties")
    props_text = props if isinstance(props, str) else json.dumps(props or {}, ensure_ascii=False)
    url = _get(event, "page_url", "page_path", "properties.url", "context.page.url", "properties.path")
    rule = match_rule(rules, event=event.get("event"), url=url, properties=props_text)
    if rule is not None:
        return EventMoment(rule.moment, rule.go_type, rule.confidence, "rule",
                           [c for c in (rule.event, rule.url and f"url~{rule.url}") if c][:1])
    title = _get(event, "page_title", "properties.title", "context.page.title")
    if event.get("type") == "screen" or not title:
        title = title or event.get("name")
    text = normalize_text(_TITLE_SUFFIX.sub("", title)) if isinstance(title, str) else ""
    basis = "title"
    if not text and isinstance(url, str):
        text, basis = url_to_text(url), "url"
    if not text:
        return None
    r = clf.predict([text])[0]
    return EventMoment(r.moment, r.go_type, r.confidence, basis, r.cues)
