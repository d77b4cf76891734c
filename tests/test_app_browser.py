"""The /app pages in real headless Chromium (Debian's, driven by Playwright), served by the
`micromoments serve` app (`create_app`) with demo data: login, every page, charts drawn, the funnel
builder against the API, the playbook switch, and the redirect of anonymous visitors."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from _server_harness import CHROMIUM, chromium_browser, pages_served

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

# Screenshots go to a temporary folder; `MICROMOMENTS_SCREENSHOTS=docs/img pytest ...` refreshes the README's.
IMG = Path(os.environ.get("MICROMOMENTS_SCREENSHOTS") or tempfile.mkdtemp(prefix="mm-shots-"))
# page -> how many Plotly charts it draws with the demo data
PAGES = {"/app": 2, "/app/live": 1, "/app/journey": 5, "/app/questions": 2, "/app/personas": 1,
         "/app/playbooks": 0, "/app/experiments": 1}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")

    from micromoments.config import Config
    from micromoments.demo import generate
    from micromoments.intent import classify_store
    from micromoments.server.pages import hash_password
    from micromoments.store import Store
    from micromoments.store.ingest import ingest_file

    out = tmp_path_factory.mktemp("browser")
    cfg = Config()
    cfg.server.admin_users = {"ada": hash_password("lovelace")}
    cfg.server.write_keys = {"test-key": "test"}
    paths = generate(out / "data", users=300, days=14, seed=7)
    db = out / "micromoments.duckdb"
    store = Store(db)
    ingest_file(store, paths.events, config=cfg)
    classify_store(store, cfg)
    try:
        from micromoments.personas.build import build_personas

        build_personas(store, cfg, stores_path=paths.stores, save=False)
    except ModuleNotFoundError:
        pass
    store.close()

    activator, sink = None, None
    try:
        from micromoments.server.app import create_app
    except ModuleNotFoundError:  # before the serve app existed: the pages on a bare app
        from fastapi import FastAPI

        from micromoments.server.pages import mount_pages

        app = FastAPI()
        mount_pages(app, store_path=str(db), config=cfg)
    else:
        from micromoments.activation.engine import Activator
        from micromoments.activation.wal_loader import LogSink

        sink = LogSink()
        activator = Activator(cfg, log_sink=sink)
        app = create_app(cfg, db_path=db, data_dir=out, activator=activator, log_sink=sink)
    with pages_served(app) as base:
        yield base, app


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as b:
        yield b


def _watch(page, base: str) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("request", lambda r: errors.append(f"outside request {r.url}")
            if not r.url.startswith((base, "data:", "about:", "blob:")) else None)
    return errors


def _login(page, base: str, target: str = "/app") -> None:
    page.goto(base + target)
    assert "/app/login" in page.url
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", "lovelace")
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/app/login" not in u)


def test_anonymous_visitors_are_sent_to_the_login(server, browser) -> None:
    base, _ = server
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(base + "/app/journey")
    assert page.url.startswith(base + "/app/login?next=")
    assert page.locator("form.login input[name=password]").count() == 1
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert "error=bad" in page.url and page.locator(".error").inner_text().startswith("Wrong")
    ctx.close()


def test_every_page_draws_its_charts_without_errors(server, browser) -> None:
    base, _ = server
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    errors = _watch(page, base)
    _login(page, base, "/app")
    assert page.url.rstrip("/") == base + "/app"
    for path, n in PAGES.items():
        page.goto(base + path)
        assert page.locator("h1").first.inner_text() != "Computing the analytics…"
        if n:
            page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length >= {n}", timeout=20000)
            drawn = page.eval_on_selector_all(
                ".js-plotly-plot", "els => els.map(e => [e.id, e.querySelectorAll('svg.main-svg *').length "
                "+ e.querySelectorAll('canvas').length])")
            assert len(drawn) >= n, (path, drawn)
            for chart_id, parts in drawn:
                assert parts > 10, f"{path}: {chart_id} drew an empty chart"
        if path == "/app/live":
            page.wait_for_function("document.querySelectorAll('#live-table tbody tr').length > 0")
            page.select_option("#live-filters select[name=type]", "go")
            page.wait_for_function("""() => { const t = [...document.querySelectorAll('#live-table tbody tr td:nth-child(2)')]
                .map(td => td.innerText); return t.length > 0 && t.every(x => x.startsWith('I want to go')); }""")
        if path == "/app":
            page.screenshot(path=str(IMG / "app-overview.png"), clip={"x": 0, "y": 0, "width": 1280, "height": 1100},
                            full_page=True)
        if path == "/app/journey":
            page.screenshot(path=str(IMG / "app-journey.png"), clip={"x": 0, "y": 0, "width": 1280, "height": 1400},
                            full_page=True)
        if path == "/app/personas":
            assert page.locator(".persona").count() >= 2
    # Click-through: a path's example journeys, then one person's timeline.
    page.goto(base + "/app/journey")
    page.click("a.examples >> nth=0")
    page.wait_for_url("**/app/journey/examples?**")
    page.click("#examples a >> nth=0")
    page.wait_for_url("**/app/people/**")
    assert page.locator("section.session").count() >= 1
    assert errors == []
    ctx.close()


def test_the_funnel_built_in_the_page_matches_the_api(server, browser) -> None:
    base, _ = server
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    errors = _watch(page, base)
    _login(page, base, "/app/journey")
    page.wait_for_selector("#funnel-table[data-ready='1']", state="attached")
    # Build a new 3-step funnel: drop steps down to two, add one, choose the events, strict order.
    while page.locator("#funnel-steps .step").count() > 2:
        page.click("#funnel-steps .step >> nth=-1 >> button.remove")
    page.click("#funnel-add")
    steps = ["Product Viewed", "Product Added", "moment:buy"]
    for i, value in enumerate(steps):
        page.select_option(f"#funnel-steps .step >> nth={i} >> select", value)
    page.select_option("#funnel-builder select[name=window_days]", "14")
    page.evaluate("document.getElementById('funnel-table').dataset.ready = ''")
    page.click("#funnel-run")
    page.wait_for_selector("#funnel-table[data-ready='1']", state="attached")
    shown = [int(t.replace(",", "")) for t in page.locator("#funnel-table tbody td.people").all_inner_texts()]
    api = page.request.get(base + "/app/api/funnel", params={"steps": ",".join(steps), "window_days": "14"}).json()
    assert shown == [s["people"] for s in api["steps"]]
    assert len(shown) == 3 and shown[0] > shown[1] > 0
    assert page.eval_on_selector("#chart-funnel-built", "e => e.querySelectorAll('svg.main-svg *').length") > 10
    assert errors == []
    ctx.close()


def test_a_playbook_can_be_switched_off_and_on(server, browser) -> None:
    base, app = server
    activator = getattr(app.state, "activator", None)
    if activator is None:
        pytest.skip("no activator in this app")
    ctx = browser.new_context()
    page = ctx.new_page()
    _login(page, base, "/app/playbooks")
    row = page.locator("#playbooks tbody tr").first
    name = row.get_attribute("data-playbook")
    assert name in {p.name for p in activator.playbooks}
    row.locator("button[type=submit]").click()
    page.wait_for_url("**/app/playbooks?msg=**")
    assert "disabled" in page.locator("#msg").inner_text()
    assert name not in {p.name for p in activator.playbooks}
    assert "off" in (page.locator(f"#playbooks tr[data-playbook='{name}']").get_attribute("class") or "")
    page.locator(f"#playbooks tr[data-playbook='{name}'] button[type=submit]").click()
    page.wait_for_url("**/app/playbooks?msg=**")
    assert name in {p.name for p in activator.playbooks}
    ctx.close()


# Text a missing value or a broken computation leaves behind (pandas 3 prints NaN as "nan").
BAD_TEXT = __import__("re").compile(r"\b(nan|NaN|None|inf|-inf|undefined)\b")


def _bad_text(text: str) -> list[str]:
    return [text[max(0, m.start() - 40):m.end() + 40].replace("\n", " ") for m in BAD_TEXT.finditer(text)]


def test_no_nan_none_inf_or_undefined_on_any_page_or_the_report(server, browser, tmp_path) -> None:
    """Every page (and one person's journey, the search results and the report) on the demo store,
    on the locked versions: no "nan"/"NaN"/"None"/"inf"/"undefined" text and no console error."""
    from micromoments.config import Config
    from micromoments.report import build_report
    from micromoments.store import Store

    base, app = server
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    errors = _watch(page, base)
    _login(page, base, "/app")
    found: dict[str, list[str]] = {}
    for path in [*PAGES, "/app/search"]:
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        found[path] = _bad_text(page.inner_text("body"))
    page.goto(base + "/app/journey")
    page.click("a.examples >> nth=0")
    page.wait_for_url("**/app/journey/examples?**")
    found["examples"] = _bad_text(page.inner_text("body"))
    page.click("#examples a >> nth=0")
    page.wait_for_url("**/app/people/**")
    page.wait_for_load_state("networkidle")
    found["person"] = _bad_text(page.inner_text("body"))
    assert errors == []
    ctx.close()

    store_path = app.state.pages_cache.store_path
    report = build_report(Store(store_path), tmp_path / "report.html", Config())
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    report_errors: list[str] = []
    page.on("console", lambda m: report_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: report_errors.append(str(e)))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    found["report"] = _bad_text(page.inner_text("body"))
    ctx.close()
    assert report_errors == []
    assert {k: v for k, v in found.items() if v} == {}
