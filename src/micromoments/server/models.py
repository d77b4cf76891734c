"""Pydantic models of the API, for the OpenAPI schema and the admin/decide responses.

The collector's hot path does not build these models per request (orjson and
`activation.live_events.canonical_event` validate an event in microseconds); they describe
the same shapes so `/openapi.json` is complete and clients can be generated from it.

>>> sorted(TrackEvent.model_json_schema()["required"])
['event']
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

Timestamp = Annotated[
    Union[str, float],
    Field(description="ISO-8601 with any offset (e.g. 2026-09-01T10:00:00.000Z) or an epoch in s, ms or µs."),
]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class PageContext(_Open):
    url: str | None = None
    path: str | None = None
    title: str | None = None
    referrer: str | None = None
    search: str | None = Field(None, description="The site-search query of the page, if any.")


class Location(_Open):
    latitude: float | None = None
    longitude: float | None = None
    city: str | None = None
    country: str | None = None


class Campaign(_Open):
    source: str | None = None
    medium: str | None = Field(None, description="utm_medium; maps to the channel (cpc -> paid-search ...).")
    name: str | None = None


class Device(_Open):
    type: str | None = Field(None, description="mobile / desktop / tablet ...")


class Context(_Open):
    """Segment's `context`. Unknown keys are kept."""

    ip: str | None = None
    locale: str | None = None
    timezone: str | None = Field(None, description="IANA name, e.g. Europe/Dublin.")
    userAgent: str | None = None
    page: PageContext | None = None
    location: Location | None = None
    campaign: Campaign | None = None
    device: Device | None = None
    app: dict[str, Any] | None = Field(None, description="Present for events from a mobile app.")
    traits: dict[str, Any] | None = None


class _Common(_Open):
    messageId: str | None = Field(
        None, max_length=200,
        description="Idempotency key: an event with a messageId already seen is accepted once.")
    anonymousId: str | None = Field(None, description="Device/cookie id; anonymousId or userId is required.")
    userId: str | None = Field(None, description="Your id for a known user; anonymousId or userId is required.")
    timestamp: Timestamp | None = Field(None, description="When it happened on the device (default: when received).")
    originalTimestamp: Timestamp | None = None
    sentAt: Timestamp | None = Field(None, description="When the device sent it; corrects device clock skew.")
    channel: str | None = None
    context: Context | None = None
    integrations: dict[str, Any] | None = None
    writeKey: str | None = Field(None, description="The write key, when not sent as Basic auth.")


class TrackEvent(_Common):
    """Something the user did, e.g. `Products Searched` with `properties.query`."""

    type: Literal["track"] = "track"
    event: str = Field(..., description="The action, e.g. 'Products Searched'.")
    properties: dict[str, Any] | None = None


class PageEvent(_Common):
    type: Literal["page"] = "page"
    name: str | None = None
    properties: dict[str, Any] | None = None


class ScreenEvent(_Common):
    type: Literal["screen"] = "screen"
    name: str | None = None
    properties: dict[str, Any] | None = None


class IdentifyEvent(_Common):
    type: Literal["identify"] = "identify"
    traits: dict[str, Any] | None = None


class AliasEvent(_Common):
    type: Literal["alias"] = "alias"
    previousId: str = Field(..., description="The id being merged into userId.")


class GroupEvent(_Common):
    type: Literal["group"] = "group"
    groupId: str | None = None
    traits: dict[str, Any] | None = None


class _BatchTrack(TrackEvent):
    type: Literal["track"]


class _BatchPage(PageEvent):
    type: Literal["page"]


class _BatchScreen(ScreenEvent):
    type: Literal["screen"]


class _BatchIdentify(IdentifyEvent):
    type: Literal["identify"]


class _BatchAlias(AliasEvent):
    type: Literal["alias"]


class _BatchGroup(GroupEvent):
    type: Literal["group"]


BatchItem = Annotated[
    Union[_BatchTrack, _BatchPage, _BatchScreen, _BatchIdentify, _BatchAlias, _BatchGroup],
    Field(discriminator="type"),
]


class BatchRequest(_Open):
    """Up to 500 KB of events; the good ones are stored, each bad one is quarantined and named in the answer."""

    batch: list[BatchItem]
    sentAt: Timestamp | None = Field(None, description="Applies to every event without its own sentAt.")
    context: Context | None = None
    writeKey: str | None = None


class Success(BaseModel):
    success: Literal[True] = True


class Error(BaseModel):
    """Every 4xx: what is wrong, the field (JSON path) and how to fix it."""

    success: Literal[False] = False
    error: str = Field(..., description="What is wrong.")
    field: str | None = Field(None, description="The field at fault, e.g. 'batch[3].userId'.")
    hint: str | None = None


class DecideRequest(_Open):
    userId: str | None = Field(None, description="userId or anonymousId is required.")
    anonymousId: str | None = None
    context: dict[str, Any] | None = Field(
        None, description="Where the user is now: channel, page, lat/lon, device, placement ...")


class Decision(_Open):
    """The chosen content (or why there is none: `status`). Logged for measurement.

    A write key gets only `decision_id`, `status`, `content_id` and `content`; an admin token every field."""

    decision_id: str | None = None
    ts: str | None = None
    person_id: str | None = None
    playbook: str | None = None
    content_id: str | None = None
    channel: str | None = None
    moment: str | None = None
    stage: str | None = None
    persona: str | None = None
    experiment: str | None = None
    variant: str | None = None
    propensity: float | None = None
    status: str = Field(..., description="chosen / no_match / capped / quiet_hours / no_consent / no_activator ...")
    context: Any = None
    content: dict[str, Any] | None = Field(None, description="The rendered content item.")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    role: Literal["all", "collector", "worker"]
    wal_pending_segments: int
    bus_queued: int
    store_lag_seconds: float | None
    activator: bool


class Stats(_Open):
    role: Literal["all", "collector", "worker"]
    requests: int
    events_accepted: int
    duplicates: int
    rejected: dict[str, int]
    wal: dict[str, Any]
    store: dict[str, Any]
    bus: dict[str, Any]
    sources: dict[str, int]
    # A collector's WAL drains to the bus through the shipper; None in the other roles.
    shipper: dict[str, Any] | None = None


class FlushResult(BaseModel):
    loaded: int
    duplicates: int
    quarantined: int
    segments: int
    log_rows: int


EVENT_MODELS: dict[str, type[BaseModel]] = {
    "track": TrackEvent, "page": PageEvent, "screen": ScreenEvent,
    "identify": IdentifyEvent, "alias": AliasEvent, "group": GroupEvent,
}
