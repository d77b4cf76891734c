"""The Redis Streams bus against a real redis-server: two collector processes, one worker group."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import httpx
import pytest

from _redis_server import needs_redis_server, redis, redis_url  # noqa: F401  (a fixture)
from _server_harness import ThreadServer, basic
from micromoments.config import Config

pytestmark = needs_redis_server


def test_redis_bus_round_trip_keeps_canonical_types(redis_url: str) -> None:
    from micromoments.activation.bus import RedisStreamsBus

    bus = RedisStreamsBus(redis_url, stream="t:events", group="g1", block_ms=100)
    seen: list[dict] = []
    bus.subscribe(seen.append)
    ts = dt.datetime(2026, 9, 1, 10, 0, 0, 123456)
    bus.publish({"message_id": "m1", "ts": ts, "properties": {"query": "shed"}})
    bus.publish_many([{"message_id": f"m{i}", "ts": ts} for i in range(2, 6)])
    deadline = time.monotonic() + 10
    while len(seen) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    bus.close()
    assert [e["message_id"] for e in seen] == ["m1", "m2", "m3", "m4", "m5"]
    assert seen[0]["ts"] == ts and seen[0]["properties"] == {"query": "shed"}


def test_two_collectors_share_one_stream_and_each_event_is_handled_once(redis_url: str, tmp_path: Path) -> None:
    from micromoments.activation.bus import RedisStreamsBus

    handled: list[str] = []

    class Recorder:  # stands in for the activator of a worker process
        def on_event(self, event: dict) -> list:
            handled.append(event["message_id"])
            return []

    servers = []
    for name in ("a", "b"):
        cfg = Config()
        cfg.server.write_keys = {"wk": "web"}
        cfg.server.admin_tokens = ["adm"]
        cfg.server.rate_limit_per_second = 0.0
        bus = RedisStreamsBus(redis_url, stream="mm:events", group="activators", consumer=name, block_ms=100)
        servers.append(ThreadServer(cfg, db_path=tmp_path / f"{name}.duckdb", data_dir=tmp_path / name,
                                    activator=Recorder(), bus=bus))
    for srv in servers:
        srv.__enter__()
    try:
        now = dt.datetime.now(dt.UTC).isoformat()
        for i in range(40):
            srv = servers[i % 2]
            resp = httpx.post(f"{srv.url}/v1/track", headers=basic("wk"), timeout=10,
                              json={"messageId": f"r{i}", "anonymousId": f"a{i}", "event": "Viewed", "timestamp": now})
            assert resp.status_code == 200
        deadline = time.monotonic() + 15
        while len(handled) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for srv in servers:
            srv.__exit__(None, None, None)
    # Both collectors published to one stream; the consumer group gave each event to one worker.
    assert sorted(handled) == sorted(f"r{i}" for i in range(40))
