"""Playbooks in YAML: when a moment happens in a context, send this content on this channel.

A file holds a list under `playbooks:`. Each playbook has a trigger (`when`), an action and
limits; higher `priority` wins when several match the same event (one contact per event).

```yaml
playbooks:
  - name: go-near-store
    priority: 100
    when:
      moments: [go]          # built-in or custom moment types
      near_store_km: 15      # distance from the event's location to the nearest store
      devices: [mobile]
      local_time: {hours: "08:00-20:00", days: [mon, tue, wed, thu, fri, sat]}
    action: {channel: push, content: [store-nearby-push]}
    limits:
      caps: [{scope: playbook, max: 1, per_hours: 24}, {scope: channel, max: 3, per_hours: 24}]
      quiet_hours: "21:00-08:00"   # default: [activation] quiet_hours; "off" to disable
```

>>> pbs = load_playbooks_text('''
... playbooks:
...   - name: know-howto
...     when: {moments: [know, do]}
...     action: {channel: web}
... ''', "pb.yaml")
>>> pbs[0].name, pbs[0].when.matches(MatchContext(moment="do"))
('know-howto', True)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from micromoments.activation.catalog import CHANNELS, Catalog
from micromoments.activation.limits import Cap, QuietHours
from micromoments.activation.yamlfile import compose, model_error, node_at, read_text, where_of
from micromoments.errors import ConfigError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
BASE_MOMENTS = ("know", "go", "do", "buy", "other")
PROPERTY_OPS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "contains")
_MISSING = object()


def _listify(v: Any) -> Any:
    return [v] if isinstance(v, (str, int, float)) else v


class LocalTime(BaseModel):
    """Local-time window in the person's timezone: `hours` "HH:MM-HH:MM" (may cross midnight), `days`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    hours: str | None = None
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(default_factory=list)

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: str | None) -> str | None:
        QuietHours.parse(v)  # same syntax; raises ValueError with the fix
        return v


@dataclass
class MatchContext:
    """What a trigger is evaluated against (built by the engine from the event and live state)."""

    moment: str | None = None
    go_type: str | None = None
    moment_started: bool = True
    event: str | None = None
    stage: str | None = None
    persona: str | None = None
    segments: tuple[str, ...] = ()
    channel: str | None = None
    device: str | None = None
    store_km: float | None = None
    local: datetime | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    open_cart: bool = False
    cart_idle_minutes: float | None = None
    scores: dict[str, Any] | None = None  # predict.live.LiveScorer output, when a model is loaded


def _prop(props: dict[str, Any], dotted: str) -> Any:
    value: Any = props
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _test(value: Any, test: Any) -> bool:
    if not isinstance(test, dict):
        return value is not _MISSING and value == test
    for op, arg in test.items():
        if op == "exists":
            ok = (value is not _MISSING and value is not None) == bool(arg)
        elif value is _MISSING or value is None:
            ok = op in ("ne", "not_in")
        elif op == "eq":
            ok = value == arg
        elif op == "ne":
            ok = value != arg
        elif op == "in":
            ok = value in arg
        elif op == "not_in":
            ok = value not in arg
        elif op == "contains":
            ok = str(arg).lower() in str(value).lower()
        else:
            try:
                v, a = float(value), float(arg)
            except (TypeError, ValueError):
                return False
            ok = {"gt": v > a, "gte": v >= a, "lt": v < a, "lte": v <= a}[op]
        if not ok:
            return False
    return True


