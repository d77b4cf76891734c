"""Data from events never becomes markup: the /app pages and the report escape it, every page sends a
strict Content-Security-Policy, and `next=` only goes to a path of this site. (The browser test
`test_security_browser.py` checks the same with a real browser and more strings.)"""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from micromoments.report.build import build_report
from micromoments.server.pages import hash_password, mount_pages
from micromoments.store import Store
from test_report import make_store

pytestmark = pytest.mark.filterwarnings("ignore:The .future.infer_string. option")

IMG = '"><img src=x onerror=alert(1)>'
SCRIPT = "</script><script>alert(2)</script>"
PAGES = ("/app", "/app?period=all", "/app/live", "/app/journey", "/app/questions", "/app/search", "/app/personas",
         "/app/playbooks", "/app/experiments")


def plant(store: Store) -> None:
    """Hostile text in the event names, queries, page paths and titles, and the ids of some people."""
    con = store.duck
    con.execute(f"UPDATE events SET event = event || ?, page_path = ?, page_title = ?, query = coalesce(query, '') || ? "
                f"WHERE hash(message_id) % 5 = 0", [IMG, "/p" + IMG, SCRIPT, SCRIPT])
    con.execute("UPDATE events SET person_id = person_id || ?, user_id = user_id || ? WHERE hash(person_id) % 7 = 0",
                [IMG, IMG])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    path = tmp_path_factory.mktemp("esc") / "s.duckdb"
    store = make_store(path, people=120)
    plant(store)
    store.close()
    app = FastAPI()
    cache = mount_pages(app, store_path=str(path), admin_users={"ada": hash_password("lovelace")},
                        session_secret="test-secret")
    deadline = time.time() + 120
    while cache._snap is None and time.time() < deadline:
        assert cache.last_error is None, cache.last_error
        time.sleep(0.2)
    client = TestClient(app)
    page = client.get("/app/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert client.post("/app/login", data={"csrf_token": token, "username": "ada", "password": "lovelace"},
                       follow_redirects=False).status_code == 303
    return client, path


class Tags(HTMLParser):
    """The elements and attributes a browser would build from a page."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_no_inline_script(text: str, where: str) -> None:
    for tag, attrs in Tags(text).tags:
        assert tag not in ("img", "iframe", "object", "embed"), (where, tag, attrs)
        assert not any(a.startswith("on") for a in attrs), (where, tag, attrs)
        assert tag != "script" or attrs.get("src", "").startswith("/app/static/"), (where, attrs)
        for a in ("href", "src", "action"):
            assert not (attrs.get(a) or "").strip().lower().startswith("javascript:"), (where, tag, attrs)


def assert_no_markup_from_data(text: str, where: str) -> None:
    assert IMG not in text and "<img" not in text, where
    assert "<script>alert" not in text, where


def test_pages_escape_hostile_event_data_and_send_a_strict_csp(site) -> None:
    client, _ = site
    for url in PAGES:
        r = client.get(url)
        assert r.status_code == 200, url
        assert_no_markup_from_data(r.text, url)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp, url
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"]
        # No inline script, event handler or javascript: URL anywhere: CSP would block them.
        assert_no_inline_script(r.text, url)
    # The person page of a hostile id, reached by its escaped link.
    people = client.get("/app/journey/examples?path=buy").text
    links = re.findall(r'href="(/app/people/[^"]+)"', people)
    assert links and all("<" not in link and "/" not in link[len("/app/people/"):] for link in links)
    for link in links[:5]:
        r = client.get(link.replace("&amp;", "&"))
        assert r.status_code in (200, 404)
        assert_no_markup_from_data(r.text, link)


def test_login_reflects_nothing_and_next_stays_on_this_site(site) -> None:
    anon = TestClient(site[0].app)
    for target in ('"><script>alert(1)</script>', "javascript:alert(1)", "//evil.example/app", "/app\\@evil",
                   "https://evil.example/", "/app//evil.example"):
        r = anon.get("/app/login", params={"next": target})
        assert r.status_code == 200
        assert "<script>alert" not in r.text and "evil" not in r.text and "javascript:" not in r.text
        assert 'name="next" value="/app"' in r.text
    assert 'value="/app/journey?x=1"' in anon.get("/app/login", params={"next": "/app/journey?x=1"}).text


def test_report_escapes_hostile_event_data(site, tmp_path: Path) -> None:
    _, path = site
    store = Store(path)
    try:
        text = build_report(store, tmp_path / "report.html").read_text()
    finally:
        store.close()
    body = text.split("<body>", 1)[1]
    assert_no_markup_from_data(body, "report")
    # Every <script> in the body is one of Plotly's own, and none was closed early by the data.
    assert body.count("<script") == body.count("</script>")
