"""The collector's fast path (`_fast_line`) against its full rules (`prepare_full`).

Realistic events (the demo generator's people, the Segment fixtures) and thousands of
mutations of them (wrong types, missing ids, bad or future times, odd numbers, secrets, huge
properties) go through both: each must give the same WAL bytes and messageId, or the same
status, message, field and hint. A fast path that accepted something the rules refuse, or
stamped it differently, fails here.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from micromoments.activation.wal import WriteAheadLog
from micromoments.demo.journey import simulate_person
from micromoments.server import collector as collector_module
from micromoments.server.collector import Collector, DedupeWindow, Rejected, received_now

FIXTURES = Path(__file__).parent / "fixtures" / "sources"


class _Sink:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def event(self, ev: dict[str, Any], truth: Any) -> None:
        self.events.append(ev)

    def query(self, text: str, family: Any) -> None:
        pass

    def person(self, person: Any) -> None:
        pass


def _real_events() -> list[dict[str, Any]]:
    sink = _Sink()
    for index in range(6):
        simulate_person(sink, seed=11, index=index, start=dt.date(2026, 9, 1), days=10)
    events = [orjson.loads(orjson.dumps(e)) for e in sink.events]  # JSON shapes, as a request has them
    events += [orjson.loads(line) for line in (FIXTURES / "segment.jsonl").read_bytes().splitlines() if line.strip()]
    events += orjson.loads((FIXTURES / "segment_batch.json").read_bytes())["batch"]
    assert len(events) > 100
    return events


NOW = dt.datetime.now(dt.UTC)
# Values that each rule treats differently (string, number, bool, null, object, array, times).
VALUES: list[Any] = [
    None, "", "x", "TRACK", "Track", "track", "page", "alias", "identify", "screen", "group", "bogus",
    0, 7, 1.5, -0.12, True, False, [], [1], {}, {"a": 1}, "53.3", "abc", "1e400",
    "2026-09-01T10:00:00Z", "2026-09-01T10:00:00+02:00", (NOW + dt.timedelta(days=3)).isoformat(),
    (NOW + dt.timedelta(hours=23)).isoformat(), (NOW - dt.timedelta(days=1)).isoformat(), "not a time",
    1767607200, 1767607200000, 1767607200000000, 1e20, "2026-13-40", "x" * 40_000,
]
PATHS = [
    ("type",), ("messageId",), ("anonymousId",), ("userId",), ("previousId",), ("event",), ("timestamp",),
    ("originalTimestamp",), ("sentAt",), ("receivedAt",), ("writeKey",), ("properties",), ("context",),
    ("traits",), ("name",), ("channel",), ("properties", "latitude"), ("properties", "longitude"),
    ("properties", "revenue"), ("properties", "total"), ("properties", "value"), ("properties", "query"),
    ("context", "location"), ("context", "location", "latitude"), ("context", "location", "longitude"),
    ("context", "traits"), ("context", "page"), ("context", "timezone"),
]


def _mutate(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    event = copy.deepcopy(event)
    for _ in range(rng.choice((1, 1, 2, 3))):
        path = rng.choice(PATHS)
        node = event
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        if rng.random() < 0.15:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = copy.deepcopy(rng.choice(VALUES))
    return event


def _outcome(fn, *args, **kwargs) -> tuple:
    try:
        line, mid, event = fn(*args, **kwargs)
    except Rejected as exc:
        return ("rejected", exc.status, exc.message, exc.field, exc.hint)
    return ("ok", line, mid, orjson.dumps(event))


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    wal = WriteAheadLog(tmp_path_factory.mktemp("wal"), fsync=False)
    yield Collector(wal, None)
    wal.close()


@pytest.fixture(scope="module")
def cases() -> list[dict[str, Any]]:
    rng = random.Random(5)
    real = _real_events()
    return real + [_mutate(rng.choice(real), rng) for _ in range(4000)]


def _batch_of_one(collector: Collector, item: Any, at, iso, sent_at) -> tuple:
    return collector.prepare_batch([item], received_at=at, received_iso=iso, sent_at=sent_at)[0]


def _reference_batch(collector: Collector, item: Any, at, iso, sent_at) -> tuple:
    """What `/v1/batch` did per item before the fast path: the type check, then `prepare_full`."""
    if isinstance(item, dict) and item.get("type") is None:
        raise Rejected(400, "missing event type", "batch[0].type", hint="one of track, page, screen, identify, alias, group")
    return collector.prepare_full(item, received_at=at, received_iso=iso, sent_at=sent_at, where="batch[0].")


def test_batch_fast_path_gives_the_same_bytes_and_errors_as_the_full_rules(collector, cases) -> None:
    at, iso = received_now()
    sent = (NOW - dt.timedelta(seconds=5)).isoformat()
    ok = took_fast = 0
    latest = at + dt.timedelta(hours=24)
    for i, event in enumerate(cases):
        sent_at = sent if i % 3 == 0 else None
        fast = _outcome(_batch_of_one, collector, copy.deepcopy(event), at, iso, sent_at)
        full = _outcome(_reference_batch, collector, copy.deepcopy(event), at, iso, sent_at)
        assert fast == full, f"case {i}: {orjson.dumps(event)[:300]!r}"
        ok += full[0] == "ok"
        took_fast += isinstance(event, dict) and collector_module._fast_line(
            copy.deepcopy(event), at, iso, sent_at, latest, 32 * 1024 + 200) is not None
    # Every side was exercised: real events pass (most by the fast path), most mutations are refused.
    assert ok > 800 and len(cases) - ok > 1500, (ok, len(cases))
    assert took_fast > 0.8 * ok, (took_fast, ok)


@pytest.mark.parametrize("kind", ["track", "page", "identify", "alias"])
def test_single_event_fast_path_matches_the_full_rules(collector, cases, kind) -> None:
    at, iso = received_now()
    ok = 0
    for i, event in enumerate(cases):
        body = orjson.dumps(event)
        fast = _outcome(collector.prepare, copy.deepcopy(event), received_at=at, received_iso=iso,
                        event_bytes=body, forced_type=kind)
        full = _outcome(collector.prepare_full, copy.deepcopy(event), received_at=at, received_iso=iso,
                        event_bytes=body, forced_type=kind)
        assert fast == full, f"case {i} to /v1/{kind}: {body[:300]!r}"
        ok += full[0] == "ok"
    assert ok > (10 if kind == "alias" else 100)


def test_a_batch_is_refused_at_its_first_bad_item_and_stamped_once(collector) -> None:
    at, iso = received_now()
    good = {"type": "track", "event": "Viewed", "userId": "u1", "messageId": "m-1", "writeKey": "secret"}
    bad = {"type": "track", "event": "Viewed", "userId": {"id": 1}, "messageId": "m-2"}
    with pytest.raises(Rejected) as info:
        collector.prepare_batch([dict(good), {"type": "page", "userId": "u"}, bad, {"userId": "u"}],
                                received_at=at, received_iso=iso)
    assert (info.value.status, info.value.field, info.value.message) == (400, "batch[2].userId",
                                                                          "expected a string, got object")
    [(line, mid, event)] = collector.prepare_batch([dict(good)], received_at=at, received_iso=iso, sent_at=iso)
    assert mid == "m-1" and line.endswith(b"\n") and b"secret" not in line
    stamped = orjson.loads(line)
    assert stamped["timestamp"] == stamped["receivedAt"] == iso and stamped["sentAt"] == iso


def test_dedupe_window_forgets_the_oldest_and_tracks_writes_in_flight() -> None:
    async def run() -> None:
        w = DedupeWindow(3)
        fut = asyncio.get_running_loop().create_future()
        w.add_many(["a", "b"], fut)
        assert w.get("a") is fut and not w.isdisjoint(["x", "b"]) and w.isdisjoint(["x"])
        w.done(["a", "b"])
        assert w.get("a") is None and "a" in w
        w.add_many(["c", "d"], None)
        assert "a" not in w and "b" in w and len(w) == 3
        w.forget("d")
        assert "d" not in w and len(w) == 2

    asyncio.run(run())

