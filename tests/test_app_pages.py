"""The /app web pages without a browser: login, CSRF, redirects, page content, the funnel API
against an independent count, example journeys against the report's top paths, and the cache."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from micromoments.errors import ConfigError
from micromoments.server.pages import hash_password, mount_pages, verify_password
from micromoments.server.pages.auth import Auth, check_hash_format
from test_report import make_store

pytestmark = pytest.mark.filterwarnings("ignore:The .future.infer_string. option")

PAGES = ("/app", "/app?period=all", "/app/live", "/app/journey", "/app/questions", "/app/personas",
         "/app/playbooks", "/app/experiments", "/app/journey/examples?path=buy")


def pages_client(path: Path) -> tuple[FastAPI, Any, TestClient]:
    """The /app pages over the store at `path` (user ada, password lovelace), once their first
    analytics are computed."""
    app = FastAPI()
    cache = mount_pages(app, store_path=str(path), admin_users={"ada": hash_password("lovelace")},
                        session_secret="test-secret")
    client = TestClient(app)
    deadline = time.time() + 120
    while cache._snap is None and time.time() < deadline:
        assert cache.last_error is None, cache.last_error
        time.sleep(0.2)
    return app, cache, client


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    path = tmp_path_factory.mktemp("app") / "s.duckdb"
    make_store(path, people=240).close()
    return (*pages_client(path), path)


def login(client: TestClient, user: str = "ada", password: str = "lovelace", **headers: str):
    page = client.get("/app/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post("/app/login", data={"csrf_token": token, "username": user, "password": password,
                                            "next": "/app/journey"}, headers=headers, follow_redirects=False)


@pytest.fixture()
def client(site) -> TestClient:
    app = site[0]
    c = TestClient(app)
    assert login(c).status_code == 303
    return c


def test_passwords_are_salted_hashes() -> None:
    a, b = hash_password("pw"), hash_password("pw")
    assert a != b and a.startswith("scrypt$") and "pw" not in a.split("$")[4:]
    assert verify_password("pw", a) and not verify_password("pW", a) and not verify_password("pw", "garbage")
    with pytest.raises(ConfigError, match="not a scrypt"):
        check_hash_format("plain-password")
    with pytest.raises(ConfigError):
        Auth({"bob": "hunter2"})


def test_anonymous_requests_go_to_the_login(site) -> None:
    anon = TestClient(site[0])
    for url in PAGES:
        r = anon.get(url, follow_redirects=False)
        assert r.status_code == 303, url
        assert r.headers["location"].startswith("/app/login?next=")
    assert anon.get("/app/journey", follow_redirects=False).headers["location"] == "/app/login?next=%2Fapp%2Fjourney"
    assert anon.get("/app/api/funnel?steps=a,b").status_code == 401
    assert anon.get("/app/api/moments").status_code == 401
    assert anon.post("/app/playbooks/toggle", data={"name": "x"}, follow_redirects=False).status_code == 303


def test_login_checks_password_and_csrf_and_sets_a_safe_cookie(site) -> None:
    c = TestClient(site[0])
    bad = login(c, password="wrong")
    assert bad.status_code == 303 and "error=bad" in bad.headers["location"]
    assert "mm_session" not in bad.headers.get("set-cookie", "")
    unknown = login(c, user="nobody")
    assert "error=bad" in unknown.headers["location"]
    # A login form posted without the token of its cookie (cross-site) is refused.
    forged = TestClient(site[0]).post("/app/login", data={"csrf_token": "x", "username": "ada", "password": "lovelace"},
                                      follow_redirects=False)
    assert "error=expired" in forged.headers["location"]
    ok = login(c)
    assert ok.status_code == 303 and ok.headers["location"] == "/app/journey"
    cookie = [h for h in ok.headers.get_list("set-cookie") if h.startswith("mm_session=")][0].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    # X-Forwarded-Proto from a peer that is not in [server] trusted_proxies is ignored
    # (test_security_sessions.py covers a trusted one).
    https = login(TestClient(site[0]), **{"x-forwarded-proto": "https"})
    cookie = [h for h in https.headers.get_list("set-cookie") if h.startswith("mm_session=")][0].lower()
    assert "; secure" not in cookie
    # A tampered cookie is no session.
    good = ok.cookies.get("mm_session") or c.cookies.get("mm_session")
    fresh = TestClient(site[0])
    assert fresh.get("/app", headers={"cookie": f"mm_session={good}"}, follow_redirects=False).status_code == 200
    tampered = TestClient(site[0]).get("/app", headers={"cookie": f"mm_session={good[:-2]}xx"}, follow_redirects=False)
    assert tampered.status_code == 303


def test_next_never_leaves_the_app(site) -> None:
    c = TestClient(site[0])
    page = c.get("/app/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = c.post("/app/login", data={"csrf_token": token, "username": "ada", "password": "lovelace",
                                   "next": "//evil.example/app"}, follow_redirects=False)
    assert r.headers["location"] == "/app"


def test_every_page_renders_with_data(client: TestClient, site) -> None:
    snap = site[1].snapshot()
    for url in PAGES:
        r = client.get(url)
        assert r.status_code == 200, (url, r.text[:500])
        assert "server-timing" in r.headers and r.headers["x-frame-options"] == "DENY"
        assert '<script src="/app/static/plotly.min.js">' in r.text
    overview = client.get("/app?period=all").text
    assert f"{snap.report.kpis['sessions']:,}" in overview  # the all-time sessions KPI
    assert 'id="chart-moments"' in overview and 'id="chart-daily"' in overview
    journey = client.get("/app/journey").text
    for chart in ("chart-journey", "chart-sankey", "chart-funnel-built", "chart-heatmap", "funnel-builder"):
        assert f'id="{chart}"' in journey
    questions = client.get("/app/questions").text
    assert "what shoes for flat feet" in questions and "content gap" in questions  # the planted gap
    assert "No personas yet" in client.get("/app/personas").text
    js = client.get("/app/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000 and b"plotly" in js.content[:2000].lower()


def test_overview_kpis_follow_the_period(client: TestClient, site) -> None:
    snap = site[1].snapshot()
    # The period ends with the last *complete* day: a partial last day would drag every KPI down.
    last = pd.Timestamp(snap.report.kpis["complete_until"])
    ses = snap.sessions
    week = ses[(ses.day >= last - pd.Timedelta(days=7)) & (ses.day < last)]
    text = client.get("/app?period=7d").text
    block = re.search(r'data-kpi="sessions"><div class="v">([^<]+)<', text).group(1)
    assert block == f"{len(week):,}"
    assert len(week) < len(ses)  # the period really filters


def independent_funnel(cache, first: str, second: str, window: dt.timedelta) -> tuple[int, int]:
    """People who did `first`, and who did `second` after one of their `first`s within `window` (pandas)."""
    con = cache._root().cursor()  # the same DuckDB instance the pages use
    ev = con.execute("SELECT person_id, ts, event FROM events WHERE event IN (?, ?)", [first, second]).df()
    con.close()
    a, b = ev[ev.event == first], ev[ev.event == second]
    started = set(a.person_id)
    done = 0
    for pid, grp in a.groupby("person_id"):
        later = b[b.person_id == pid].ts
        if any(((later > t) & (later <= t + window)).any() for t in grp.ts):
            done += 1
    return len(started), done


def test_funnel_api_matches_an_independent_count(client: TestClient, site) -> None:
    r = client.get("/app/api/funnel", params={"steps": "Products Searched,Order Completed", "window_days": 7})
    assert r.status_code == 200
    steps = r.json()["steps"]
    assert [s["step_name"] for s in steps] == ["Products Searched", "Order Completed"]
    want = independent_funnel(site[1], "Products Searched", "Order Completed", dt.timedelta(days=7))
    assert (steps[0]["people"], steps[1]["people"]) == want
    assert 0 < want[1] < want[0]
    # Repeated `step=` works too, and bad input is a JSON 400 naming the problem.
    again = client.get("/app/api/funnel?step=Products+Searched&step=Order+Completed&window_days=7").json()
    assert again["steps"] == steps
    bad = client.get("/app/api/funnel", params={"steps": "Products Searched"})
    assert bad.status_code == 400 and "at least 2 steps" in bad.json()["error"]
    assert client.get("/app/api/funnel", params={"steps": "a,b", "mode": "sideways"}).status_code == 400


def test_example_journeys_match_the_top_paths(client: TestClient, site) -> None:
    snap = site[1].snapshot()
    paths = snap.report.paths
    counts = snap.person_paths.value_counts()
    for row in paths.itertuples():
        assert counts.get(row.path, 0) == row.people, row.path
    top = paths.iloc[0]
    page = client.get("/app/journey/examples", params={"path": top.path}).text
    assert f"{int(top.people):,} in all" in page
    person = re.search(r'href="/app/people/([^"]+)"', page).group(1)
    timeline = client.get(f"/app/people/{person}")
    assert timeline.status_code == 200 and "Session 1" in timeline.text and top.path in timeline.text
    cell = client.get("/app/journey/examples", params={"stage": "awareness", "moment": "know"}).text
    n = snap.episodes.query("stage == 'awareness' and moment == 'know'").person_id.nunique()
    assert f"{n:,} in all" in cell


def test_live_moments_filter_by_type_and_channel(client: TestClient, site) -> None:
    app = site[0]
    data = client.get("/app/api/moments", params={"type": "go", "limit": 50}).json()
    assert data["source"] == "store" and data["moments"]
    assert {m["moment"] for m in data["moments"]} == {"go"}
    ts = [m["ts"] for m in data["moments"]]
    assert ts == sorted(ts, reverse=True)
    chan = client.get("/app/api/moments", params={"channel": "email"}).json()["moments"]
    assert chan and {m["channel"] for m in chan} == {"email"}

    class Ring:  # the activator's contract: recent_moments(limit) -> newest first
        def recent_moments(self, limit: int) -> list[dict]:
            return [{"ts": dt.datetime(2026, 5, 1, 12, i), "person_id": f"p{i}", "moment": m, "channel": "web",
                     "text": "q"} for i, m in enumerate(["know", "buy", "know"])][::-1][:limit]

    app.state.activator = Ring()
    try:
        live = client.get("/app/api/moments", params={"type": "know"}).json()
        assert live["source"] == "live" and [m["person_id"] for m in live["moments"]] == ["p2", "p0"]
    finally:
        app.state.activator = None


def test_forms_need_the_session_csrf_token(client: TestClient) -> None:
    page = client.get("/app/questions").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/app/questions/keywords", data={"keywords": "x"}).status_code == 403
    assert client.post("/app/questions/keywords", data={"keywords": "x", "csrf_token": "nope"}).status_code == 403
    r = client.post("/app/questions/keywords",
                    data={"keywords": "how to lay patio slabs\nbuy cheap paving slabs", "csrf_token": token})
    assert r.status_code == 200 and 'id="kw-result"' in r.text and "how to lay patio slabs" in r.text
    assert client.post("/app/logout", data={}).status_code == 403
    out = client.post("/app/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/app/login"


@pytest.mark.slow
def test_the_cache_notices_new_events(tmp_path: Path) -> None:
    store = make_store(tmp_path / "c.duckdb", people=60)
    from micromoments.server.pages.analytics import AnalyticsCache

    cache = AnalyticsCache(store.path, min_refresh_s=0, check_every_s=0, duck=store.duck)
    first = cache.snapshot()
    assert cache.snapshot() is first  # nothing changed: the same snapshot
    store.duck.execute("INSERT INTO events (message_id, person_id, type, event, ts) VALUES "
                       "('new1', 'u-new', 'track', 'Order Completed', TIMESTAMP '2026-03-20 10:00:00')")
    assert cache.snapshot() is first  # the old one keeps serving while the new one is built
    deadline = time.time() + 60
    while cache._snap is first and time.time() < deadline:
        time.sleep(0.1)
    assert cache._snap is not first
    assert cache._snap.report.kpis["events"] == first.report.kpis["events"] + 1


def test_users_add_writes_a_hash_the_config_loads(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from micromoments.cli import app
    from micromoments.config import load_config

    cfg = tmp_path / "micromoments.toml"
    cfg.write_text('[store]\npath = "x.duckdb"\n\n[server]\nport = 9000\n')
    runner = CliRunner()
    for pw in ("first-password", "second-password"):
        r = runner.invoke(app, ["users", "add", "ada", "--config", str(cfg)], input=f"{pw}\n{pw}\n")
        assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["users", "add", "bob", "--config", str(cfg), "--password", "bobs-password"])
    assert r.exit_code == 0, r.output
    loaded = load_config(cfg)
    assert loaded.store.path == "x.duckdb" and loaded.server.port == 9000
    assert set(loaded.server.admin_users) == {"ada", "bob"}
    assert verify_password("second-password", loaded.server.admin_users["ada"])
    assert not verify_password("first-password", loaded.server.admin_users["ada"])
    short = runner.invoke(app, ["users", "add", "eve", "--config", str(cfg), "--password", "short"])
    assert short.exit_code == 2 and "shorter than 8" in short.output