class Trigger(BaseModel):
    """When a playbook fires. Every condition given must hold; lists mean "any of"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # `on` would be read as a boolean by YAML 1.1, hence `fire_on`.
    fire_on: Literal["moment_started", "event"] = "moment_started"
    moments: list[str] = Field(default_factory=list)
    go_types: list[Literal["local", "site"]] = Field(default_factory=list)
    events: list[str] = Field(default_factory=list)
    stages: list[str] = Field(default_factory=list)
    personas: list[str] = Field(default_factory=list)
    segments: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    devices: list[str] = Field(default_factory=list)
    near_store_km: float | None = Field(default=None, gt=0)
    local_time: LocalTime | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    open_cart: bool | None = None
    cart_idle_minutes: float | None = Field(default=None, ge=0)
    # Predictions (need a `[predict]` model): e.g. `predicted_moments: {go: 0.5}` = "likely `go` next",
    # `min_buy_propensity: 0.6` = chance to buy before this session ends.
    predicted_moments: dict[str, float] = Field(default_factory=dict)
    min_buy_propensity: float | None = Field(default=None, ge=0, le=1)
    min_buy_propensity_7d: float | None = Field(default=None, ge=0, le=1)

    _list = field_validator("moments", "go_types", "events", "stages", "personas", "segments", "channels",
                            "devices", mode="before")(_listify)

    @field_validator("predicted_moments")
    @classmethod
    def _probabilities(cls, v: dict[str, float]) -> dict[str, float]:
        for moment, p in v.items():
            if not 0 <= float(p) <= 1:
                raise ValueError(f"predicted_moments.{moment}: {p} is not a probability between 0 and 1")
        return v

    @field_validator("properties")
    @classmethod
    def _ops(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key, test in v.items():
            if isinstance(test, dict):
                bad = [op for op in test if op not in PROPERTY_OPS]
                if bad:
                    raise ValueError(f"property '{key}': unknown operator(s) {bad}; use {', '.join(PROPERTY_OPS)}")
        return v

    def matches(self, c: MatchContext, *, any_time: bool = False) -> bool:
        """True when every condition holds (`any_time`: ignore `fire_on`, as decide() does)."""
        if self.fire_on == "moment_started" and not c.moment_started and not any_time:
            return False
        if self.moments and c.moment not in self.moments:
            return False
        if self.go_types and c.go_type not in self.go_types:
            return False
        if self.events and (c.event or "").lower() not in {e.lower() for e in self.events}:
            return False
        if self.stages and c.stage not in self.stages:
            return False
        if self.personas and c.persona not in self.personas:
            return False
        if self.segments and not set(self.segments) & set(c.segments):
            return False
        if self.channels and c.channel not in self.channels:
            return False
        if self.devices and c.device not in self.devices:
            return False
        if self.near_store_km is not None and (c.store_km is None or c.store_km > self.near_store_km):
            return False
        if self.local_time is not None:
            if c.local is None:
                return False
            if self.local_time.days and DAYS[c.local.weekday()] not in self.local_time.days:
                return False
            window = QuietHours.parse(self.local_time.hours)
            if window is not None and not window.contains(c.local.time()):
                return False
        if self.open_cart is not None and c.open_cart != self.open_cart:
            return False
        if self.predicted_moments or self.min_buy_propensity is not None or self.min_buy_propensity_7d is not None:
            if not c.scores:  # no model loaded: a prediction trigger cannot hold
                return False
            nxt = c.scores.get("next_moment") or {}
            if any(nxt.get(m, 0.0) < p for m, p in self.predicted_moments.items()):
                return False
            if self.min_buy_propensity is not None and c.scores.get("p_buy_session", 0.0) < self.min_buy_propensity:
                return False
            if self.min_buy_propensity_7d is not None and c.scores.get("p_buy_7d", 0.0) < self.min_buy_propensity_7d:
                return False
        if self.cart_idle_minutes is not None and (
            c.cart_idle_minutes is None or c.cart_idle_minutes < self.cart_idle_minutes
        ):
            return False
        return all(_test(_prop(c.properties, k), t) for k, t in self.properties.items())


class Action(BaseModel):
    """What to send: content ids (empty: the catalog's best match) on a channel."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    channel: Literal["push", "email", "webhook", "web", "app", "sms"]
    content: list[str] = Field(default_factory=list)
    webhook: str | None = None   # a name in [activation] webhook_urls, for channel: webhook

    _list = field_validator("content", mode="before")(_listify)


def _default_caps() -> list[Cap]:
    return [Cap(scope="playbook", max=1, per_hours=24)]


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    caps: list[Cap] = Field(default_factory=_default_caps)
    quiet_hours: str | None = None   # None: the [activation] default; "off": none

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, v: str | None) -> str | None:
        QuietHours.parse(v)
        return v


class Playbook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    description: str = ""
    enabled: bool = True
    priority: int = 0
    when: Trigger = Field(default_factory=Trigger)
    action: Action
    limits: Limits = Field(default_factory=Limits)
    source: str = Field(default="", exclude=True)  # file:line, filled by the loader

    @property
    def interrupts(self) -> bool:
        """Push, email, SMS and webhooks reach people outside the site: caps and quiet hours apply."""
        return self.action.channel in ("push", "email", "sms", "webhook")


class _PlaybookFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    playbooks: list[Playbook]


