"""The collector's other wire formats: compressed bodies, PostHog's capture API, GA4's Measurement Protocol.

The GA4 payloads are built from the examples in Google's Measurement Protocol guides
(developers.google.com/analytics/devguides/collection/protocol/ga4: "Send events",
"Validate events", the recommended-events reference): the campaign_details and
tutorial_begin events, an ecommerce purchase with items, user_properties, and the
`_badEventName` event of the validation guide.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import uuid
import zlib
from pathlib import Path

import httpx
import pytest

from _server_harness import ThreadServer, basic, bearer
from micromoments.config import Config

KEY = basic("wk_wire")
ADMIN = bearer("adm_wire")
GA4 = "/mp/collect?measurement_id=G-XXXXXXXXXX&api_secret=ga4_secret"
GA4_DEBUG = "/debug/mp/collect?measurement_id=G-XXXXXXXXXX&api_secret=ga4_secret"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wire")
    cfg = Config()
    cfg.store.path = str(tmp / "store.duckdb")
    cfg.server.write_keys = {"wk_wire": "web"}
    cfg.server.admin_tokens = ["adm_wire"]
    cfg.server.posthog_keys = {"phc_project": "posthog-web"}
    cfg.server.ga4_api_secrets = {"ga4_secret": "ga4-site"}
    cfg.server.flush_interval_ms = 100
    cfg.server.rate_limit_per_second = 0
    with ThreadServer(cfg, db_path=tmp / "store.duckdb", data_dir=tmp) as srv:
        srv.client = httpx.Client(base_url=srv.url, timeout=10)
        yield srv
        srv.client.close()


def _query(server, sql: str, params: list) -> list[tuple]:
    """Rows of the server's store after a flush (through the loader's own connection)."""
    assert server.client.post("/admin/flush", headers=ADMIN).status_code == 200
    loader = server.app.state.loader
    with loader._lock:
        return loader.store.duck.execute(sql, params).fetchall()


def _rows(server, where: str, params: list) -> list[tuple]:
    return _query(server, "SELECT type, event, anonymous_id, user_id, person_id, page_url, revenue, query "
                          f"FROM events WHERE {where} ORDER BY ts, message_id", params)


def _batch(mid: str, **extra) -> bytes:
    return json.dumps({"batch": [{"type": "track", "event": "Compressed", "userId": "u-zip", "messageId": mid,
                                  **extra}]}).encode()


# -- Content-Encoding ------------------------------------------------------------------------

@pytest.mark.parametrize("encoding,compress", [
    ("gzip", gzip.compress), ("x-gzip", gzip.compress), ("deflate", zlib.compress),
    ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some clients send it
    ("gzip, identity", gzip.compress), (None, lambda b: b),
])
def test_compressed_bodies_are_accepted_on_every_route(server, encoding, compress) -> None:
    c = server.client
    headers = {**KEY, **({"Content-Encoding": encoding} if encoding else {})}
    mid = uuid.uuid4().hex
    assert c.post("/v1/batch", content=compress(_batch(mid)), headers=headers).status_code == 200
    single = json.dumps({"event": "Compressed", "userId": "u-zip", "messageId": mid + "-1"}).encode()
    assert c.post("/v1/track", content=compress(single), headers=headers).status_code == 200
    ph = json.dumps({"api_key": "phc_project", "batch": [{"event": "zipped", "distinct_id": "d-zip",
                                                          "uuid": str(uuid.uuid4())}]}).encode()
    assert c.post("/batch/", content=compress(ph), headers=headers).status_code == 200
    ga = json.dumps({"client_id": "1.2", "events": [{"name": "zipped", "params": {"n": mid}}]}).encode()
    assert c.post(GA4, content=compress(ga), headers=headers).status_code == 204


def test_a_gzip_bomb_gets_413_and_other_encodings_415(server) -> None:
    c = server.client
    bomb = gzip.compress(b" " * 50_000_000)  # 50 MB of spaces: about 50 KB on the wire
    assert len(bomb) < 100_000
    r = c.post("/v1/batch", content=bomb, headers={**KEY, "Content-Encoding": "gzip"})
    assert r.status_code == 413 and "once decompressed" in r.json()["error"]
    r = c.post("/v1/track", content=gzip.compress(b"x" * 100_000), headers={**KEY, "Content-Encoding": "gzip"})
    assert r.status_code == 413
    for enc in ("br", "zstd", "compress"):
        r = c.post("/v1/batch", content=_batch("never"), headers={**KEY, "Content-Encoding": enc})
        assert r.status_code == 415 and r.json()["field"] == "Content-Encoding", enc
    r = c.post("/v1/batch", content=b"\x1f\x8b not gzip at all", headers={**KEY, "Content-Encoding": "gzip"})
    assert r.status_code == 400 and "gzip" in r.json()["error"]
    truncated = gzip.compress(_batch("trunc"))[:-12]
    r = c.post("/v1/batch", content=truncated, headers={**KEY, "Content-Encoding": "gzip"})
    assert r.status_code == 400


def test_write_key_in_the_body_and_sent_at_clock_skew(server) -> None:
    """Segment's rule: timestamp = receivedAt - (sentAt - originalTimestamp)."""
    c = server.client
    now = dt.datetime.now(dt.UTC)
    skewed = now + dt.timedelta(hours=3)  # the device clock is three hours fast
    event = {"type": "track", "event": "Skewed", "anonymousId": "a-skew", "messageId": "skew-1",
             "originalTimestamp": (skewed - dt.timedelta(minutes=5)).isoformat()}
    r = c.post("/v1/batch", json={"writeKey": "wk_wire", "batch": [event], "sentAt": skewed.isoformat()})
    assert r.status_code == 200
    ((ts,),) = _query(server, "SELECT ts FROM events WHERE message_id = 'skew-1'", [])
    expected = now.replace(tzinfo=None) - dt.timedelta(minutes=5)
    assert abs((ts - expected).total_seconds()) < 5


