"""PostHog's capture API (`/batch/`, `/capture/`, `/e/`, `/i/v0/e/`) onto Segment-shaped events.

The SDKs send the project's `api_key` (or `token`) in the body: JSON, gzipped JSON
(`Content-Encoding: gzip`, or posthog-js's `?compression=gzip-js`), or a form body
`data=<base64 JSON>`. Each event becomes the Segment call the PostHog export reader makes
of it (`sources/posthog.py`: the same event-type table, the same id stitching), so the
collector then validates, deduplicates (the event's `uuid` is its messageId) and logs it
like any other.

>>> to_segment({"event": "$pageview", "distinct_id": "d1", "uuid": "u-1",
...             "properties": {"$current_url": "https://shop.example/p?q=1", "$title": "Shop"}})["type"]
'page'
>>> e = to_segment({"event": "$identify", "distinct_id": "user-7",
...                 "properties": {"$anon_distinct_id": "anon-3", "$set": {"plan": "pro"}}})
>>> e["userId"], e["anonymousId"], e["traits"]
('user-7', 'anon-3', {'plan': 'pro'})
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from typing import Any

import orjson

from micromoments.server.collector import Rejected
from micromoments.sources.posthog import APP_LIBS, EVENT_TYPES, QUERY_PROPERTIES

PATHS = ("/batch/", "/batch", "/capture/", "/capture", "/e/", "/e", "/i/v0/e/", "/i/v0/e")
SUCCESS = b'{"status":1}'  # what PostHog's capture answers; the SDKs only read the status code

_CONTEXT_PROPERTIES = {"$ip": "ip", "$raw_user_agent": "userAgent", "$locale": "locale", "$timezone": "timezone"}
_PAGE_PROPERTIES = {"$current_url": "url", "$pathname": "path", "$title": "title", "$referrer": "referrer"}
_CAMPAIGN_PROPERTIES = {"utm_source": "source", "utm_medium": "medium", "utm_campaign": "name",
                        "utm_term": "term", "utm_content": "content"}


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else None


def parse_body(body: bytes, content_type: str | None, query: str) -> Any:
    """The JSON document of a capture request, undoing the form and base64 wrappings.

    >>> parse_body(b"data=" + base64.b64encode(b'{"event": "x"}'), "application/x-www-form-urlencoded", "")
    {'event': 'x'}
    """
    text = body.strip()
    form = urllib.parse.parse_qs(text.decode("latin-1"), keep_blank_values=True) if (
        (content_type or "").startswith("application/x-www-form-urlencoded") or text.startswith(b"data=")) else None
    if form is not None:
        data = form.get("data", [""])[0]
        if not data:
            raise Rejected(400, "form body without a `data` field", "data",
                           hint="send data=<JSON or base64 JSON>, or a JSON body")
        text = data.encode("latin-1")
    if text[:1] not in (b"{", b"["):
        try:  # posthog-js `compression=base64` (also in a form field)
            text = base64.b64decode(text + b"=" * (-len(text) % 4), altchars=b"-_" if b"-" in text or b"_" in text
                                    else None, validate=False)
        except (binascii.Error, ValueError):
            raise Rejected(400, "the body is neither JSON nor base64 JSON", "body") from None
    if not text.strip():
        raise Rejected(400, "empty body", "body", hint="send one JSON object")
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise Rejected(400, f"not valid JSON: {exc}", "body") from None


def api_key_of(doc: Any) -> str | None:
    """The project key: `api_key` (or `token`) at the top, or in the first event or its properties."""
    first = doc[0] if isinstance(doc, list) and doc else doc
    batch = doc.get("batch") if isinstance(doc, dict) else None
    candidates = [doc, first]
    if isinstance(batch, list) and batch:
        candidates.append(batch[0])
    for obj in candidates:
        if not isinstance(obj, dict):
            continue
        props = obj.get("properties")
        for key in (obj.get("api_key"), obj.get("token"),
                    props.get("token") if isinstance(props, dict) else None):
            if isinstance(key, str) and key:
                return key
    return None


def events_of(doc: Any) -> tuple[list[Any], Any]:
    """(the events, the request's `sent_at`) of a capture body: a batch, a list or one event."""
    if isinstance(doc, list):
        return doc, None
    if not isinstance(doc, dict):
        raise Rejected(400, "expected a JSON object or array", "body")
    sent_at = doc.get("sent_at")
    if "batch" in doc:
        batch = doc["batch"]
        if not isinstance(batch, list):
            raise Rejected(400, "`batch` must be an array", "batch")
        return batch, sent_at
    if "event" in doc:
        return [doc], sent_at
    raise Rejected(400, "neither `batch` nor `event` in the body", "body",
                   hint='send {"api_key": ..., "batch": [{"event": ..., "distinct_id": ...}]}')


def _ids(name: str, distinct_id: str | None, props: dict[str, Any]) -> dict[str, str | None]:
    """anonymousId/userId/previousId as the PostHog export reader stitches them."""
    device = _text(props.get("$device_id"))
    if name == "$identify":
        return {"anonymousId": _text(props.get("$anon_distinct_id")), "userId": distinct_id}
    if name == "$create_alias":
        return {"anonymousId": device or distinct_id, "userId": _text(props.get("alias")) or distinct_id,
                "previousId": distinct_id}
    user = _text(props.get("$user_id"))
    if user is None and device is not None and device != distinct_id:
        user = distinct_id
    return {"anonymousId": device or distinct_id, "userId": user}


def to_segment(event: Any, where: str = "") -> dict[str, Any]:
    """One PostHog event -> the Segment call the export reader would make of it."""
    if not isinstance(event, dict):
        raise Rejected(400, "expected a JSON object", where.rstrip(".") or "body")
    name = event.get("event")
    if not isinstance(name, str) or not name:
        raise Rejected(400, "missing event name", f"{where}event", hint='e.g. {"event": "$pageview"}')
    props = event.get("properties")
    if props is None:
        props = {}
    if not isinstance(props, dict):
        raise Rejected(400, "expected an object", f"{where}properties")
    distinct_id = _text(event.get("distinct_id")) or _text(props.get("distinct_id"))
    type_ = EVENT_TYPES.get(name, "track")
    out: dict[str, Any] = {"type": type_}
    for key, value in _ids(name, distinct_id, props).items():
        if value is not None:
            out[key] = value
    message_id = event.get("uuid") or event.get("message_id")
    if message_id is not None:
        out["messageId"] = message_id
    if event.get("timestamp") is not None:
        out["originalTimestamp"] = event["timestamp"]
    if type_ == "track":
        out["event"] = name
    elif type_ in ("page", "screen"):
        title = _text(props.get("$screen_name")) or _text(props.get("$title")) or _text(props.get("title"))
        if title is not None:
            out["name"] = title
    elif type_ == "group":
        out["groupId"] = _text(props.get("$group_key"))
        out["traits"] = props.get("$group_set") if isinstance(props.get("$group_set"), dict) else {}
    traits = event.get("$set") if name == "$set" else props.get("$set")
    if isinstance(traits, dict) and type_ != "group":
        out["traits"] = traits
    if name == "$set":
        out["type"] = "identify"  # person properties: Segment's identify
        out.pop("event", None)
    properties = dict(props)
    properties.pop("token", None)  # posthog-js's project key: a key, not a property
    for ph, seg in _PAGE_PROPERTIES.items():
        if _text(props.get(ph)) is not None and seg not in properties:
            properties[seg] = props[ph]
    for key in QUERY_PROPERTIES:
        if _text(props.get(key)) is not None:
            properties.setdefault("query", props[key])
            break
    if out["type"] in ("track", "page", "screen"):
        out["properties"] = properties
    out["context"] = _context(props)
    return out


def _context(props: dict[str, Any]) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    for ph, seg in _CONTEXT_PROPERTIES.items():
        if _text(props.get(ph)) is not None:
            ctx[seg] = props[ph]
    lat, lon = props.get("$geoip_latitude"), props.get("$geoip_longitude")
    location = {k: v for k, v in (("latitude", lat), ("longitude", lon),
                                  ("city", props.get("$geoip_city_name")),
                                  ("country", props.get("$geoip_country_code"))) if v is not None}
    if location:
        ctx["location"] = location
    if _text(props.get("$device_type")) is not None:
        ctx["device"] = {"type": props["$device_type"]}
    campaign = {seg: props[ph] for ph, seg in _CAMPAIGN_PROPERTIES.items() if _text(props.get(ph)) is not None}
    if campaign:
        ctx["campaign"] = campaign
    lib = _text(props.get("$lib"))
    if lib is not None:
        ctx["library"] = {"name": lib, "version": _text(props.get("$lib_version"))}
        if lib in APP_LIBS:
            ctx["app"] = {"name": lib}
    return ctx


def segment_batch(doc: Any) -> tuple[list[tuple[int, dict[str, Any]]], Any, list[tuple[int, Rejected, Any]]]:
    """((index, Segment event) of the good events, sent_at, (index, why, event) of the bad ones)."""
    events, sent_at = events_of(doc)
    good: list[tuple[int, dict[str, Any]]] = []
    bad: list[tuple[int, Rejected, Any]] = []
    for i, event in enumerate(events):
        try:
            good.append((i, to_segment(event, f"batch[{i}].")))
        except Rejected as exc:
            bad.append((i, exc, event))
    return good, sent_at, bad