def _check_semantics(pbs: list[Playbook], path: str, node: Any, *, moments: Iterable[str] | None,
                     stages: Iterable[str] | None, catalog: Catalog | None,
                     webhooks: Iterable[str] | None) -> None:
    """Names that pydantic cannot know: moments, stages, content ids, webhook names."""
    moments = set(moments) if moments is not None else None
    stages = set(stages) if stages is not None else None
    webhooks = set(webhooks) if webhooks is not None else None

    def fail(i: int, loc: list[Any], msg: str, hint: str) -> None:
        raise ConfigError(msg, where=where_of(path, node_at(node, ["playbooks", i, *loc])), hint=hint)

    for i, pb in enumerate(pbs):
        for j, m in enumerate(pb.when.moments):
            if moments is not None and m not in moments:
                fail(i, ["when", "moments", j], f"playbook '{pb.name}': unknown moment '{m}'",
                     f"use one of {', '.join(sorted(moments))} (custom moments come from [intent])")
        for j, s in enumerate(pb.when.stages):
            if stages is not None and s not in stages:
                fail(i, ["when", "stages", j], f"playbook '{pb.name}': unknown stage '{s}'",
                     f"use one of {', '.join(sorted(stages))}")
        for j, ch in enumerate(pb.when.channels):
            if not ch:
                fail(i, ["when", "channels", j], "empty channel", "remove it")
        for j, cid in enumerate(pb.action.content):
            if catalog is not None:
                item = catalog.by_id.get(cid)
                if item is None:
                    fail(i, ["action", "content", j], f"playbook '{pb.name}': no content '{cid}' in the catalog",
                         f"add it to {catalog.source} or fix the id")
                elif item.channels and pb.action.channel not in item.channels:
                    fail(i, ["action", "content", j],
                         f"playbook '{pb.name}': content '{cid}' is not for channel '{pb.action.channel}'",
                         f"its channels are {item.channels}")
        if pb.action.channel == "webhook":
            if not pb.action.webhook:
                fail(i, ["action"], f"playbook '{pb.name}': channel webhook needs 'webhook: <name>'",
                     "name one of [activation] webhook_urls")
            if webhooks is not None and pb.action.webhook not in webhooks:
                fail(i, ["action", "webhook"], f"playbook '{pb.name}': unknown webhook '{pb.action.webhook}'",
                     f"add it to [activation] webhook_urls (known: {sorted(webhooks) or 'none'})")


def load_playbooks_text(text: str, path: str, *, moments: Iterable[str] | None = None,
                        stages: Iterable[str] | None = None, catalog: Catalog | None = None,
                        webhooks: Iterable[str] | None = None) -> list[Playbook]:
    """Parse one playbook file's text; any error is a ConfigError at file:line:column."""
    data, node = compose(text, path)
    if data is None:
        return []
    try:
        parsed = _PlaybookFile.model_validate(data)
    except ValidationError as exc:
        raise model_error(exc, path, node) from None
    _check_semantics(parsed.playbooks, path, node, moments=moments, stages=stages, catalog=catalog,
                     webhooks=webhooks)
    return [pb.model_copy(update={"source": where_of(path, node_at(node, ["playbooks", i]))})
            for i, pb in enumerate(parsed.playbooks)]


def playbook_files(directory: str | Path) -> list[Path]:
    d = Path(directory)
    if d.is_file():
        return [d]
    if not d.is_dir():
        raise ConfigError("playbooks directory not found", where=str(d),
                          hint="set [activation] playbooks_dir or pass an existing directory")
    return sorted([*d.glob("*.yaml"), *d.glob("*.yml")])


def load_playbooks(directory: str | Path, **checks: Any) -> list[Playbook]:
    """Every playbook in the directory's *.yaml / *.yml files, highest priority first.

    `checks` are `moments`, `stages`, `catalog`, `webhooks` (see `load_playbooks_text`).
    """
    out: list[Playbook] = []
    seen: dict[str, str] = {}
    for path in playbook_files(directory):
        for pb in load_playbooks_text(read_text(path), str(path), **checks):
            if pb.name in seen:
                raise ConfigError(f"duplicate playbook name '{pb.name}' (first at {seen[pb.name]})",
                                  where=pb.source, hint="names must be unique across files")
            seen[pb.name] = pb.source
            out.append(pb)
    # Stable: equal priorities keep file order.
    return sorted(out, key=lambda p: -p.priority)


def validate_directory(directory: str | Path, **checks: Any) -> tuple[int, list[ConfigError]]:
    """(playbooks found, errors) for every file, one error (the first) per file: for the CLI."""
    n, errors = 0, []
    seen: dict[str, str] = {}
    for path in playbook_files(directory):
        try:
            pbs = load_playbooks_text(read_text(path), str(path), **checks)
        except ConfigError as exc:
            errors.append(exc)
            continue
        for pb in pbs:
            if pb.name in seen:
                errors.append(ConfigError(f"duplicate playbook name '{pb.name}' (first at {seen[pb.name]})",
                                          where=pb.source, hint="names must be unique across files"))
            seen.setdefault(pb.name, pb.source)
        n += len(pbs)
    return n, errors


__all__ = ["CHANNELS", "Action", "Limits", "LocalTime", "MatchContext", "Playbook", "Trigger",
           "load_playbooks", "load_playbooks_text", "playbook_files", "validate_directory"]