# -- PostHog ---------------------------------------------------------------------------------

def _ph(event: str, distinct_id: str, **props) -> dict:
    return {"event": event, "distinct_id": distinct_id, "uuid": str(uuid.uuid4()),
            "timestamp": dt.datetime.now(dt.UTC).isoformat(), "properties": props}


def test_posthog_routes_and_encodings_map_like_the_export_reader(server) -> None:
    c = server.client
    anon, user = "ph-anon-" + uuid.uuid4().hex[:6], "ph-user-" + uuid.uuid4().hex[:6]
    page = _ph("$pageview", anon, **{"$current_url": "https://shop.example/paint?q=1", "$title": "Paint"})
    search = _ph("Products Searched", anon, **{"$search": "paint near me"})
    ident = _ph("$identify", user, **{"$anon_distinct_id": anon, "$set": {"plan": "pro"}})
    after = _ph("Order Completed", user, revenue=42.0)
    # /batch/ with api_key in the body (posthog-python), gzipped
    body = gzip.compress(json.dumps({"api_key": "phc_project", "batch": [page, search]}).encode())
    assert c.post("/batch/", content=body, headers={"Content-Encoding": "gzip"}).status_code == 200
    # /e/ as posthog-js sends it: a form body data=<base64 JSON>, the token in properties
    ident["properties"]["token"] = "phc_project"
    form = "data=" + base64.b64encode(json.dumps([ident]).encode()).decode()
    r = c.post("/e/", content=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and r.json() == {"status": 1}
    # /i/v0/e/ with posthog-js's ?compression=gzip-js, and /capture/ with one event
    after_body = gzip.compress(json.dumps({"api_key": "phc_project", **after}).encode())
    assert c.post("/i/v0/e/?compression=gzip-js", content=after_body).status_code == 200
    assert c.post("/capture/", json={"api_key": "phc_project", **after}).status_code == 200  # a retry: one row
    rows = _rows(server, "person_id = ?", [user])
    by_type = {(r[0], r[1]): r for r in rows}
    assert len(rows) == 4, rows
    assert by_type[("page", None)][5] == "https://shop.example/paint?q=1"
    assert by_type[("track", "Products Searched")][7] == "paint near me"
    assert by_type[("identify", None)][2:4] == (anon, user)
    assert by_type[("track", "Order Completed")][6] == 42.0
    assert {r[4] for r in rows} == {user}  # stitched: the anonymous events belong to the user
    # each project key is a source
    assert server.client.get("/admin/stats", headers=ADMIN).json()["sources"]["posthog-web"] >= 3


def test_posthog_refuses_unknown_keys_and_bad_events(server) -> None:
    c = server.client
    r = c.post("/batch/", json={"api_key": "phc_nope", "batch": [_ph("x", "d")]})
    assert r.status_code == 401 and r.json()["field"] == "api_key"
    assert c.post("/batch/", json={"batch": [_ph("x", "d")]}).status_code == 401
    # A mixed batch keeps the good events; each bad one is quarantined with its reason and named.
    good = _ph("kept", "d-mixed")
    no_name = {"distinct_id": "d-mixed", "uuid": str(uuid.uuid4())}
    nobody = {"event": "x", "uuid": str(uuid.uuid4()), "properties": {}}
    r = c.post("/batch/", json={"api_key": "phc_project", "batch": [good, no_name, nobody]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == 1 and body["accepted"] == 1, body
    assert [(x["index"], x["field"]) for x in body["rejected"]] == [(1, "batch[1].event"), (2, "batch[2].userId")], body
    assert _query(server, "SELECT count(*) FROM events WHERE message_id = ?", [good["uuid"]]) == [(1,)]
    reasons = _query(server, "SELECT reason FROM quarantine WHERE raw LIKE ? OR raw LIKE ? ORDER BY line",
                     [f"%{no_name['uuid']}%", f"%{nobody['uuid']}%"])
    assert len(reasons) == 2 and "event name" in reasons[0][0], reasons
    assert c.post("/e/", content=b"data=%%%not-base64", headers={
        "Content-Type": "application/x-www-form-urlencoded"}).status_code == 400


# -- GA4 Measurement Protocol ------------------------------------------------------------------

def _google_examples(client_id: str) -> list[dict]:
    """Request bodies shaped as in Google's Measurement Protocol guides."""
    return [
        {"client_id": client_id, "events": [{"name": "campaign_details", "params": {
            "campaign_id": "google_1234", "campaign": "Summer_fun", "source": "google", "medium": "cpc",
            "term": "summer+travel", "content": "logolink", "session_id": "123", "engagement_time_msec": "100"}}]},
        {"client_id": client_id, "events": [{"name": "tutorial_begin", "params": {}}]},
        {"client_id": client_id, "user_id": client_id + "-user",
         "user_properties": {"customer_tier": {"value": "premium"}},
         "events": [
             {"name": "page_view", "params": {"page_location": "https://shop.example/garden",
                                              "page_title": "Garden", "page_referrer": "https://www.google.com/"}},
             {"name": "search", "params": {"search_term": "garden centre near me"}},
             {"name": "view_item", "params": {"currency": "USD", "value": 7.77, "items": [
                 {"item_id": "SKU_12345", "item_name": "Stan and Friends Tee", "price": 9.99, "quantity": 1}]}},
             {"name": "add_to_cart", "params": {"currency": "USD", "value": 7.77, "items": [
                 {"item_id": "SKU_12345", "item_name": "Stan and Friends Tee", "price": 9.99, "quantity": 1}]}},
             {"name": "purchase", "params": {"transaction_id": "T_12345", "currency": "USD", "value": 30.03,
                                             "tax": 4.90, "shipping": 5.99, "coupon": "SUMMER_FUN", "items": [
                 {"item_id": "SKU_12345", "item_name": "Stan and Friends Tee", "price": 10.01, "quantity": 3}]}},
         ]},
    ]


def test_ga4_measurement_protocol_replays_googles_examples(server) -> None:
    c = server.client
    client_id = f"{uuid.uuid4().int % 10**9}.{uuid.uuid4().int % 10**9}"
    micros = int(dt.datetime.now(dt.UTC).timestamp() * 1e6) - 60_000_000
    for body in _google_examples(client_id):
        body["timestamp_micros"] = micros
        debug = c.post(GA4_DEBUG, json=body)
        assert debug.status_code == 200 and debug.json() == {"validationMessages": []}, debug.text
        r = c.post(GA4, json=body)
        assert r.status_code == 204, r.text
        assert c.post(GA4, json=body).status_code == 204  # a retry with the same timestamp: stored once
    rows = _rows(server, "anonymous_id = ?", [client_id])
    got = {r[1] or r[0]: r for r in rows}
    assert len(rows) == 7, rows
    assert set(got) == {"campaign_details", "tutorial_begin", "page", "search", "view_item", "add_to_cart",
                        "purchase"}
    assert got["page"][5] == "https://shop.example/garden"
    assert got["search"][7] == "garden centre near me"
    assert got["purchase"][6] == 30.03 and not got["add_to_cart"][6]  # value is revenue on purchase only
    assert got["purchase"][3] == client_id + "-user" and got["purchase"][4] == client_id + "-user"
    assert {r[2] for r in rows} == {client_id}


def test_ga4_debug_answers_validation_messages_and_collect_refuses(server) -> None:
    c = server.client
    bad = {"client_id": "1.2", "events": [{"name": "_badEventName", "params": {}}]}
    messages = c.post(GA4_DEBUG, json=bad).json()["validationMessages"]
    assert messages[0]["validationCode"] == "NAME_INVALID" and "_badEventName" in messages[0]["description"]
    # /mp/collect answers 204 as Google does; the bad event is in the quarantine with its reason,
    # the good one of the same request is stored.
    mixed = {"client_id": "ga-mixed", "timestamp_micros": int(dt.datetime.now(dt.UTC).timestamp() * 1e6),
             "events": [{"name": "_badEventName", "params": {}}, {"name": "tutorial_begin", "params": {}}]}
    assert c.post(GA4, json=mixed).status_code == 204
    assert [r[1] for r in _rows(server, "anonymous_id = 'ga-mixed'", [])] == ["tutorial_begin"]
    reasons = _query(server, "SELECT reason FROM quarantine WHERE raw LIKE '%_badEventName%'", [])
    assert reasons and "invalid name" in reasons[0][0]
    assert c.post(GA4, json={"events": [{"name": "e"}]}).status_code == 400  # no client_id: nothing to keep
    many = {"client_id": "1.2", "events": [{"name": "e", "params": {}}] * 26}
    assert c.post(GA4_DEBUG, json=many).json()["validationMessages"][0]["validationCode"] == "EXCEED_MAX_ENTITIES"
    reserved = {"client_id": "1.2", "events": [{"name": "session_start", "params": {"firebase_x": 1}}]}
    codes = [m["validationCode"] for m in c.post(GA4_DEBUG, json=reserved).json()["validationMessages"]]
    assert codes == ["NAME_RESERVED", "NAME_RESERVED"]
    nobody = {"events": [{"name": "e", "params": {}}]}
    assert c.post(GA4_DEBUG, json=nobody).json()["validationMessages"][0]["validationCode"] == "VALUE_REQUIRED"
    assert c.post(GA4_DEBUG, content=b"{oops").json()["validationMessages"][0]["validationCode"] == "VALUE_INVALID"
    r = c.post("/mp/collect?measurement_id=G-1&api_secret=wrong", json=_google_examples("1.2")[1])
    assert r.status_code == 401 and r.json()["field"] == "api_secret"
    assert c.post("/mp/collect?measurement_id=G-1", json=_google_examples("1.2")[1]).status_code == 401


def test_odd_bodies_never_get_a_server_error(server) -> None:
    c = server.client
    bodies = [b"", b"null", b"[]", b"[1, 2]", b'"text"', b"{}", b'{"batch": null}', b'{"batch": {}}',
              b'{"api_key": 5}', b'{"api_key": "phc_project", "batch": [null, 1, "x", [], {}]}',
              b'{"api_key": "phc_project", "event": 7, "distinct_id": {"a": 1}}',
              b'{"api_key": "phc_project", "event": "e", "distinct_id": "d", "properties": []}',
              b'{"api_key": "phc_project", "event": "e", "distinct_id": "d", "timestamp": "yesterday"}',
              b'{"client_id": 5, "events": "no"}', b'{"client_id": "1", "events": [null, 3, {"name": 4}]}',
              b'{"client_id": "1", "timestamp_micros": "abc", "events": [{"name": "e", "params": []}]}',
              b'{"client_id": "1", "user_properties": [], "events": [{"name": "e", "params": {"a": {"b": 1}}}]}',
              b'{"client_id": "1", "events": [{"name": "e", "timestamp_micros": 99999999999999999999}]}',
              b"data=", b"data=%%%", b"data=e30=", "data=\u00ff".encode(), b"\xff\xfe\x00"]
    paths = ["/batch/", "/e/?compression=gzip-js", "/capture/", "/i/v0/e/", GA4, GA4_DEBUG, "/v1/t", "/v1/b"]
    for path in paths:
        for body in bodies:
            for ctype in ("application/json", "application/x-www-form-urlencoded", "text/plain"):
                r = c.post(path, content=body, headers={"Content-Type": ctype})
                assert r.status_code < 500, (path, body, ctype, r.status_code, r.text)
