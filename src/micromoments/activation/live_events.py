"""One Segment event -> one canonical event, in plain Python: the live twin of the SQL ingest.

The batch path maps files with SQL (`sources/segment.py` says where each field comes from,
`events/sql.py` adds clock-skew correction, channel, query, device and the reasons a row is
rejected). The collector needs the same answer for one event in microseconds, so this module
restates those rules over a dict. `tests/test_server_live_events.py` ingests the same
fixture events both ways and compares every column.

>>> import datetime as dt
>>> e = canonical_event(
...     {"type": "track", "event": "Products Searched", "userId": "u1",
...      "timestamp": "2026-01-05T10:00:00Z", "sentAt": "2026-01-05T10:00:05Z",
...      "properties": {"query": "paint near me"}, "context": {"campaign": {"medium": "cpc"}}},
...     received_at=dt.datetime(2026, 1, 5, 10, 0, 2))
>>> e["ts"], e["channel"], e["query"], e["person_id"]
(datetime.datetime(2026, 1, 5, 9, 59, 57), 'paid-search', 'paint near me', 'u1')
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import math
import re
from typing import Any
from urllib.parse import unquote

import orjson

from micromoments.errors import InputError
from micromoments.events.model import (
    CHANNELS,
    EVENT_TYPES,
    LATITUDE_RANGE,
    LONGITUDE_RANGE,
    MIN_TIMESTAMP,
    MEDIUM_CHANNELS,
    QUERY_URL_PARAMETERS,
    REFERRER_CHANNELS,
)

__all__ = ["canonical_event", "validate_event", "parse_time", "event_error", "time_error"]

_EPOCH = dt.datetime(1970, 1, 1)
_CHANNEL_SET = frozenset(CHANNELS)
_TYPE_SET = frozenset(EVENT_TYPES)
# Same pattern as `events.sql.query_from_url_sql`: the leftmost of the search parameters.
_URL_QUERY = re.compile(r"[?&](?:" + "|".join(QUERY_URL_PARAMETERS) + r")=([^&#]*)")
_TABLET = re.compile(r"iPad|Tablet")
_MOBILE = re.compile(r"Mobi|iPhone|Android")
# Where each field comes from is `sources/segment.py`; `canonical_event` reads the same paths.
_ID_FIELDS = (("message_id", "messageId"), ("anonymous_id", "anonymousId"),
              ("user_id", "userId"), ("previous_id", "previousId"))


def _text(value: Any) -> str | None:
    """A JSON value as DuckDB's VARCHAR cast writes it (strings as-is, JSON for the rest)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return orjson.dumps(value).decode()


