"""A website in headless Chromium talking to `micromoments serve` from another origin.

The page (served by a second local server) loads the real `@segment/analytics-next` bundle,
installed from npm here, and `/js/micromoments.js` from the collector. It checks that
page, track and identify reach the store once each with the browser's anonymous id, that
the hero slot shows what the playbook picks for the query just typed, that the exposure and
the click are logged against the decision id, and that content holding markup is shown as text.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import duckdb
import httpx
import pytest

from _server_harness import free_port, start_serve, stop, wait_up, write_config

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ANALYTICS_NEXT = "@segment/analytics-next@1"
MARKUP_TITLE = '<img src=x onerror="window.__mm_pwned=1"><b>How-to</b> guides'
SHIPPED_TITLE = 'title: "How-to guides for your project"'

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Shop</title>
<script src="/analytics-next/index.js"></script>
<script src="{api}/js/micromoments.js" data-write-key="wk_test" data-location="53.80,-1.55" defer></script>
<script src="/page.js" defer></script></head>
<body><input id="search"><div data-mm-slot="hero"><h3>Fallback</h3></div></body></html>"""

PAGE_JS = """
window.analytics = AnalyticsNext.AnalyticsBrowser.load({ writeKey: "wk_test", cdnURL: "%(api)s" });
analytics.page("Home");
document.getElementById("search").addEventListener("keydown", function (e) {
  if (e.key !== "Enter") { return; }
  analytics.track("Products Searched", { query: e.target.value });
  micromoments.refresh({ query: e.target.value });
});
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("needs npm to install @segment/analytics-next")
    tmp = tmp_path_factory.mktemp("web")
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent", ANALYTICS_NEXT], cwd=tmp, check=True,
                   timeout=300, capture_output=True)
    bundle = tmp / "node_modules/@segment/analytics-next/dist/umd"
    assert (bundle / "index.js").exists()
    # The shipped catalog, with markup in the how-to item's title.
    from micromoments.activation.engine import examples_dir

    catalog = (examples_dir() / "catalog.yaml").read_text()
    assert SHIPPED_TITLE in catalog
    (tmp / "catalog.yaml").write_text(catalog.replace(SHIPPED_TITLE, "title: " + json.dumps(MARKUP_TITLE)))
    api_port, page_port = free_port(), free_port()
    api, origin = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{page_port}"
    db = tmp / "store.duckdb"
    config = write_config(tmp / "micromoments.toml", db=db, wal=tmp / "wal", flush_ms=200,
                          extra=f'allowed_origins = ["{origin}"]\nanalytics_next_dir = "{bundle}"\n'
                                f'\n[activation]\ncatalog = "{tmp / "catalog.yaml"}"\n')
    proc = start_serve(config, api_port, log=tmp / "serve.log")
    docroot = tmp / "site"
    (docroot / "analytics-next").mkdir(parents=True)
    shutil.copy(bundle / "index.js", docroot / "analytics-next" / "index.js")
    (docroot / "index.html").write_text(PAGE.format(api=api))
    (docroot / "page.js").write_text(PAGE_JS % {"api": api})
    handler = functools.partial(_QuietHandler, directory=str(docroot))
    pages = http.server.ThreadingHTTPServer(("127.0.0.1", page_port), handler)
    threading.Thread(target=pages.serve_forever, daemon=True).start()
    try:
        wait_up(api, proc=proc)
        yield {"api": api, "origin": origin, "db": db, "tmp": tmp}
    finally:
        pages.shutdown()
        stop(proc)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output clean
        pass


def _store(site, sql: str, params: list | None = None) -> list[tuple]:
    """Rows from a copy of the store after a flush (the server holds the file)."""
    r = httpx.post(site["api"] + "/admin/flush", headers={"Authorization": "Bearer adm_test"}, timeout=30)
    assert r.status_code == 200, r.text
    copy = site["tmp"] / f"copy-{uuid.uuid4().hex[:6]}.duckdb"
    shutil.copy(site["db"], copy)
    if Path(str(site["db"]) + ".wal").exists():
        shutil.copy(str(site["db"]) + ".wal", str(copy) + ".wal")
    con = duckdb.connect(str(copy))
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_a_page_on_another_origin(site) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        # The content links point at the shop's real site: answer them here.
        page.route("https://www.greenhaven.example/**", lambda route: route.fulfill(body="<p>shop</p>",
                                                                                   content_type="text/html"))
        page.goto(site["origin"] + "/index.html")
        page.wait_for_function("document.querySelector('[data-mm-slot=hero]').dataset.mmDecision", timeout=15000)
        anon = json.loads(page.evaluate("localStorage.getItem('ajs_anonymous_id')"))
        assert anon and page.evaluate("localStorage.getItem('mm_anonymous_id')") is None  # one id for both

        # A go moment: the hero changes to the nearest store within a second.
        first = page.get_attribute("[data-mm-slot=hero]", "data-mm-decision")
        page.fill("#search", "garden centre near me")
        page.press("#search", "Enter")
        page.wait_for_function(f"document.querySelector('[data-mm-slot=hero]').dataset.mmDecision !== '{first}'",
                               timeout=1000)
        assert page.get_attribute("[data-mm-slot=hero]", "data-mm-content") == "store-finder-web"
        assert "Greenhaven Leeds" in page.inner_text("[data-mm-slot=hero] .mm-title")
        go_decision = page.get_attribute("[data-mm-slot=hero]", "data-mm-decision")

        # A do moment: the how-to item, whose title holds markup, is shown as text.
        page.fill("#search", "how to tile a bathroom wall")
        page.press("#search", "Enter")
        page.wait_for_function("document.querySelector('[data-mm-slot=hero]').dataset.mmContent === 'howto-article'",
                               timeout=2000)
        assert page.inner_text("[data-mm-slot=hero] .mm-title") == MARKUP_TITLE
        assert page.eval_on_selector("[data-mm-slot=hero]", "el => el.querySelectorAll('b, img').length") == 0
        assert page.evaluate("window.__mm_pwned") is None
        do_decision = page.get_attribute("[data-mm-slot=hero]", "data-mm-decision")

        page.evaluate("analytics.identify('user-browser-1', { plan: 'pro' })")
        page.wait_for_timeout(500)
        page.click("[data-mm-slot=hero] .mm-link")  # sendBeacon, then the browser leaves the page
        page.wait_for_url("https://www.greenhaven.example/**")
        browser.close()
    assert not [e for e in errors if "Content Security Policy" in e or "CORS" in e], errors

    rows = _store(site, "SELECT type, event, json_extract_string(properties, '$.query'), "
                        "json_extract_string(context, '$.library.name') FROM events WHERE anonymous_id = ?", [anon])
    from_ajs = [r for r in rows if r[3] == "analytics.js"]
    assert sorted((r[0], r[1]) for r in from_ajs if r[0] in ("page", "identify")) == [("identify", None), ("page", None)]
    searches = sorted(r[2] for r in from_ajs if r[1] == "Products Searched")
    assert searches == ["garden centre near me", "how to tile a bathroom wall"], rows
    viewed = _store(site, "SELECT json_extract_string(properties, '$.decision_id') FROM events "
                          "WHERE anonymous_id = ? AND event = 'Content Viewed'", [anon])
    assert {go_decision, do_decision} <= {v[0] for v in viewed}
    clicked = _store(site, "SELECT json_extract_string(properties, '$.decision_id') FROM events "
                           "WHERE anonymous_id = ? AND event = 'Content Clicked'", [anon])
    assert clicked == [(do_decision,)]
    exposures = {r[0] for r in _store(site, "SELECT decision_id FROM exposures")}
    assert {go_decision, do_decision} <= exposures
    outcomes = _store(site, "SELECT decision_id, kind FROM outcomes")
    assert (do_decision, "click") in outcomes and (go_decision, "click") not in outcomes
