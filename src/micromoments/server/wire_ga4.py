"""GA4 Measurement Protocol (`POST /mp/collect`, `/debug/mp/collect`) onto Segment-shaped events.

A request names its stream (`measurement_id` or `firebase_app_id`) and its `api_secret` in
the query string; the secret is the key (`[server] ga4_api_secrets`: secret -> source).
The body holds `client_id` (or `app_instance_id`), an optional `user_id`,
`timestamp_micros`, `user_properties` and up to 25 `events` of `{name, params}`. Each event
becomes the Segment call the GA4 export reader makes of the same event (`sources/ga4.py`:
page_view -> page, screen_view -> screen, every other name a track under its GA4 name;
`page_location`/`page_title`/`page_referrer`, `search_term`, and `value` as revenue only for
the revenue events). `/debug/mp/collect` answers Google's `validationMessages` and stores nothing.

>>> events = to_segment({"client_id": "123456.7654321", "events": [
...     {"name": "page_view", "params": {"page_location": "https://shop.example/"}}]})
>>> events[0]["type"], events[0]["anonymousId"], events[0]["properties"]["url"]
('page', '123456.7654321', 'https://shop.example/')
>>> validate({"client_id": "1", "events": [{"name": "_bad", "params": {}}]})[0]["validationCode"]
'NAME_INVALID'
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

import orjson

from micromoments.server.collector import Rejected
from micromoments.sources.ga4 import CAMPAIGN_PARAMS, EVENT_TYPES, PAGE_PARAMS, QUERY_PARAMS, REVENUE_EVENTS

PATH, DEBUG_PATH = "/mp/collect", "/debug/mp/collect"
MAX_EVENTS = 25
MAX_PARAMS = 25
MAX_NAME = 40
MAX_PARAM_VALUE = 100
MAX_USER_PROPERTIES = 25
# Google's published limits; names it reserves for its own events and parameters.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RESERVED_EVENTS = frozenset({"ad_activeview", "ad_click", "ad_exposure", "ad_query", "ad_reward", "adunit_exposure",
                              "app_clear_data", "app_exception", "app_install", "app_remove", "app_store_refund",
                              "app_update", "app_upgrade", "dynamic_link_app_open", "dynamic_link_app_update",
                              "dynamic_link_first_open", "error", "firebase_campaign", "first_open", "first_visit",
                              "in_app_purchase", "notification_dismiss", "notification_foreground",
                              "notification_open", "notification_receive", "os_update", "session_start",
                              "session_start_with_rollout", "user_engagement"})
_RESERVED_PREFIXES = ("_", "firebase_", "ga_", "google_", "gtag.")


def _message(path: str, description: str, code: str) -> dict[str, str]:
    return {"fieldPath": path, "description": description, "validationCode": code}


def validate(body: Any) -> list[dict[str, str]]:
    """Google's validation messages for a Measurement Protocol body ([] when valid)."""
    out = validate_request(body)
    events = body.get("events") if isinstance(body, dict) else None
    if isinstance(events, list):
        for i, event in enumerate(events[:MAX_EVENTS]):
            out += _validate_event(i, event)
    return out


def split_events(body: dict[str, Any]) -> tuple[list[int], list[tuple[int, Rejected, Any]]]:
    """(indexes of the valid events, (index, why, event) of the others) of a request `validate_request` passed."""
    good, bad = [], []
    for i, event in enumerate(body["events"]):
        messages = _validate_event(i, event)
        if messages:
            bad.append((i, Rejected(400, messages[0]["description"], messages[0]["fieldPath"],
                                    hint="POST it to /debug/mp/collect to see every problem"), event))
        else:
            good.append(i)
    return good, bad


def validate_request(body: Any) -> list[dict[str, str]]:
    """The messages about the request itself (ids, time, user properties, the events array)."""
    if not isinstance(body, dict):
        return [_message("", "The body must be a JSON object.", "VALUE_INVALID")]
    out: list[dict[str, str]] = []
    client = body.get("client_id", body.get("app_instance_id"))
    if not isinstance(client, str) or not client:
        out.append(_message("client_id", "client_id (or app_instance_id) is required and must be a string.",
                            "VALUE_REQUIRED"))
    user = body.get("user_id")
    if user is not None and not isinstance(user, str):
        out.append(_message("user_id", "user_id must be a string.", "VALUE_INVALID"))
    if not _micros_ok(body.get("timestamp_micros")):
        out.append(_message("timestamp_micros", "timestamp_micros must be an integer (microseconds since "
                            "1970, before year 10000).", "VALUE_INVALID"))
    props = body.get("user_properties")
    if props is not None:
        if not isinstance(props, dict):
            out.append(_message("user_properties", "user_properties must be an object.", "VALUE_INVALID"))
        elif len(props) > MAX_USER_PROPERTIES:
            out.append(_message("user_properties", f"At most {MAX_USER_PROPERTIES} user properties.",
                                "EXCEED_MAX_ENTITIES"))
    events = body.get("events")
    if not isinstance(events, list) or not events:
        out.append(_message("events", "events is required: an array of 1 to 25 events.", "VALUE_REQUIRED"))
        return out
    if len(events) > MAX_EVENTS:
        out.append(_message("events", f"A request can have at most {MAX_EVENTS} events.", "EXCEED_MAX_ENTITIES"))
    return out


