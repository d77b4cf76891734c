"""`canonical_event` (Python, live path) gives the same rows as the SQL ingest (batch path)."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import orjson
import pytest

from micromoments.activation.live_events import canonical_event, parse_time
from micromoments.demo import generate
from micromoments.errors import InputError
from micromoments.store import Store
from micromoments.store.ingest import ingest_file
from micromoments.store.schema import EVENTS_COLUMNS

# Edge cases the demo does not produce: skewed clocks, epochs, offsets, search in URLs,
# campaign media, referrers, app context, numbers as text, user agents without a device.
EDGE_CASES: list[dict] = [
    {"type": "track", "messageId": "e1", "userId": "u1", "event": "Products Searched",
     "originalTimestamp": "2026-09-01T10:00:00+02:00", "sentAt": "2026-09-01T08:00:30Z",
     "receivedAt": "2026-09-01T08:00:10Z", "properties": {"search_query": "  drill bits "}},
    {"type": "page", "messageId": "e2", "anonymousId": "a2", "timestamp": 1788256800123,
     "context": {"page": {"url": "https://x.example/s?cat=1&q=garden+hose%20reel&p=2",
                          "referrer": "https://www.bing.com/"}}},
    {"type": "PAGE", "messageId": "e3", "anonymousId": "a3", "timestamp": "1788256800",
     "properties": {"url": "https://x.example/?search=", "referrer": "https://t.co/abc"},
     "context": {"campaign": {"medium": "Newsletter", "source": "nl", "name": "sept"}}},
    {"type": "screen", "messageId": "e4", "userId": 42, "name": "Cart",
     "timestamp": "2026-09-01 10:00", "context": {"app": {"name": "gh"}, "userAgent": "Mozilla (iPad; CPU OS)"}},
    {"type": "track", "messageId": "e5", "userId": "u5", "anonymousId": "a5", "event": "Order Completed",
     "timestamp": "2026-09-01T10:00:00.123456Z", "channel": "Email",
     "properties": {"total": "129.50", "latitude": "53.3", "name": "ignored?"},
     "context": {"location": {"longitude": -6.2, "city": "Dublin"}, "userAgent": "Android Mobile"}},
    {"type": "identify", "userId": "u6", "anonymousId": "a6", "timestamp": "2026-09-01",
     "context": {"traits": {"email": "x@y.z"}, "device": {"type": "TV"}}},
    {"type": "alias", "messageId": "e7", "userId": "u7", "previousId": "a7",
     "timestamp": "2026-09-01T10:00:00Z", "channel": "mobile"},
    {"type": "track", "messageId": "e8", "anonymousId": "a8", "event": "Viewed",
     "timestamp": "2026-09-01T10:00:00Z", "context": {"page": {"search": "", "url": "https://x/?k=paint"}},
     "properties": {"revenue": 3, "value": 9.5}},
]

# Events the SQL quarantines, with the field it names.
BAD_CASES: list[tuple[dict, str]] = [
    ({"type": "track", "userId": "u", "event": "x"}, "timestamp"),
    ({"type": "track", "userId": "u", "timestamp": "yesterday"}, "timestamp"),
    ({"type": "track", "userId": "u", "timestamp": "2099-01-01T00:00:00Z"}, "timestamp"),
    ({"type": "bogus", "userId": "u", "timestamp": "2026-09-01T00:00:00Z"}, "type"),
    ({"userId": "u", "timestamp": "2026-09-01T00:00:00Z"}, "type"),
    ({"type": "track", "timestamp": "2026-09-01T00:00:00Z"}, "userId"),
    ({"type": "alias", "userId": "u", "timestamp": "2026-09-01T00:00:00Z"}, "previousId"),
    ({"type": "track", "userId": {"id": 1}, "timestamp": "2026-09-01T00:00:00Z"}, "userId"),
    ({"type": "track", "userId": "u", "timestamp": "2026-09-01T00:00:00Z", "properties": {"revenue": "lots"}},
     "properties.revenue"),
    ({"type": "track", "userId": "u", "timestamp": "2026-09-01T00:00:00Z", "properties": [1, 2]}, "properties"),
    ({"type": "track", "userId": "u", "timestamp": "2026-09-01T00:00:00Z", "traits": "vip"}, "traits"),
    # Outside the accepted ranges (issue 18): these once reached the store and broke the pages.
    ({"type": "track", "userId": "u", "event": "x", "timestamp": "0001-01-01T00:00:00Z"}, "timestamp"),
    ({"type": "track", "userId": "u", "event": "x", "timestamp": "1999-12-31T23:00:00Z"}, "timestamp"),
    ({"type": "track", "userId": "u", "event": "x", "timestamp": "2026-09-01T00:00:00Z",
      "sentAt": "9999-12-31T23:59:59Z"}, "sentAt"),
    ({"type": "track", "userId": "u", "event": "x", "timestamp": "2026-09-01T00:00:00Z",
      "context": {"location": {"latitude": 999, "longitude": 2}}}, "context.location.latitude"),
    ({"type": "track", "userId": "u", "event": "x", "timestamp": "2026-09-01T00:00:00Z",
      "properties": {"longitude": -500}}, "properties.longitude"),
    ({"type": "track", "userId": "u", "event": "x", "timestamp": "2026-09-01T00:00:00Z",
      "properties": {"latitude": "nan"}}, "properties.latitude"),
    ({"type": "track", "userId": "u", "event": "x", "timestamp": "2026-09-01T00:00:00Z",
      "properties": {"revenue": "inf"}}, "properties.revenue"),
    ({"type": "track", "userId": "", "event": "x", "timestamp": "2026-09-01T00:00:00Z"}, "userId"),
]


def _normalise(value, column):
    if column in ("properties", "traits", "context"):
        value = json.loads(value) if isinstance(value, str) else value
        return value or None  # absent (NULL in SQL) and {} mean the same
    if isinstance(value, float):
        return round(value, 9)
    return value


@pytest.fixture(scope="module")
def fixture_events(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("live")
    paths = generate(out, users=25, days=5, seed=11)
    events = [orjson.loads(line) for line in paths.events.read_bytes().splitlines() if line.strip()]
    rng = random.Random(5)
    # Give some demo events a skewed device clock, as a real collector sees.
    for e in rng.sample(events, k=len(events) // 4):
        ts = parse_time(e["timestamp"])
        skew = dt.timedelta(seconds=rng.randint(-3600, 3600))
        e["sentAt"] = (ts + skew + dt.timedelta(seconds=2)).isoformat() + "Z"
        e["receivedAt"] = (ts + dt.timedelta(seconds=2, milliseconds=rng.randint(0, 999))).isoformat() + "Z"
    return events + EDGE_CASES


def test_python_mapping_matches_sql_ingest(tmp_path: Path, fixture_events: list[dict]) -> None:
    path = tmp_path / "events.jsonl"
    lines = [orjson.dumps(e) for e in fixture_events]
    path.write_bytes(b"\n".join(lines) + b"\n")
    store = Store(":memory:")
    result = ingest_file(store, path, fmt="segment")
    assert result.quarantined == 0 and result.loaded == len(fixture_events)
    cur = store.duck.execute("SELECT * FROM events")
    names = [d[0] for d in cur.description]
    sql_rows = {row[0]: dict(zip(names, row)) for row in cur.fetchall()}

    compared = 0
    for raw, text in zip(fixture_events, lines):
        live = canonical_event(raw, received_at=None, raw_text=text)
        sql = sql_rows[live["message_id"]]
        for column in EVENTS_COLUMNS:
            if column in ("source", "source_line", "person_id"):
                continue  # person_id: identity stitching re-keys it after the load
            assert _normalise(live[column], column) == _normalise(sql[column], column), (
                f"{column} differs for {raw.get('messageId')}: live={live[column]!r} sql={sql[column]!r}")
            compared += 1
        assert live["person_id"] == (live["user_id"] or live["anonymous_id"])
    assert compared > 20 * len(fixture_events)
    # The edge cases really exercised the rules they are there for.
    by_id = {r["message_id"]: r for r in sql_rows.values()}
    assert by_id["e1"]["ts"] == dt.datetime(2026, 9, 1, 7, 59, 40) and by_id["e1"]["query"] == "drill bits"
    assert by_id["e2"]["query"] == "garden hose reel" and by_id["e2"]["channel"] == "organic-search"
    assert by_id["e3"]["channel"] == "email" and by_id["e4"]["device_type"] == "tablet"


@pytest.mark.parametrize("raw,field", BAD_CASES)
def test_rejects_what_sql_quarantines_naming_the_same_field(tmp_path: Path, raw: dict, field: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(orjson.dumps(raw) + b"\n")
    store = Store(":memory:")
    assert ingest_file(store, path, fmt="segment").quarantined == 1
    sql_field = store.duck.execute("SELECT field FROM quarantine").fetchone()[0]
    with pytest.raises(InputError) as err:
        canonical_event(raw, received_at=dt.datetime(2026, 9, 1))
    assert err.value.field == field
    assert sql_field.split(".")[-1] == field.split(".")[-1]
    assert field in str(err.value)