def _to_double(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse_time(value: Any) -> dt.datetime | None:
    """See `_parse_time`; texts and numbers are memoised (a batch shares its sentAt and receivedAt)."""
    if isinstance(value, (str, int, float)):
        return _parse_time_cached(value)
    return _parse_time(value)


def _parse_time(value: Any) -> dt.datetime | None:
    """ISO-8601 (any offset, to naive UTC) or an epoch number (s, ms or µs by size), else None.

    Mirrors `events.sql.epoch_or_iso_sql`.

    >>> parse_time("2026-01-05T12:00:00+02:00"), parse_time(1767607200000)
    (datetime.datetime(2026, 1, 5, 10, 0), datetime.datetime(2026, 1, 5, 10, 0))
    """
    text = _text(value)
    if text is None:
        return None
    # ISO text ("2026-...") is never an epoch: skip the float attempt (and its exception).
    n = None if len(text) > 4 and text[4] == "-" else _to_double(text)
    if n is not None and n > 1e9:
        if math.isinf(n):
            return None
        micros = n if n > 1e14 else n * 1e3 if n > 1e11 else n * 1e6
        try:
            return _EPOCH + dt.timedelta(microseconds=round(micros))
        except OverflowError:
            return None
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


_parse_time_cached = functools.lru_cache(maxsize=8192)(_parse_time)


def _channel(channel_raw: str | None, medium: str | None, is_app: bool, type_: str, referrer: str | None) -> str:
    """Mirrors `events.sql.channel_sql`."""
    low = channel_raw.lower() if channel_raw is not None else None
    if low in _CHANNEL_SET:
        return low  # type: ignore[return-value]
    if medium is not None:
        mapped = MEDIUM_CHANNELS.get(medium.lower())
        if mapped is not None:
            return mapped
    if is_app or low == "mobile" or type_ == "screen":
        return "app"
    if referrer is not None:
        ref = referrer.lower()
        for fragment, channel in REFERRER_CHANNELS:
            if fragment in ref:
                return channel
    return "web"


def _query(query_raw: str | None, page_url: str | None) -> str | None:
    """Mirrors the `query` column: the sent query, else the URL's search parameter."""
    if query_raw is not None:
        q = query_raw.strip(" ")
        if q:
            return q
    if page_url is None:
        return None
    m = _URL_QUERY.search(page_url)
    if m is None:
        return None
    q = unquote(m.group(1).replace("+", " ")).strip(" ")
    return q or None


def _device(device_raw: str | None, user_agent: str | None) -> str | None:
    if device_raw is not None:
        return device_raw.lower()
    if user_agent is None:
        return None
    if _TABLET.search(user_agent):
        return "tablet"
    if _MOBILE.search(user_agent):
        return "mobile"
    return "desktop"


def _reject(field: str, message: str, hint: str | None = None) -> InputError:
    err = InputError(f"{field}: {message}", hint=hint)
    err.field = field  # type: ignore[attr-defined]
    return err


_EMPTY: dict[str, Any] = {}


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else _EMPTY


def _bad_number(value: Any) -> bool:
    """A value the SQL mapping's number check rejects (TRY_CAST of its text fails)."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return False
    return isinstance(value, bool) or _to_double(_text(value)) is None  # type: ignore[arg-type]


def _num(*values: Any) -> float | None:
    for value in values:
        if value is None:
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        n = _to_double(_text(value))  # type: ignore[arg-type]
        if n is not None:
            return n
    return None


def _first(*values: Any) -> str | None:
    for value in values:
        if value is not None:
            return _text(value)
    return None


def _type_error(raw: dict[str, Any], props: dict[str, Any], ctx: dict[str, Any],
                loc: dict[str, Any]) -> InputError | None:
    """The first wrong-typed field, in the order the SQL mapping checks them."""
    for _, key in _ID_FIELDS:
        value = raw.get(key)
        if isinstance(value, (dict, list)):
            kind = "object" if isinstance(value, dict) else "array"
            return _reject(key, f"expected a string, got {kind}")
    for path, value in (("context.location.latitude", loc.get("latitude")), ("properties.latitude", props.get("latitude")),
                        ("context.location.longitude", loc.get("longitude")),
                        ("properties.longitude", props.get("longitude")), ("properties.revenue", props.get("revenue")),
                        ("properties.total", props.get("total")), ("properties.value", props.get("value"))):
        if _bad_number(value):
            return _reject(path, f"expected a number, got {(_text(value) or '')[:40]}")
    for path, value in (("properties", raw.get("properties")), ("traits", raw.get("traits")),
                        ("context.traits", ctx.get("traits")), ("context", raw.get("context"))):
        if value is not None and not isinstance(value, dict):
            got = "array" if isinstance(value, list) else (_text(value) or "")[:40]
            return _reject(path, f"expected an object, got {got}")
    return None


def _range_error(props: dict[str, Any], loc: dict[str, Any]) -> InputError | None:
    """The first coordinate outside its range or amount that is not finite (as `events.sql` checks)."""
    for name, bounds in (("latitude", LATITUDE_RANGE), ("longitude", LONGITUDE_RANGE)):
        for path, value in ((f"context.location.{name}", loc.get(name)), (f"properties.{name}", props.get(name))):
            n = _num(value)
            if n is not None:
                if not bounds[0] <= n <= bounds[1]:  # NaN fails this too
                    return _reject(path, f"{n:g} is outside {bounds[0]:g}..{bounds[1]:g}",
                                   hint="send decimal degrees, or leave the field out")
                break  # the first one present is the one the row keeps
    for key in ("revenue", "total", "value"):
        n = _num(props.get(key))
        if n is not None:
            if not math.isfinite(n):
                return _reject(f"properties.{key}", f"{n} is not a finite number")
            break
    return None


def time_error(key: str, value: Any) -> InputError:
    """Why `value` is not a time, in words that fit what was sent (an epoch number or text).

    >>> time_error("timestamp", "99999").message
    'timestamp: timestamp 99999 is a number below 1e9, which is not read as an epoch (before 2001-09-09 in seconds)'
    """
    text = _text(value) or ""
    n = _to_double(text)
    if n is not None:
        why = ("is a number below 1e9, which is not read as an epoch (before 2001-09-09 in seconds)"
               if abs(n) <= 1e9 else "is an epoch beyond the year 9999")
        return _reject(key, f"{key} {text[:40]} {why}",
                       hint="send ISO-8601 such as 2026-09-01T10:00:00.000Z, or epoch seconds/ms/µs after 2001")
    return _reject(key, f"{key} is not ISO-8601 or epoch: {text[:40]}", hint="send e.g. 2026-09-01T10:00:00.000Z")


def _out_of_range(key: str, when: dt.datetime | str, earliest: dt.datetime, max_future_hours: float) -> InputError:
    shown = when.isoformat() + "Z" if isinstance(when, dt.datetime) else when
    return _reject(key, f"{key} {shown} is outside the accepted range {earliest:%Y-%m-%d} to now + "
                        f"{max_future_hours:g} h",
                   hint="check the device clock; [ingest] min_timestamp and max_future_skew_hours set the range")


def _checked(raw: Any, received_at: dt.datetime | None, now: dt.datetime | None,
             max_future_hours: float, min_time: dt.datetime = MIN_TIMESTAMP) -> tuple:
    """Every rule by which the SQL ingest quarantines a row; returns what the mapping reuses."""
    if not isinstance(raw, dict):
        raise _reject("event", "expected a JSON object, got " + ("array" if isinstance(raw, list) else "a value"))
    props, ctx = _obj(raw.get("properties")), _obj(raw.get("context"))
    page, loc = _obj(ctx.get("page")), _obj(ctx.get("location"))
    err = _type_error(raw, props, ctx, loc) or _range_error(props, loc)
    if err is not None:
        raise err
    type_raw = raw.get("type")
    type_ = _text(type_raw).lower() if type_raw is not None else None  # type: ignore[union-attr]
    if type_ is None:
        raise _reject("type", "missing event type", hint=f"one of {', '.join(EVENT_TYPES)}")
    if type_ not in _TYPE_SET:
        raise _reject("type", f"unknown type {type_} (expected one of {', '.join(EVENT_TYPES)})")
    ts_value = raw.get("originalTimestamp")
    if ts_value is None:
        ts_value = raw.get("timestamp")
    if ts_value is None:
        raise _reject("timestamp", "missing timestamp", hint="send an ISO-8601 `timestamp`")
    ts_original = parse_time(raw.get("originalTimestamp"))
    if ts_original is None:
        ts_original = parse_time(raw.get("timestamp"))
    if ts_original is None:
        raise time_error("timestamp", ts_value)
    sent_at = parse_time(raw.get("sentAt"))
    if received_at is None:
        received_at = parse_time(raw.get("receivedAt"))
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    latest = now + dt.timedelta(seconds=int(max_future_hours * 3600))
    if sent_at is not None and not min_time <= sent_at <= latest:
        raise _out_of_range("sentAt", sent_at, min_time, max_future_hours)
    # Clock-skew correction, as Segment does: the device's offset is (sentAt - receivedAt).
    try:
        ts = received_at - (sent_at - ts_original) if sent_at is not None and received_at is not None else ts_original
    except OverflowError:  # corrected past the year 9999
        raise _out_of_range("timestamp", "after 9999-12-31", min_time, max_future_hours) from None
    if ts > latest:
        raise _reject("timestamp", f"timestamp {ts:%Y-%m-%dT%H:%M:%SZ} is in the future",
                      hint="check the device clock or send sentAt so it can be corrected")
    if ts < min_time:
        raise _out_of_range("timestamp", ts, min_time, max_future_hours)
    # An empty id is no id (Segment's SDKs send "" for a signed-out user).
    anonymous_id, user_id = _text(raw.get("anonymousId")) or None, _text(raw.get("userId")) or None
    previous_id = _text(raw.get("previousId"))
    if anonymous_id is None and user_id is None:
        raise _reject("userId", "neither anonymousId nor userId is set")
    if type_ == "alias" and (previous_id is None or user_id is None):
        raise _reject("previousId", "alias needs previousId and userId")
    return props, ctx, page, loc, type_, ts, sent_at, received_at, anonymous_id, user_id, previous_id


def validate_event(raw: Any, *, now: dt.datetime | None = None, received_at: dt.datetime | None = None,
                   max_future_hours: float = 24.0, min_time: dt.datetime = MIN_TIMESTAMP) -> None:
    """Raise `InputError` (with `.field`) if the SQL ingest would quarantine this event.

    The collector's check: cheaper than `canonical_event`, which also builds the row.

    >>> validate_event({"type": "track", "userId": "u1", "timestamp": "2026-01-05T10:00:00Z"})
    >>> validate_event({"type": "track", "timestamp": "2026-01-05T10:00:00Z"})
    Traceback (most recent call last):
    ...
    micromoments.errors.InputError: userId: neither anonymousId nor userId is set
    """
    _checked(raw, received_at, now, max_future_hours, min_time)


def event_error(raw: Any, *, now: dt.datetime | None = None, max_future_hours: float = 24.0,
                min_time: dt.datetime = MIN_TIMESTAMP) -> InputError | None:
    """Why the SQL ingest would quarantine this event, as an `InputError` naming the field; else None.

    >>> event_error({"type": "track", "userId": "u1"}).field
    'timestamp'
    """
    try:
        canonical_event(raw, received_at=None, now=now, max_future_hours=max_future_hours, min_time=min_time)
    except InputError as exc:
        return exc
    return None


def canonical_event(
    raw: Any,
    *,
    received_at: dt.datetime | None,
    now: dt.datetime | None = None,
    max_future_hours: float = 24.0,
    raw_text: bytes | None = None,
    source: str = "api",
    min_time: dt.datetime = MIN_TIMESTAMP,
) -> dict[str, Any]:
    """The `events` row of one Segment-shaped event (properties/context/traits as dicts).

    `received_at` (naive UTC) is when the collector got the event; it wins over a
    `receivedAt` in the body. Raises `InputError` (with `.field`) when the SQL ingest
    would quarantine the event. `raw_text` is the event's JSON, hashed for the message id
    when none was sent.
    """
    props, ctx, page, loc, type_, ts, sent_at, received_at, anonymous_id, user_id, previous_id = _checked(
        raw, received_at, now, max_future_hours, min_time)
    message_id = _text(raw.get("messageId"))
    if message_id is None:
        text = raw_text if raw_text is not None else orjson.dumps(raw)
        message_id = "h:" + hashlib.md5(text).hexdigest()

    properties = raw.get("properties")
    context = raw.get("context")
    traits = raw.get("traits")
    if traits is None:
        traits = ctx.get("traits")
    page_url = _first(props.get("url"), page.get("url"))
    referrer = _first(props.get("referrer"), page.get("referrer"))
    campaign = _obj(ctx.get("campaign"))
    medium = _text(campaign.get("medium"))
    user_agent = _text(ctx.get("userAgent"))
    return {
        "message_id": message_id,
        "person_id": user_id if user_id is not None else anonymous_id,
        "anonymous_id": anonymous_id,
        "user_id": user_id,
        "previous_id": previous_id,
        "type": type_,
        "event": _text(raw.get("event")),
        "name": _first(raw.get("name"), props.get("name")),
        "ts": ts,
        "sent_at": sent_at,
        "received_at": received_at,
        "channel": _channel(_text(raw.get("channel")), medium, ctx.get("app") is not None, type_, referrer),
        "query": _query(_first(props.get("query"), props.get("search_query"), props.get("search"),
                               props.get("search_term"), props.get("keyword"), page.get("search")), page_url),
        "page_url": page_url,
        "page_path": _first(props.get("path"), page.get("path")),
        "page_title": _first(props.get("title"), page.get("title")),
        "referrer": referrer,
        "utm_source": _text(campaign.get("source")),
        "utm_medium": medium,
        "utm_campaign": _text(campaign.get("name")),
        "lat": _num(loc.get("latitude"), props.get("latitude")),
        "lon": _num(loc.get("longitude"), props.get("longitude")),
        "city": _text(loc.get("city")),
        "country": _text(loc.get("country")),
        "device_type": _device(_text(_obj(ctx.get("device")).get("type")), user_agent),
        "locale": _text(ctx.get("locale")),
        "timezone": _text(ctx.get("timezone")),
        "ip": _text(ctx.get("ip")),
        "user_agent": user_agent,
        "revenue": _num(props.get("revenue"), props.get("total"), props.get("value")),
        "properties": properties if properties is not None else {},
        "traits": traits if traits is not None else {},
        "context": context if context is not None else {},
        "source": source,
    }
