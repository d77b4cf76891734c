"""The collector on a real uvicorn server: auth, validation, limits, rate limits, idempotency, store."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from pathlib import Path

import httpx
import orjson
import pytest

from _server_harness import ThreadServer, basic, bearer
from micromoments.config import Config
from micromoments.store import Store

KEY = basic("wk_test")
ADMIN = bearer("adm_test")


def _config(tmp: Path, rate: float = 0) -> Config:
    cfg = Config()
    cfg.store.path = str(tmp / "store.duckdb")
    cfg.server.write_keys = {"wk_test": "test", "wk_slow": "slow"}
    cfg.server.admin_tokens = ["adm_test"]
    cfg.server.rate_limit_per_second = rate
    cfg.server.flush_interval_ms = 200
    return cfg


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("collector")
    with ThreadServer(_config(tmp), db_path=tmp / "store.duckdb", data_dir=tmp) as srv:
        srv.client = httpx.Client(base_url=srv.url, timeout=10)
        yield srv
        srv.client.close()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _search(query: str, **extra) -> dict:
    return {"userId": "u-" + uuid.uuid4().hex[:6], "event": "Products Searched", "timestamp": _now(),
            "messageId": uuid.uuid4().hex, "properties": {"query": query}, **extra}


def _error(resp: httpx.Response) -> dict:
    body = resp.json()
    assert body["success"] is False and body["error"]
    return body


def test_accepts_every_segment_call(server) -> None:
    c = server.client
    t = _now()
    calls = {
        "track": _search("paint near me"),
        "page": {"anonymousId": "a1", "name": "Home", "timestamp": t},
        "screen": {"anonymousId": "a1", "name": "Cart", "timestamp": t},
        "identify": {"anonymousId": "a1", "userId": "u1", "traits": {"email": "a@b.c"}},
        "alias": {"previousId": "a1", "userId": "u1"},
        "group": {"userId": "u1", "groupId": "g1"},
    }
    for path, body in calls.items():
        resp = c.post(f"/v1/{path}", json=body, headers=KEY)
        assert resp.status_code == 200, (path, resp.text)
        assert resp.json() == {"success": True}


def test_rejects_missing_and_unknown_write_keys(server) -> None:
    c = server.client
    body = _search("drill")
    resp = c.post("/v1/track", json=body)
    assert resp.status_code == 401 and _error(resp)["field"] == "Authorization"
    assert "missing write key" in resp.json()["error"]
    assert resp.headers["www-authenticate"].startswith("Basic")
    for header in (basic("nope"), {"Authorization": "Basic !!notbase64"}, bearer("wk_test")):
        resp = c.post("/v1/track", json=body, headers=header)
        assert resp.status_code == 401 and "unknown write key" in _error(resp)["error"]
    # Segment also accepts the key in the body.
    assert c.post("/v1/track", json={**body, "writeKey": "wk_test"}).status_code == 200
    assert c.post("/v1/batch", json={"batch": [_search("x") | {"type": "track"}], "writeKey": "bad"}).status_code == 401
    # Admin endpoints take admin tokens, not write keys.
    assert c.get("/admin/stats", headers=KEY).status_code == 401
    assert c.get("/admin/stats", headers=bearer("wrong")).status_code == 401
    assert c.get("/admin/stats", headers=ADMIN).status_code == 200


@pytest.mark.parametrize("path,body,field,words", [
    ("/v1/track", b"{not json", "body", "not valid JSON"),
    ("/v1/track", b"", "body", "empty body"),
    ("/v1/track", b"[1, 2]", "body", "expected a JSON object"),
    ("/v1/track", {"event": "x", "timestamp": "2026-09-01T00:00:00Z"}, "userId", "neither anonymousId nor userId"),
    ("/v1/track", {"userId": "u", "timestamp": "2026-09-01T00:00:00Z"}, "event", "needs an event name"),
    ("/v1/track", {"userId": {"id": 7}, "event": "x"}, "userId", "expected a string"),
    ("/v1/track", {"userId": "u", "event": "x", "timestamp": "next tuesday"}, "timestamp", "not ISO-8601"),
    ("/v1/track", {"userId": "u", "event": "x", "timestamp": "2099-01-01T00:00:00Z"}, "timestamp", "future"),
    ("/v1/track", {"userId": "u", "event": "x", "properties": "cheap"}, "properties", "expected an object"),
    ("/v1/track", {"userId": "u", "event": "x", "properties": {"revenue": "lots"}}, "properties.revenue",
     "expected a number"),
    ("/v1/track", {"userId": "u", "event": "x", "context": {"location": {"latitude": "north"}}},
     "context.location.latitude", "expected a number"),
    ("/v1/track", {"userId": "u", "event": "x", "type": "page"}, "type", "sent to /v1/track"),
    ("/v1/alias", {"userId": "u"}, "previousId", "previousId"),
    ("/v1/page", {"anonymousId": "a", "sentAt": 2e169}, "sentAt", "epoch beyond the year 9999"),
    ("/v1/page", {"anonymousId": "a", "sentAt": "9999-12-31T23:59:59Z"}, "sentAt", "outside the accepted range"),
    ("/v1/track", {"userId": "u", "event": "x", "timestamp": "0001-01-01T00:00:00Z"}, "timestamp",
     "outside the accepted range 2000-01-01"),
    ("/v1/track", {"userId": "u", "event": "x", "timestamp": "999999999"}, "timestamp", "below 1e9"),
    ("/v1/track", {"userId": "", "event": "x"}, "userId", "neither anonymousId nor userId"),
    ("/v1/track", {"userId": "u", "event": "x", "context": {"location": {"latitude": 999}}},
     "context.location.latitude", "outside -90..90"),
    ("/v1/track", b'{"userId": "u", "event": "x\\u0000y"}', "body", "NUL character"),
    ("/v1/batch", {"sentAt": "soon", "batch": [{"type": "page", "anonymousId": "a"}]}, "batch[0].sentAt",
     "not ISO-8601"),
    ("/v1/batch", {"events": []}, "batch", "missing `batch`"),
    ("/v1/batch", {"batch": {"type": "track"}}, "batch", "must be an array"),
    ("/v1/batch", {"batch": [{"type": "page", "anonymousId": "a"}, {"type": "track", "event": "e", "userId": 5.5,
                                                                     "anonymousId": ["x"]}]},
     "batch[1].anonymousId", "expected a string"),
    ("/v1/batch", {"batch": [{"anonymousId": "a"}]}, "batch[0].type", "missing event type"),
    ("/v1/batch", {"batch": [{"type": "click", "anonymousId": "a"}]}, "batch[0].type", "unknown type click"),
    ("/v1/batch", {"batch": ["hello"]}, "batch[0]", "expected a JSON object"),
    ("/v1/decide", {"context": {"channel": "web"}}, "userId", "neither userId nor anonymousId"),
    ("/v1/decide", {"userId": "u", "context": "home"}, "context", "expected an object"),
])
def test_bad_payloads_get_400_naming_the_field(server, path, body, field, words) -> None:
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    resp = server.client.post(path, headers=KEY, **kwargs)
    if field.startswith("batch["):  # a bad event in a batch: 200 for the rest, the bad one named
        assert resp.status_code == 200, resp.text
        [err] = resp.json()["rejected"]
        assert resp.json()["accepted"] == len(body["batch"]) - 1 and err["index"] == int(field[6:].split("]")[0])
    else:
        assert resp.status_code == 400, resp.text
        err = _error(resp)
    assert err["field"] == field
    assert words in err["error"]


def test_a_batch_refused_whole_writes_nothing(server) -> None:
    c = server.client
    good = _search("hose") | {"type": "track"}
    before = c.get("/admin/stats", headers=ADMIN).json()["events_accepted"]
    resp = c.post("/v1/batch", json={"batch": [good], "sentAt": 5}, headers={"Authorization": "Basic bm9wZTo="})
    assert resp.status_code == 401
    resp = c.post("/v1/batch", json={"batch": good}, headers=KEY)
    assert resp.status_code == 400 and resp.json()["field"] == "batch"
    assert c.get("/admin/stats", headers=ADMIN).json()["events_accepted"] == before


def test_size_limits(server) -> None:
    c = server.client
    big = _search("x", properties={"blob": "y" * 33_000})
    resp = c.post("/v1/track", json=big, headers=KEY)
    assert resp.status_code == 413 and "limit is 32,768" in _error(resp)["error"]
    # A batch under 500 KB whose one event is over 32 KB names that event.
    resp = c.post("/v1/batch", json={"batch": [_search("a") | {"type": "track"}, big | {"type": "track"}]},
                  headers=KEY)
    assert resp.status_code == 200 and resp.json()["accepted"] == 1
    assert resp.json()["rejected"][0]["field"] == "batch[1]" and "limit is 32,768" in resp.json()["rejected"][0]["error"]
    events = [_search("q" * 20, properties={"pad": "z" * 1000}) | {"type": "track"} for _ in range(520)]
    resp = c.post("/v1/batch", json={"batch": events}, headers=KEY)
    assert resp.status_code == 413 and "limit is 512,000" in _error(resp)["error"]
    # Just under the limits is fine.
    assert c.post("/v1/batch", json={"batch": events[:400]}, headers=KEY).status_code == 200
    assert c.post("/v1/track", json=_search("x", properties={"blob": "y" * 30_000}), headers=KEY).status_code == 200


def test_rate_limit_per_write_key(tmp_path: Path) -> None:
    cfg = _config(tmp_path, rate=2)
    with ThreadServer(cfg, db_path=tmp_path / "s.duckdb", data_dir=tmp_path) as srv, \
            httpx.Client(base_url=srv.url, timeout=10) as c:
        started = time.monotonic()
        codes = [c.post("/v1/track", json=_search("x"), headers=KEY).status_code for _ in range(30)]
        elapsed = time.monotonic() - started
        assert codes[:4] == [200] * 4  # the burst (2 s worth)
        # Beyond the burst, at most 2 per second got through, however slow the machine was.
        assert codes.count(200) <= 4 + 2 * elapsed + 1
        assert codes.count(429) >= 10
        resp = c.post("/v1/track", json=_search("x"), headers=KEY)
        assert resp.status_code == 429 and int(resp.headers["retry-after"]) >= 1
        assert "rate limit of 2 requests/s for source 'test'" in _error(resp)["error"]
        # Another key has its own bucket.
        assert c.post("/v1/track", json=_search("x"), headers=basic("wk_slow")).status_code == 200
        time.sleep(0.6)  # tokens come back
        assert c.post("/v1/track", json=_search("x"), headers=KEY).status_code == 200


def test_idempotent_by_message_id_and_stored_in_the_background(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    db = tmp_path / "s.duckdb"
    first = _search("how to tile a bathroom", messageId="dup-1")
    batch = [_search(f"paint {i}") | {"type": "track"} for i in range(50)]
    no_id = {"anonymousId": "a-noid", "event": "Viewed", "timestamp": "2026-09-01T10:00:00Z"}
    with ThreadServer(cfg, db_path=db, data_dir=tmp_path) as srv, httpx.Client(base_url=srv.url, timeout=10) as c:
        for _ in range(3):
            assert c.post("/v1/track", json=first, headers=KEY).status_code == 200
            assert c.post("/v1/track", json=no_id, headers=KEY).status_code == 200  # same body, same id
        assert c.post("/v1/batch", json={"batch": batch + [first | {"type": "track"}]}, headers=KEY).status_code == 200
        assert c.post("/v1/batch", json={"batch": batch}, headers=KEY).status_code == 200  # a client retry
        stats = c.get("/admin/stats", headers=ADMIN).json()
        assert stats["events_accepted"] == 52 and stats["duplicates"] == 4 + 1 + 50
        # No flush: the loader moves the WAL into the store on its own (every 200 ms).
        deadline = time.monotonic() + 15
        while c.get("/admin/stats", headers=ADMIN).json()["store"]["events"] < 52:
            assert time.monotonic() < deadline, "events did not reach the store"
            time.sleep(0.1)
        assert c.get("/health").json()["wal_pending_segments"] == 0
    # The server is gone; the store holds each event once, mapped like a file ingest.
    store = Store(db)  # read-write: the /app pages of this process may still hold the file open
    assert store.count("events") == 52 and store.count("quarantine") == 0
    row = store.duck.execute("SELECT query, channel, source, received_at IS NOT NULL, user_id FROM events "
                             "WHERE message_id = 'dup-1'").fetchone()
    assert row == ("how to tile a bathroom", "web", "api", True, first["userId"])
    # No messageId: the id is a hash of the body, so the retries collapsed into one row.
    assert store.duck.execute("SELECT count(*) FROM events WHERE anonymous_id = 'a-noid' "
                              "AND message_id LIKE 'h:%'").fetchone()[0] == 1
    store.close()
    assert not list((tmp_path / "wal").glob("wal-*.jsonl"))  # everything moved into the store


def test_decide_calls_the_activator_and_logs(server) -> None:
    c = server.client
    act = server.app.state.activator
    resp = c.post("/v1/decide", json={"userId": "u-decide", "context": {"channel": "web"}}, headers=KEY)
    assert resp.status_code == 200
    body = resp.json()
    if act is None:
        assert body["status"] == "no_activator"
    else:
        assert body["person_id"] == "u-decide" and body["status"]
    assert c.post("/v1/decide", json={"userId": "u"}).status_code == 401


def test_openapi_schema_describes_every_endpoint(server) -> None:
    schema = server.client.get("/openapi.json").json()
    comps = schema["components"]["schemas"]
    for path in ("/v1/track", "/v1/page", "/v1/screen", "/v1/identify", "/v1/alias", "/v1/group",
                 "/v1/batch", "/v1/decide"):
        op = schema["paths"][path]["post"]
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.rsplit("/", 1)[1] in comps
        assert {"200", "400", "401"} <= set(op["responses"])
    assert "event" in comps["TrackEvent"]["required"]
    assert comps["BatchRequest"]["properties"]["batch"]["items"]["discriminator"]["propertyName"] == "type"
    # Every $ref resolves.
    text = orjson.dumps(schema).decode()
    import re

    for name in set(re.findall(r'"#/components/schemas/([^"]+)"', text)):
        assert name in comps, name


def test_events_feed_the_live_profile_and_decisions_reach_the_store(tmp_path: Path) -> None:
    engine = pytest.importorskip("micromoments.activation.engine")
    from micromoments.activation.wal_loader import LogSink

    cfg = _config(tmp_path)
    sink = LogSink()
    activator = engine.Activator(cfg, log_sink=sink)
    db = tmp_path / "s.duckdb"
    with ThreadServer(cfg, db_path=db, data_dir=tmp_path, activator=activator, log_sink=sink) as srv, \
            httpx.Client(base_url=srv.url, timeout=10) as c:
        t = _now()
        assert c.post("/v1/page", json={"userId": "u-live", "name": "Home", "timestamp": t}, headers=KEY).status_code == 200
        assert c.post("/v1/track", json={"userId": "u-live", "event": "Products Searched", "timestamp": t,
                                         "properties": {"query": "garden centre near me open now"}},
                      headers=KEY).status_code == 200
        assert srv.app.state.bus.drain(10)
        profile = c.get("/admin/profiles/u-live", headers=ADMIN).json()
        assert profile["person_id"] == "u-live" and profile["events"] == 2
        assert profile["moment"] == "go"
        decision = c.post("/v1/decide", json={"userId": "u-live", "context": {"channel": "web"}}, headers=ADMIN).json()
        assert decision["person_id"] == "u-live" and decision["moment"] == "go"
        assert c.post("/admin/flush", headers=ADMIN).status_code == 200
        # (the background loader may have taken part of it before the flush)
        assert c.get("/admin/stats", headers=ADMIN).json()["store"]["events"] == 2
    store = Store(db)
    assert store.duck.execute("SELECT count(*) FROM decisions WHERE person_id = 'u-live'").fetchone()[0] >= 1
    store.close()


def test_serve_refuses_to_start_without_write_keys(tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from micromoments.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["serve", "--db", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 2
    assert "no write keys configured" in result.output and "--dev" in result.output


def test_serve_refuses_a_negative_fsync_interval_in_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from micromoments.cli import app

    config = tmp_path / "micromoments.toml"
    config.write_text('[server]\nfsync_interval_ms = -5\nwrite_keys = {"k" = "web"}\n')
    result = CliRunner().invoke(app, ["serve", "--config", str(config), "--db", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 2
    assert "[server] fsync_interval_ms" in result.output and str(config) in result.output
    assert "must be 0 or more" in result.output
