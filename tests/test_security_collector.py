"""The collector under hostile input (issue 18): mixed batches keep their good events and quarantine
the bad ones with index and reason; out-of-range times, coordinates and empty ids are refused; a
year-1 row that reached the store anyway takes no page down; arbitrary JSON never gets a 5xx and
never makes the live path raise."""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from _server_harness import ThreadServer, basic, bearer
from micromoments.config import Config
from micromoments.server.pages import hash_password, mount_pages
from test_report import make_store

pytestmark = pytest.mark.filterwarnings("ignore:The .future.infer_string. option")

KEY = basic("wk_sec")
ADMIN = bearer("adm_sec")


class Recorder:
    """The real activator, recording what the live path hands it (and raising what it raises)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.events: list[dict[str, Any]] = []

    def on_event(self, event: dict[str, Any]) -> None:
        assert event["person_id"], event  # an accepted event always names its person
        self.events.append(event)
        self.inner.on_event(event)

    def __getattr__(self, name: str) -> Any:  # decide, state, close ...
        return getattr(self.inner, name)


def _config(tmp: Path) -> Config:
    cfg = Config()
    cfg.store.path = str(tmp / "store.duckdb")
    cfg.server.write_keys = {"wk_sec": "sec"}
    cfg.server.admin_tokens = ["adm_sec"]
    cfg.server.rate_limit_per_second = 0
    cfg.server.flush_interval_ms = 200
    return cfg


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from micromoments.activation.engine import Activator
    from micromoments.activation.wal_loader import LogSink

    tmp = tmp_path_factory.mktemp("sec")
    cfg, sink = _config(tmp), LogSink()
    recorder = Recorder(Activator(cfg, log_sink=sink))
    with ThreadServer(cfg, db_path=tmp / "store.duckdb", data_dir=tmp, activator=recorder, log_sink=sink) as srv:
        srv.client = httpx.Client(base_url=srv.url, timeout=20)
        srv.recorder = recorder
        srv.db_path = tmp / "store.duckdb"
        yield srv
        srv.client.close()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _event(**extra: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Viewed", "userId": "u-" + uuid.uuid4().hex[:6], "timestamp": _now(),
            "messageId": uuid.uuid4().hex, **extra}


def _stored(srv, sql: str, params: list[Any]) -> list[tuple]:
    srv.client.post("/admin/flush", headers=ADMIN).raise_for_status()
    con = srv.app.state.loader.store.duck.cursor()
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def test_mixed_batch_keeps_the_good_events_and_quarantines_the_bad(server) -> None:
    good = [_event(), _event(properties={"revenue": 12.5})]
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(300):  # deeper than the JSON writer goes (254): once a 500
        node["x"] = {}
        node = node["x"]
    bad = {
        1: (_event(timestamp="0001-01-01T00:00:00Z"), "timestamp", "outside the accepted range"),
        2: (_event(sentAt="9999-12-31T23:59:59Z"), "sentAt", "outside the accepted range"),
        4: (_event(userId="", anonymousId=None), "userId", "neither anonymousId nor userId"),
        5: (_event(context={"location": {"latitude": 999, "longitude": 3}}), "context.location.latitude",
            "outside -90..90"),
        6: (_event(properties=deep), None, "cannot be stored"),
    }
    batch = [good[0], bad[1][0], bad[2][0], good[1], bad[4][0], bad[5][0], bad[6][0]]
    resp = server.client.post("/v1/batch", json={"batch": batch}, headers=KEY)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["success"] is True and body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == sorted(bad)
    for r in body["rejected"]:
        _, field, words = bad[r["index"]]
        if field:
            assert r["field"] == f"batch[{r['index']}].{field}"
        assert words in r["error"], r
    # A retry of the same batch (the SDK did not see the answer) stores nothing twice.
    assert server.client.post("/v1/batch", json={"batch": batch}, headers=KEY).status_code == 200
    ids = [e["messageId"] for e in good]
    rows = _stored(server, "SELECT message_id, count(*) FROM events WHERE message_id IN (?, ?) GROUP BY 1", ids)
    assert sorted(rows) == sorted((i, 1) for i in ids)
    quarantined = _stored(server, "SELECT line, field, reason, raw FROM quarantine WHERE source = 'api' "
                                  "AND raw LIKE ? ORDER BY line", [f"%{bad[1][0]['messageId']}%"])
    assert quarantined and quarantined[0][0] == 1 and quarantined[0][1] == "batch[1].timestamp"
    assert "outside the accepted range" in quarantined[0][2]
    total = _stored(server, "SELECT count(*) FROM quarantine WHERE source = 'api'", [])[0][0]
    assert total >= 2 * len(bad)  # both copies of every bad event are kept, none lost
    # Nothing refused ever reached the live path, and nothing it got made it raise.
    live_ids = {e["message_id"] for e in server.recorder.events}
    assert set(ids) <= live_ids and not live_ids & {b[0]["messageId"] for b in bad.values()}
    assert server.client.get("/admin/stats", headers=ADMIN).json()["bus"]["handler_errors"] == 0


def test_single_events_out_of_range_get_400_and_are_quarantined(server) -> None:
    e = _event(timestamp="0001-01-01T00:00:00Z")
    resp = server.client.post("/v1/track", json=e, headers=KEY)
    assert resp.status_code == 400 and resp.json()["field"] == "timestamp"
    assert "2000-01-01" in resp.json()["error"]
    rows = _stored(server, "SELECT reason FROM quarantine WHERE raw LIKE ?", [f"%{e['messageId']}%"])
    assert len(rows) == 1 and "outside the accepted range" in rows[0][0]
    # An empty userId with an anonymousId is no userId: stored under the anonymous id.
    e = _event(userId="", anonymousId="anon-" + uuid.uuid4().hex[:6])
    assert server.client.post("/v1/track", json=e, headers=KEY).status_code == 200
    [(user, person)] = _stored(server, "SELECT user_id, person_id FROM events WHERE message_id = ?", [e["messageId"]])
    assert user is None and person == e["anonymousId"]
    # Coordinates out of range in either place.
    for loc in ({"context": {"location": {"latitude": 12, "longitude": 999}}}, {"properties": {"latitude": -91}}):
        r = server.client.post("/v1/track", json=_event(**loc), headers=KEY)
        assert r.status_code == 400 and "outside" in r.json()["error"], r.text


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(max_size=20), lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
KEYS = st.sampled_from(["type", "event", "userId", "anonymousId", "messageId", "timestamp", "sentAt",
                        "originalTimestamp", "properties", "context", "traits", "previousId", "batch", "writeKey"])
EVENTISH = st.dictionaries(KEYS, JSON | st.sampled_from(["track", "page", "0001-01-01T00:00:00Z", "", "\x00",
                                                         "9999-12-31T23:59:59Z", 1e308, -1e308, 2**70]),
                           max_size=8)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(body=st.one_of(EVENTISH, JSON, st.lists(EVENTISH, max_size=3).map(lambda b: {"batch": b})),
       path=st.sampled_from(["/v1/track", "/v1/page", "/v1/identify", "/v1/alias", "/v1/batch", "/v1/decide"]))
def test_arbitrary_json_never_gets_a_5xx(server, body, path) -> None:
    resp = server.client.post(path, json=body, headers=KEY)
    assert resp.status_code < 500, (path, body, resp.text)
    if resp.status_code == 200 and path != "/v1/decide":
        assert resp.json()["success"] is True
    # The live path (mapping + the real activator) never raised on an accepted event so far.
    assert server.client.get("/admin/stats", headers=ADMIN).json()["bus"]["handler_errors"] == 0


def test_year_one_row_in_the_store_takes_no_page_down(tmp_path: Path) -> None:
    """Data loaded before the range existed (or by hand): the pages compute panel by panel."""
    path = tmp_path / "s.duckdb"
    store = make_store(path, people=80)
    store.duck.execute("UPDATE events SET ts = TIMESTAMP '0001-01-01 00:00:00', timezone = 'Europe/Paris' "
                       "WHERE rowid IN (SELECT rowid FROM events LIMIT 3)")
    store.duck.execute("UPDATE events SET lat = 999, revenue = 1e308 WHERE rowid IN (SELECT rowid FROM events "
                       "LIMIT 3 OFFSET 10)")
    store.close()
    app = FastAPI()
    cache = mount_pages(app, store_path=str(path), admin_users={"ada": hash_password("lovelace")},
                        session_secret="s")
    deadline = time.time() + 120
    while cache._snap is None and time.time() < deadline and cache.last_error is None:
        time.sleep(0.2)
    assert cache.last_error is None, cache.last_error
    client = TestClient(app)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/app/login").text).group(1)
    client.post("/app/login", data={"csrf_token": token, "username": "ada", "password": "lovelace"})
    for url in ("/app", "/app?period=all", "/app/live", "/app/journey", "/app/questions", "/app/search", "/app/personas",
                "/app/playbooks", "/app/experiments"):
        assert client.get(url).status_code == 200, url
    status = client.get("/app/api/status").json()
    assert status["ready"] is True and isinstance(status["failed_panels"], dict)
    assert status["failed_panels"] == {}  # the heatmap keeps such rows in UTC instead of overflowing
    for bad in ("nan", "inf", "-inf", "1e308", "0"):
        r = client.get("/app/api/funnel", params={"steps": "Products Searched,Order Completed", "window_days": bad})
        assert r.status_code == 400 and "window_days" in r.json()["error"], (bad, r.text)


def test_ingest_quarantines_out_of_range_rows(tmp_path: Path) -> None:
    import orjson

    from micromoments.store import Store
    from micromoments.store.ingest import ingest_file

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat() + "Z"
    rows = [{"type": "track", "event": "ok", "userId": "u", "timestamp": now},
            {"type": "track", "event": "old", "userId": "u", "timestamp": "0001-01-01T00:00:00Z"},
            {"type": "track", "event": "skew", "userId": "u", "timestamp": now, "sentAt": "9999-01-01T00:00:00Z"},
            {"type": "track", "event": "nul\u0000", "userId": "u", "timestamp": now},
            {"type": "track", "event": "lat", "userId": "u", "timestamp": now, "properties": {"latitude": 999}}]
    f = tmp_path / "e.jsonl"
    f.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    store = Store(tmp_path / "s.duckdb")
    result = ingest_file(store, f, fmt="segment")
    assert (result.loaded, result.quarantined) == (1, 4)
    got = dict(store.duck.execute("SELECT line, field FROM quarantine").fetchall())
    assert got == {2: "timestamp", 3: "sentAt", 4: "text", 5: "latitude"}
    store.close()


def test_a_failing_panel_shows_its_error_and_the_rest_render(tmp_path: Path, monkeypatch) -> None:
    from micromoments.report import data as report_data
    from micromoments.report.build import build_report
    from micromoments.store import Store

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OverflowError("date value out of range")

    monkeypatch.setattr(report_data, "heatmap_for", broken)
    path = tmp_path / "s.duckdb"
    make_store(path, people=60).close()
    app = FastAPI()
    cache = mount_pages(app, store_path=str(path), admin_users={"ada": hash_password("lovelace")},
                        session_secret="s")
    deadline = time.time() + 120
    while cache._snap is None and time.time() < deadline and cache.last_error is None:
        time.sleep(0.2)
    client = TestClient(app)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/app/login").text).group(1)
    client.post("/app/login", data={"csrf_token": token, "username": "ada", "password": "lovelace"})
    for url in ("/app", "/app/journey", "/app/questions"):
        assert client.get(url).status_code == 200, url
    assert client.get("/app/api/status").json()["failed_panels"] == {
        "report-heatmap": "OverflowError: date value out of range"}
    store = Store(path)
    try:
        text = build_report(store, tmp_path / "r.html").read_text()
    finally:
        store.close()
    assert "This panel could not be computed (OverflowError: date value out of range)" in text
    assert 'id="chart-journey"' in text and 'id="chart-faq"' in text  # the other panels are there


def test_headers_docs_and_security_schemes(server, tmp_path: Path) -> None:
    c = server.client
    health = c.get("/health")
    assert "frame-ancestors 'none'" in health.headers["content-security-policy"]
    assert health.headers["x-content-type-options"] == "nosniff"
    assert c.post("/v1/track", json=_event(), headers=KEY).headers["x-content-type-options"] == "nosniff"
    assert c.get("/docs").status_code == 404  # Swagger UI loads from a CDN: only with serve --dev
    schema = c.get("/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"writeKey", "adminToken", "pageSession"}
    assert schema["paths"]["/v1/track"]["post"]["security"] == [{"writeKey": []}]
    assert schema["paths"]["/admin/stats"]["get"]["security"] == [{"adminToken": []}]
    assert schema["paths"]["/app/api/funnel"]["get"]["security"] == [{"pageSession": []}]
    from micromoments.server.app import create_app

    dev = TestClient(create_app(_config(tmp_path), db_path=tmp_path / "d.duckdb", data_dir=tmp_path, dev=True))
    docs = dev.get("/docs")
    assert docs.status_code == 200 and "cdn.jsdelivr.net" in docs.headers["content-security-policy"]


def test_a_chart_that_fails_in_the_report_costs_only_its_section(tmp_path: Path, monkeypatch) -> None:
    from micromoments.report import charts
    from micromoments.report.build import build_report
    from micromoments.store import Store

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("a value the chart cannot draw")

    monkeypatch.setattr(charts, "faq_chart", broken)
    store = make_store(tmp_path / "s.duckdb", people=60)
    try:
        text = build_report(store, tmp_path / "r.html").read_text()
    finally:
        store.close()
    assert "This panel could not be computed (ValueError: a value the chart cannot draw)" in text
    assert 'id="chart-journey"' in text and 'id="chart-heatmap"' in text and 'id="chart-faq"' not in text


def test_a_refused_event_shipped_or_taken_twice_is_stored_once(tmp_path: Path) -> None:
    from micromoments.activation.quarantine_log import QuarantineLog
    from micromoments.activation.wal import WriteAheadLog
    from micromoments.activation.wal_loader import StoreLoader

    wal = WriteAheadLog(tmp_path / "wal", fsync=False)
    refused = QuarantineLog(tmp_path / "wal", fsync=False)
    row = {"line": 3, "field": "batch[3].timestamp", "reason": "outside the accepted range", "raw": '{"x":1}'}
    refused.append([row, row])  # a client's retry: two refusals, two rows
    stamped = refused.take()
    refused.done()
    assert len({r["at"] for r in stamped}) == 2
    refused.append(stamped)  # as the loader worker gets them from the stream
    loader = StoreLoader(wal, tmp_path / "s.duckdb", quarantine=refused)
    assert loader.flush()["quarantined"] == 2
    refused.append(stamped + stamped)  # redelivered after a crash between storing and acknowledging
    assert loader.flush()["quarantined"] == 0
    loader.close()
    refused.append(stamped)  # and after a restart
    loader = StoreLoader(wal, tmp_path / "s.duckdb", quarantine=refused)
    assert loader.flush()["quarantined"] == 0
    got = loader.store.duck.execute("SELECT count(*), min(line), min(source) FROM quarantine").fetchone()
    assert got == (2, 3, "api")
    loader.close()
    wal.close()
