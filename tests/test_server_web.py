"""The collector and /v1/decide as a web page calls them: CORS, Analytics Next's short paths and
text/plain bodies, sendBeacon, the settings endpoint, and decide with only the public write key."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import httpx
import pytest

from _server_harness import ThreadServer, basic, bearer
from micromoments.config import Config
from micromoments.server.endpoints import PUBLIC_CONTENT

SHOP = "https://shop.example"
ADMIN = bearer("adm_web")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from micromoments.activation.engine import Activator
    from micromoments.activation.wal_loader import LogSink

    tmp = tmp_path_factory.mktemp("web")
    cfg = Config()
    cfg.store.path = str(tmp / "store.duckdb")
    cfg.server.write_keys = {"wk_web": "web"}
    cfg.server.admin_tokens = ["adm_web"]
    cfg.server.allowed_origins = [SHOP, "http://127.0.0.1:*"]
    cfg.server.decide_rate_limit_per_second = 5
    cfg.server.demo_page = True
    cfg.server.trusted_proxies = ["127.0.0.1"]  # the tests' requests stand in for a TLS proxy's
    cfg.server.flush_interval_ms = 100
    sink = LogSink()
    activator = Activator(cfg, log_sink=sink)
    with ThreadServer(cfg, db_path=tmp / "store.duckdb", data_dir=tmp, activator=activator, log_sink=sink) as srv:
        srv.client = httpx.Client(base_url=srv.url, timeout=10)
        yield srv
        srv.client.close()


def _query(server, sql: str, params: list | None = None) -> list[tuple]:
    assert server.client.post("/admin/flush", headers=ADMIN).status_code == 200
    loader = server.app.state.loader
    with loader._lock:
        return loader.store.duck.execute(sql, params or []).fetchall()


def _preflight(c: httpx.Client, path: str, origin: str, headers: str = "content-type") -> httpx.Response:
    return c.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                    "Access-Control-Request-Headers": headers})


def test_cors_preflight_for_allowed_origins_only(server) -> None:
    c = server.client
    for path in ("/v1/decide", "/v1/t", "/v1/batch", "/v1/track"):
        r = _preflight(c, path, SHOP, "authorization, content-type")
        assert r.status_code == 204, (path, r.text)
        assert r.headers["access-control-allow-origin"] == SHOP
        assert "POST" in r.headers["access-control-allow-methods"]
        assert r.headers["access-control-allow-headers"] == "authorization, content-type"
        assert "access-control-allow-credentials" not in r.headers  # never with credentials
    assert _preflight(c, "/v1/decide", "http://127.0.0.1:5173").status_code == 204  # any local port
    refused = _preflight(c, "/v1/decide", "https://evil.example")
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    assert _preflight(c, "/v1/decide", SHOP, "x-custom-header").status_code == 403
    # Admin routes and the pages never answer cross-origin.
    r = _preflight(c, "/admin/stats", SHOP)
    assert "access-control-allow-origin" not in r.headers
    r = c.get("/admin/stats", headers={**ADMIN, "Origin": SHOP})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_responses_carry_the_origin_only_when_allowed(server) -> None:
    c = server.client
    body = json.dumps({"writeKey": "wk_web", "event": "Viewed", "anonymousId": "a-cors"})
    ok = c.post("/v1/t", content=body, headers={"Content-Type": "text/plain", "Origin": SHOP})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == SHOP
    assert "Origin" in ok.headers["vary"]
    evil = c.post("/v1/t", content=body, headers={"Content-Type": "text/plain", "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in evil.headers


def test_analytics_next_short_paths_with_text_plain_bodies(server) -> None:
    c = server.client
    anon = "a-short-" + uuid.uuid4().hex[:6]
    now = dt.datetime.now(dt.UTC).isoformat()
    calls = {"t": {"type": "track", "event": "Products Searched", "properties": {"query": "paint near me"}},
             "p": {"type": "page", "name": "Home", "properties": {"url": "https://shop.example/"}},
             "s": {"type": "screen", "name": "Cart"},
             "i": {"type": "identify", "userId": "u-" + anon, "traits": {"plan": "pro"}},
             "g": {"type": "group", "groupId": "g-1", "userId": "u-" + anon},
             "a": {"type": "alias", "previousId": anon, "userId": "u-" + anon}}
    ids = {}
    for path, body in calls.items():
        ids[path] = mid = uuid.uuid4().hex
        event = {"writeKey": "wk_web", "anonymousId": anon, "messageId": mid, "timestamp": now,
                 "sentAt": now, **body}
        r = c.post(f"/v1/{path}", content=json.dumps(event), headers={"Content-Type": "text/plain;charset=UTF-8"})
        assert r.status_code == 200, (path, r.text)
    batch = {"writeKey": "wk_web", "sentAt": now, "batch": [
        {"type": "track", "event": "Batched", "anonymousId": anon, "messageId": (b1 := uuid.uuid4().hex)},
        {"type": "page", "name": "Two", "anonymousId": anon, "messageId": (b2 := uuid.uuid4().hex)}]}
    assert c.post("/v1/b", content=json.dumps(batch), headers={"Content-Type": "text/plain"}).status_code == 200
    assert c.post("/v1/m", content=b'{"series": []}', headers={"Content-Type": "text/plain"}).status_code == 200
    got = dict(_query(server, "SELECT message_id, type FROM events WHERE message_id IN (SELECT unnest(?))",
                      [[*ids.values(), b1, b2]]))
    assert got == {**{mid: calls[p]["type"] for p, mid in ids.items()}, b1: "track", b2: "page"}
    # the wrong type for a short path, and no key
    r = c.post("/v1/t", content=json.dumps({"writeKey": "wk_web", "type": "page", "anonymousId": anon}))
    assert r.status_code == 400 and r.json()["field"] == "type"
    assert c.post("/v1/t", content=json.dumps({"event": "x", "anonymousId": anon})).status_code == 401


def test_send_beacon_bodies(server) -> None:
    """navigator.sendBeacon(url, string): a text/plain;charset=UTF-8 POST, no custom headers, cookies omitted."""
    c = server.client
    mid = uuid.uuid4().hex
    body = json.dumps({"writeKey": "wk_web", "type": "track", "event": "Content Clicked", "anonymousId": "a-beacon",
                       "messageId": mid, "properties": {"decision_id": "d-beacon"}})
    r = c.post("/v1/t", content=body.encode(), headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": SHOP})
    assert r.status_code == 200
    assert c.post("/v1/t", content=body.encode(), headers={"Content-Type": "text/plain;charset=UTF-8"}).status_code == 200
    assert _query(server, "SELECT count(*) FROM events WHERE message_id = ?", [mid]) == [(1,)]  # a re-sent beacon


def test_settings_point_analytics_next_back_here(server) -> None:
    c = server.client
    r = c.get("/v1/projects/wk_web/settings", headers={"Origin": SHOP})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == SHOP
    seg = r.json()["integrations"]["Segment.io"]
    assert seg["apiKey"] == "wk_web" and seg["apiHost"] == f"127.0.0.1:{server.port}/v1" and seg["protocol"] == "http"
    assert c.get("/v1/projects/wk_nope/settings").status_code == 404
    behind = c.get("/v1/projects/wk_web/settings", headers={"X-Forwarded-Proto": "https",
                                                              "X-Forwarded-Host": "mm.shop.example"})
    seg = behind.json()["integrations"]["Segment.io"]
    assert (seg["apiHost"], seg["protocol"]) == ("mm.shop.example/v1", "https")


def test_decide_with_a_write_key_returns_the_content_and_nothing_else(server) -> None:
    c = server.client
    anon, user = "a-dec-" + uuid.uuid4().hex[:6], "u-dec-" + uuid.uuid4().hex[:6]
    now = dt.datetime.now(dt.UTC).isoformat()
    key = basic("wk_web")
    assert c.post("/v1/identify", json={"anonymousId": anon, "userId": user, "traits": {"email": "x@y.z"},
                                        "timestamp": now}, headers=key).status_code == 200
    assert c.post("/v1/track", json={"userId": user, "event": "Products Searched", "timestamp": now,
                                     "properties": {"query": "garden centre near me open now"}},
                  headers=key).status_code == 200
    assert server.app.state.bus.drain(10)
    body = json.dumps({"writeKey": "wk_web", "anonymousId": anon, "context": {"channel": "web", "lat": 53.8,
                                                                                "lon": -1.55}})
    r = c.post("/v1/decide", content=body, headers={"Content-Type": "text/plain", "Origin": SHOP})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == SHOP
    public = r.json()
    assert set(public) == {"decision_id", "status", "content_id", "content"}, public
    assert public["status"] == "chosen" and public["content_id"] == "store-finder-web"
    assert set(public["content"]) <= set(PUBLIC_CONTENT)
    text = r.text
    for leak in (user, "x@y.z", "person_id", "persona", "propensity", "moment", "stage"):
        assert leak not in text, leak
    # The admin token still gets the whole decision (server-side callers).
    full = c.post("/v1/decide", json={"anonymousId": anon, "context": {"channel": "web"}}, headers=ADMIN).json()
    assert full["person_id"] == user and full["moment"] == "go"


def test_decide_is_rate_limited_per_key_and_address(server) -> None:
    c = server.client
    body = json.dumps({"writeKey": "wk_web", "anonymousId": "a-flood"})
    codes = [c.post("/v1/decide", content=body, headers={"Content-Type": "text/plain"}).status_code
             for _ in range(30)]
    assert codes.count(200) >= 5 and codes[-1] == 429
    r = c.post("/v1/decide", content=body)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    # per address: behind the (trusted) proxy, another visitor still gets answers
    other = {"Content-Type": "text/plain", "X-Forwarded-For": "203.0.113.7"}
    assert c.post("/v1/decide", content=body, headers=other).status_code == 200
    # the admin token is not limited by the page limit
    assert c.post("/v1/decide", json={"anonymousId": "a-flood"}, headers=ADMIN).status_code == 200


def test_script_and_demo_pages_are_served(server) -> None:
    c = server.client
    r = c.get("/js/micromoments.js", headers={"Origin": SHOP})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.headers["access-control-allow-origin"] == SHOP
    script = r.text
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "eval(" not in script
    assert len(script.encode()) < 16_000
    for page in ("/demo", "/demo/product", "/demo/store"):
        r = c.get(page)
        assert r.status_code == 200 and 'data-mm-slot="hero"' in r.text and "<script>" not in r.text
    assert c.get("/js/demo.js").status_code == 200
    assert c.get("/js/analytics-next/index.js").status_code == 404  # no bundle configured
