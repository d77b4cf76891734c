"""Event rules: moments for events that carry no text to classify (a checkout, a map click).

A rule matches by event name (case-insensitive), and/or a regular expression on the page
URL/path, and/or one on the event's properties JSON. Rules from `micromoments.toml`
(`[[intent.event_rules]]`) are tried before the defaults, first match wins:

    [[intent.event_rules]]
    event = "Store Located"
    moment = "go"
    go_type = "local"

    [[intent.event_rules]]
    url = "/inspiration/"
    moment = "know"

>>> rules = load_rules(None)
>>> match_rule(rules, event="Order Completed").moment
'buy'
>>> match_rule(rules, event="Page Viewed", url="https://shop.example.com/store-locator").go_type
'local'
>>> match_rule(rules, event="Video Played", properties='{"title": "How to lay patio slabs"}').moment
'do'
>>> match_rule(rules, event="Signed Up") is None
True
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from micromoments.config import Config
from micromoments.errors import ConfigError
from micromoments.events.sql import sql_literal

MOMENTS = ("know", "go", "do", "buy")
TUTORIAL = r"(?i)tutorial|how[ _-]?to|diy|step[ _-]by[ _-]step|guide|masterclass|workshop|demo"


@dataclass(frozen=True)
class EventRule:
    """One rule. Empty matchers match anything; at least one matcher is required."""

    moment: str
    go_type: str | None = None
    event: str | None = None          # exact event name, case-insensitive
    url: str | None = None            # regex searched in page_url (or page_path)
    properties: str | None = None     # regex searched in the properties JSON text
    confidence: float = 0.95
    source: str = "default"

    def matches(self, event: str | None, url: str | None, properties: str | None) -> bool:
        if self.event is not None and (event or "").strip().lower() != self.event.lower():
            return False
        if self.url is not None and not re.search(self.url, url or ""):
            return False
        if self.properties is not None and not re.search(self.properties, properties or ""):
            return False
        return True


def _r(moment: str, *events: str, go_type: str | None = None, confidence: float = 0.95, **kw: Any) -> list[EventRule]:
    if not events:
        return [EventRule(moment, go_type, None, confidence=confidence, **kw)]
    return [EventRule(moment, go_type, e, confidence=confidence, **kw) for e in events]


# Segment e-commerce v2 (and common video/store-locator) event names.
DEFAULT_RULES: tuple[EventRule, ...] = tuple(
    _r("buy", "Checkout Started", "Checkout Step Viewed", "Checkout Step Completed", "Payment Info Entered",
       "Order Completed", "Order Updated", "Product Added", "Cart Viewed", "Coupon Entered", "Coupon Applied",
       "Product Added to Wishlist", "Wishlist Product Added to Cart", "Cart Shared", "Product Shared",
       "Product Reviewed", "Order Refunded", "Order Cancelled")
    + _r("buy", "Product Viewed", "Product Clicked", "Product List Viewed", "Product List Filtered",
         "Promotion Viewed", "Promotion Clicked", "Products Compared", confidence=0.75)
    + _r("go", "Store Locator Viewed", "Store Located", "Store Selected", "Store Hours Viewed",
         "Directions Requested", "Directions Clicked", "Map Clicked", "Map Viewed", "Map Opened",
         "Store Called", "Click to Call", "Store Visited", "Geofence Entered", go_type="local")
    + _r("do", "Video Played", "Video Playback Started", "Video Content Playing", "Video Playback Completed",
         "Tutorial Viewed", "Tutorial Started", "Guide Downloaded", "Project Plan Downloaded", properties=TUTORIAL)
    + _r("do", "Tutorial Viewed", "Tutorial Started", "Tutorial Completed", "Guide Downloaded",
         "Project Plan Downloaded", "Calculator Used")
    + _r("buy", url=r"(?i)/(cart|basket|checkout|order-confirmation|payment)(/|\?|$)")
    + _r("go", url=r"(?i)/(store-?locator|stores?|locations?|find-a-store|directions)(/|\?|$)", go_type="local")
    # Only sections that are how-to by nature. Advice, blog and ideas pages may answer a
    # question (know) or teach a task (do): their titles are classified instead.
    + _r("do", url=r"(?i)/(how-?to|tutorials?|guides?|diy|projects?)(/|-|\?|$)", confidence=0.85)
)


def rules_from_config(items: Iterable[Mapping[str, Any]], where: str = "micromoments.toml") -> list[EventRule]:
    """Validate `[[intent.event_rules]]` tables into `EventRule`s; errors name the rule and the fix."""
    out = []
    for i, item in enumerate(items):
        here = f"{where} [intent.event_rules][{i}]"
        unknown = set(item) - {"event", "url", "properties", "moment", "go_type", "confidence"}
        if unknown:
            raise ConfigError(f"unknown key(s) {sorted(unknown)}", where=here,
                              hint="use event, url, properties, moment, go_type, confidence")
        moment = item.get("moment")
        if not isinstance(moment, str) or not moment:
            raise ConfigError("'moment' is missing", where=here, hint='add moment = "buy" (or know/go/do/a custom name)')
        go_type = item.get("go_type")
        if go_type not in (None, "local", "site") or (go_type and moment != "go"):
            raise ConfigError(f"go_type {go_type!r} is not valid here", where=here,
                              hint='go_type is "local" or "site", and only for moment = "go"')
        if not any(item.get(k) for k in ("event", "url", "properties")):
            raise ConfigError("the rule matches nothing", where=here, hint="give at least one of event, url, properties")
        for key in ("url", "properties"):
            if item.get(key):
                try:
                    re.compile(item[key])
                except re.error as exc:
                    raise ConfigError(f"'{key}' is not a valid regular expression: {exc}", where=here) from exc
        conf = item.get("confidence", 0.95)
        if not isinstance(conf, (int, float)) or not 0 <= conf <= 1:
            raise ConfigError(f"confidence must be a number in [0, 1], got {conf!r}", where=here)
        out.append(EventRule(moment, go_type, item.get("event"), item.get("url"), item.get("properties"),
                             float(conf), source="config"))
    return out


def load_rules(config: Config | None) -> list[EventRule]:
    """Config rules first, then the defaults."""
    if config is None:
        return list(DEFAULT_RULES)
    where = config.source_path or "micromoments.toml"
    return rules_from_config(config.intent.event_rules, where) + list(DEFAULT_RULES)


def match_rule(
    rules: Sequence[EventRule], *, event: str | None = None, url: str | None = None, properties: str | None = None
) -> EventRule | None:
    """The first rule that matches the event, or None (the live path's twin of `rules_sql`)."""
    for rule in rules:
        if rule.matches(event, url, properties):
            return rule
    return None


def rules_sql(
    rules: Sequence[EventRule], event: str, url: str, properties: str, *, event_is_normalised: bool = False
) -> str:
    """A DuckDB expression giving the index of the first matching rule (NULL if none).

    `event`, `url` and `properties` are SQL expressions for those columns; with
    `event_is_normalised`, `event` is already `lower(trim(...))`.

    >>> rules_sql([EventRule("buy", event="Order Completed")], "event", "page_url", "properties")
    "CASE WHEN lower(trim(event)) = 'order completed' THEN 0 ELSE NULL END"
    """
    whens = []
    for i, r in enumerate(rules):
        conds = []
        if r.event is not None:
            ev = event if event_is_normalised else f"lower(trim({event}))"
            conds.append(f"{ev} = {sql_literal(r.event.lower())}")
        if r.url is not None:
            conds.append(f"regexp_matches(coalesce({url}, ''), {sql_literal(r.url)})")
        if r.properties is not None:
            conds.append(f"regexp_matches(coalesce({properties}, ''), {sql_literal(r.properties)})")
        whens.append(f"WHEN {' AND '.join(conds)} THEN {i}")
    return f"CASE {' '.join(whens)} ELSE NULL END" if whens else "NULL"
