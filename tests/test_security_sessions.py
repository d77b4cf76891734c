"""Sign-in and sessions of the web pages (issue 18): throttling per account and address, logout and a
new password end sessions on the server, foreign Origin/Referer refused, the form body cap, and
X-Forwarded-* believed only from `[server] trusted_proxies`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from micromoments.config import Config
from micromoments.server.pages import hash_password, mount_pages
from micromoments.store import Store

pytestmark = pytest.mark.filterwarnings("ignore:The .future.infer_string. option")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def site(tmp_path: Path):
    """The pages over an empty store (no analytics needed to sign in)."""
    config = Config()
    config.server.trusted_proxies = ["10.0.0.0/8"]
    Store(tmp_path / "s.duckdb").close()  # the tables exist before two threads could both create them
    app = FastAPI()
    mount_pages(app, store_path=str(tmp_path / "s.duckdb"), config=config, warm=False,
                admin_users={"ada": hash_password("lovelace"), "bob": hash_password("builder")},
                session_secret="test-secret")
    clock = Clock()
    app.state.pages_auth.throttle.clock = clock
    return app, clock


def form_token(client: TestClient) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/app/login").text).group(1)


def sign_in(client: TestClient, user: str = "ada", password: str = "lovelace", **headers: str):
    return client.post("/app/login", data={"csrf_token": form_token(client), "username": user,
                                           "password": password}, headers=headers, follow_redirects=False)


def page_csrf(client: TestClient) -> str:
    """The session's CSRF token, from the sign-out form of a page (the status API needs no analytics)."""
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/app/playbooks").text).group(1)


def test_wrong_passwords_are_throttled_per_account_then_the_wait_ends(site) -> None:
    app, clock = site
    c = TestClient(app)
    for _ in range(5):
        assert "error=bad" in sign_in(c, password="guess").headers["location"]
    r = sign_in(c)  # the right password, but the account is locked for now
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "Too many wrong passwords" in r.text
    # Another account from another address is not affected.
    assert sign_in(TestClient(app, client=("192.0.2.7", 1)), "bob", "builder").status_code == 303
    clock.now += int(r.headers["retry-after"]) + 1
    ok = sign_in(c)
    assert ok.status_code == 303 and ok.headers["location"] == "/app"
    # A success clears the account's failures: the next wrong password is just wrong.
    assert "error=bad" in sign_in(TestClient(app), password="again").headers["location"]


def test_wrong_passwords_are_throttled_per_client_address(site) -> None:
    app, _ = site
    c = TestClient(app, client=("198.51.100.4", 1))
    for i in range(20):  # spread over made-up names: the per-account limit never trips
        sign_in(c, user=f"user{i}", password="x")
    r = sign_in(c)
    assert r.status_code == 429 and "retry-after" in r.headers
    assert sign_in(TestClient(app, client=("198.51.100.5", 1))).status_code == 303


def test_logout_ends_the_session_on_the_server(site) -> None:
    app, _ = site
    c = TestClient(app)
    assert sign_in(c).status_code == 303
    saved = c.cookies.get("mm_session")
    assert c.get("/app/api/status").status_code == 200
    out = c.post("/app/logout", data={"csrf_token": page_csrf(c)}, follow_redirects=False)
    assert out.status_code == 303
    replay = TestClient(app, cookies={"mm_session": saved})  # a copy of the cookie kept before logout
    assert replay.get("/app/api/status").status_code == 401
    assert replay.get("/app/playbooks", follow_redirects=False).status_code == 303


def test_a_new_password_ends_every_session_of_the_user(site) -> None:
    app, _ = site
    c = TestClient(app)
    assert sign_in(c).status_code == 303
    other = TestClient(app)
    assert sign_in(other, "bob", "builder").status_code == 303
    app.state.pages_auth.set_password("ada", hash_password("new password"))
    assert c.get("/app/api/status").status_code == 401
    assert other.get("/app/api/status").status_code == 200
    assert sign_in(TestClient(app), password="new password").status_code == 303


def test_posts_from_another_site_are_refused(site) -> None:
    app, _ = site
    c = TestClient(app)
    assert sign_in(c).status_code == 303
    token = page_csrf(c)
    for headers in ({"origin": "https://evil.example"}, {"origin": "null"},
                    {"referer": "https://evil.example/app/playbooks"}):
        r = c.post("/app/playbooks/toggle", data={"csrf_token": token, "name": "x", "enabled": "0"},
                   headers=headers, follow_redirects=False)
        assert r.status_code == 403 and "another site" in r.text, headers
        assert sign_in(TestClient(app), **headers).status_code == 403
    same = c.post("/app/playbooks/toggle", data={"csrf_token": token, "name": "x", "enabled": "0"},
                  headers={"origin": "http://testserver"}, follow_redirects=False)
    assert same.status_code == 303


def test_form_bodies_are_capped(site) -> None:
    app, _ = site
    c = TestClient(app)
    assert sign_in(c).status_code == 303
    big = {"csrf_token": page_csrf(c), "keywords": "paint\n" * 20_000}
    r = c.post("/app/questions/keywords", data=big, follow_redirects=False)
    assert r.status_code == 413 and "65,536" in r.text
    r = TestClient(app).post("/app/login", content=b"username=" + b"a" * 70_000,
                             headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413


def test_forwarded_headers_only_from_trusted_proxies(site) -> None:
    app, clock = site
    # Not a trusted peer: X-Forwarded-Proto is ignored (no Secure cookie) and so is X-Forwarded-For.
    untrusted = TestClient(app, client=("203.0.113.9", 1))
    r = sign_in(untrusted, **{"x-forwarded-proto": "https", "x-forwarded-for": "198.18.0.1"})
    assert "; secure" not in r.headers["set-cookie"].lower()
    # A trusted proxy (10.0.0.0/8): Secure cookie, and throttling keys on the forwarded address.
    proxy = TestClient(app, client=("10.1.2.3", 1))
    r = sign_in(proxy, **{"x-forwarded-proto": "https", "x-forwarded-for": "198.18.0.1"})
    cookie = [h for h in r.headers.get_list("set-cookie") if h.startswith("mm_session=")][0].lower()
    assert "; secure" in cookie
    for i in range(20):
        sign_in(proxy, user=f"u{i}", password="x", **{"x-forwarded-for": "198.18.0.2"})
    assert sign_in(proxy, **{"x-forwarded-for": "198.18.0.2"}).status_code == 429
    assert sign_in(proxy, **{"x-forwarded-for": "198.18.0.3"}).status_code == 303  # another client
    # The same header from an untrusted peer cannot dodge its own address's limit.
    for i in range(20):
        sign_in(untrusted, user=f"v{i}", password="x", **{"x-forwarded-for": f"198.18.1.{i}"})
    assert sign_in(untrusted, **{"x-forwarded-for": "198.18.9.9"}).status_code == 429