def _validate_event(i: int, event: Any) -> list[dict[str, str]]:
    if not isinstance(event, dict):
        return [_message(f"events[{i}]", f"Event at index: [{i}] must be an object.", "VALUE_INVALID")]
    out = []
    name = event.get("name")
    if not isinstance(name, str) or not name:
        out.append(_message(f"events[{i}].name", f"Event at index: [{i}] has no name.", "VALUE_REQUIRED"))
    elif not _NAME.match(name) or len(name) > MAX_NAME:
        out.append(_message("events", f"Event at index: [{i}] has invalid name [{name}]. Names must start with "
                            "an alphabetic character, hold only letters, digits and underscores, and be at most "
                            f"{MAX_NAME} characters.", "NAME_INVALID"))
    elif name in _RESERVED_EVENTS or name.startswith(_RESERVED_PREFIXES):
        out.append(_message("events", f"Event at index: [{i}] has name [{name}] which is reserved.",
                            "NAME_RESERVED"))
    if not _micros_ok(event.get("timestamp_micros")):
        out.append(_message(f"events[{i}].timestamp_micros", f"Event at index: [{i}] timestamp_micros must be an "
                            "integer (microseconds since 1970, before year 10000).", "VALUE_INVALID"))
    params = event.get("params", {})
    if not isinstance(params, dict):
        out.append(_message(f"events[{i}].params", f"Event at index: [{i}] params must be an object.",
                            "VALUE_INVALID"))
        return out
    if len(params) > MAX_PARAMS:
        out.append(_message(f"events[{i}].params", f"Event at index: [{i}] has more than {MAX_PARAMS} params.",
                            "EXCEED_MAX_ENTITIES"))
    for key, value in params.items():
        if not _NAME.match(key) or len(key) > MAX_NAME:
            out.append(_message(f"events[{i}].params", f"Event at index: [{i}] has invalid param [{key}].",
                                "NAME_INVALID"))
        elif key.startswith(_RESERVED_PREFIXES):
            out.append(_message(f"events[{i}].params", f"Event at index: [{i}] has param [{key}] which is "
                                "reserved.", "NAME_RESERVED"))
        if isinstance(value, str) and len(value) > MAX_PARAM_VALUE and key not in PAGE_PARAMS:
            out.append(_message(f"events[{i}].params.{key}", f"Event at index: [{i}] param [{key}] is longer "
                                f"than {MAX_PARAM_VALUE} characters.", "VALUE_INVALID"))
    return out


_MAX_MICROS = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z


def _micros_ok(value: Any) -> bool:
    """Absent, or microseconds since 1970 (an integer or its digits) that a datetime can hold."""
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        return False
    return int(value) <= _MAX_MICROS


def _micros_iso(micros: Any) -> str:
    when = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(micros))
    return when.isoformat(timespec="microseconds") + "Z"


def to_segment(body: dict[str, Any], *, received_iso: str | None = None,
               indexes: list[int] | None = None) -> list[dict[str, Any]]:
    """The Segment events of one valid Measurement Protocol body (see `validate`); `indexes` are
    the events' places in the request (the default 0, 1, ...), part of their messageIds."""
    client = body.get("client_id", body.get("app_instance_id"))
    user = body.get("user_id")
    traits = {k: v.get("value") if isinstance(v, dict) else v
              for k, v in (body.get("user_properties") or {}).items()}
    request_ts = body.get("timestamp_micros")
    app = "app_instance_id" in body and "client_id" not in body
    out = []
    for n, event in enumerate(body["events"]):
        i = indexes[n] if indexes is not None else n
        name = event["name"]
        params = dict(event.get("params") or {})
        type_ = EVENT_TYPES.get(name, "track")
        seg: dict[str, Any] = {"type": type_, "anonymousId": client}
        if user:
            seg["userId"] = user
        if type_ == "track":
            seg["event"] = name
        properties = dict(params)
        for ga, key in PAGE_PARAMS.items():
            if params.get(ga) is not None:
                properties.setdefault(key, params[ga])
        for ga in QUERY_PARAMS:
            if params.get(ga) is not None:
                properties.setdefault("query", params[ga])
                break
        if name in REVENUE_EVENTS and params.get("value") is not None:
            properties["revenue"] = params["value"]
        elif "value" in params:
            # GA4 counts `value` as revenue only on purchase; the Segment mapping reads
            # revenue before value, so 0 keeps e.g. an add_to_cart value out of revenue.
            properties["revenue"] = 0
        seg["properties"] = properties
        if type_ in ("page", "screen"):
            title = params.get("firebase_screen") or params.get("screen_name") or params.get("page_title")
            if title is not None:
                seg["name"] = title
        ts = event.get("timestamp_micros", request_ts)
        if ts is not None:
            seg["timestamp"] = _micros_iso(ts)
        context: dict[str, Any] = {"library": {"name": "ga4-measurement-protocol"}}
        campaign = {key: params[ga] for ga, key in CAMPAIGN_PARAMS.items() if params.get(ga) is not None}
        if campaign:
            context["campaign"] = campaign
        if traits:
            context["traits"] = traits
        if app:
            context["app"] = {"instance_id": client}
        seg["context"] = context
        # GA4 has no event id: a hash of the request's event is the messageId, so a retried
        # request with timestamp_micros is stored once; without one, the receive time is
        # hashed in, or two identical page views a minute apart would be one.
        when = ts if ts is not None else received_iso
        digest = hashlib.md5(orjson.dumps([client, user, when, i, event],
                                          option=orjson.OPT_SORT_KEYS)).hexdigest()
        seg["messageId"] = "ga4:" + digest
        out.append(seg)
    return out


def rejected_for(messages: list[dict[str, str]]) -> Rejected:
    """The collector's 400 for an invalid request (the first message; /debug lists them all)."""
    first = messages[0]
    return Rejected(400, first["description"], first["fieldPath"] or "body",
                    hint="POST it to /debug/mp/collect to see every problem")
