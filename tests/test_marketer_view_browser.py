"""Numbers a marketer can trust, read in headless Chromium on demo data: every /app page and the
report. Fails on a "0%" rate for a moment that purchases follow, a KPI arrow computed over a
partial day, an "other" FAQ theme ranked first, any label containing "nan", any console error.

The demo store gets a nearly empty last day (three events at 01:30), as a store being written to has.
`MICROMOMENTS_SCREENSHOTS=docs/img pytest tests/test_marketer_view_browser.py -m slow` refreshes
the README's and docs/app.md's screenshots.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from pathlib import Path

import pytest

from _server_harness import CHROMIUM, chromium_browser, pages_served

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:The .future.infer_string. option")]

IMG = Path(os.environ.get("MICROMOMENTS_SCREENSHOTS") or tempfile.mkdtemp(prefix="mm-shots-"))
MOMENTS = {"know": "I want to know", "go": "I want to go", "do": "I want to do", "buy": "I want to buy"}
PAGES = ("/app", "/app?period=14d", "/app/live", "/app/journey", "/app/questions", "/app/search", "/app/personas",
         "/app/playbooks", "/app/experiments", "/app/journey/examples?moment=know")
NAN = re.compile(r"\bnan\b", re.I)
MONTH = re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b")

# Every Plotly label and text of the page: [label (an x or y category), text] per bar or heatmap cell.
LABELS_JS = """() => { const arr = v => Array.isArray(v) ? v : [];  // numbers may come base64-encoded: skipped
  return [...document.querySelectorAll('.js-plotly-plot')].flatMap(gd => (gd.data || []).flatMap(tr => {
  const out = [], txt = arr(tr.text), x = arr(tr.x), y = arr(tr.y);
  [tr.name, ...x, ...y].filter(v => typeof v === 'string').forEach(n => out.push(['', n]));
  if (tr.type === 'bar') (tr.orientation === 'h' ? y : x).forEach((l, i) => txt[i] !== undefined && out.push([String(l), String(txt[i])]));
  if (tr.type === 'heatmap') x.forEach((l, j) => txt.forEach(row => out.push([String(l), String(arr(row)[j])])));
  return out; })); }"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    from fastapi import FastAPI

    from micromoments.config import Config
    from micromoments.demo import generate
    from micromoments.demo.experiment import simulate_experiment
    from micromoments.intent import classify_store
    from micromoments.personas.build import build_personas
    from micromoments.report import build_report
    from micromoments.server.pages import hash_password, mount_pages
    from micromoments.store import Store
    from micromoments.store.ingest import ingest_file

    out = tmp_path_factory.mktemp("marketer")
    cfg = Config()
    cfg.server.admin_users = {"ada": hash_password("lovelace")}
    paths = generate(out / "data", users=300, days=14, seed=11)
    db = out / "micromoments.duckdb"
    store = Store(db)
    ingest_file(store, paths.events, config=cfg)
    classify_store(store, cfg)
    build_personas(store, cfg, stores_path=paths.stores)
    simulate_experiment(store)
    # A nearly empty last day, as a store that is still being written to has.
    last = store.duck.execute("SELECT max(ts) FROM events").fetchone()[0]
    partial = dt.datetime.combine(last.date() + dt.timedelta(days=1), dt.time(1, 30))
    store.duck.execute("INSERT INTO events SELECT * REPLACE ('late-' || message_id AS message_id, ? AS ts) "
                       "FROM events ORDER BY ts DESC LIMIT 3", [partial])
    # What the data says, independently of the analytics: which moments a purchase follows within
    # 30 minutes (so in the same visit) and within 7 days.
    followed = store.duck.execute("""
        WITH m AS (SELECT e.person_id, e.ts, mo.moment FROM events e JOIN event_moments mo USING (message_id)
                   WHERE mo.moment IN ('know', 'go', 'do', 'buy')),
             b AS (SELECT person_id, ts FROM events WHERE event = 'Order Completed')
        SELECT m.moment, bool_or(b.ts <= m.ts + INTERVAL 30 MINUTE) AS same_visit, true AS within_window
        FROM m JOIN b ON b.person_id = m.person_id AND b.ts >= m.ts AND b.ts <= m.ts + INTERVAL 7 DAY
        GROUP BY 1""").df().set_index("moment")
    report = build_report(store, out / "report.html", cfg)
    store.close()

    app = FastAPI()
    cache = mount_pages(app, store_path=str(db), config=cfg)
    with pages_served(app) as base:
        yield dict(base=base, report=report, followed=followed, partial=partial, db=db, cache=cache)


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as b:
        yield b


def _watch(page, allowed: tuple[str, ...]) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    # A poll cut short by leaving the page (net::ERR_ABORTED) is no error; any other failure is.
    page.on("requestfailed", lambda r: errors.append(f"failed request {r.url}: {r.failure}")
            if "ERR_ABORTED" not in str(r.failure) else None)
    page.on("response", lambda r: errors.append(f"{r.status} for {r.url}") if r.status >= 400 else None)
    page.on("request", lambda r: errors.append(f"outside request {r.url}")
            if not r.url.startswith((*allowed, "data:", "about:", "blob:")) else None)
    return errors


def _rate(text: str, word: str) -> str | None:
    m = re.search(rf"(\d[\d.,]*%) {word}", text)
    return m.group(1) if m else None


def problems_on(page, where: str, followed, seen: dict[str, set[str]]) -> list[str]:
    """Everything wrong with the numbers on the page now open; `seen[where]` gets the moments whose
    rates were read (so a check that finds no rates fails instead of passing vacuously)."""
    bad = []
    text = page.inner_text("body")
    labels = page.evaluate(LABELS_JS)
    for t in [text, *(t for _, t in labels)]:
        m = NAN.search(t)
        if m:
            bad.append(f"{where}: 'nan' in {t[max(0, m.start() - 80):m.end() + 40]!r}")
        if re.search(r"\b0% convert", t):
            bad.append(f"{where}: '0% convert' in {t[:120]!r}")
    # Chart texts as drawn: a count of 1,000 or more carries its thousands separator (years aside).
    for t in page.evaluate("() => [...document.querySelectorAll('svg text')].map(e => e.textContent)"):
        if MONTH.search(t):  # a date tick ("Sep 8" and "2026" drawn as one text)
            continue
        for n in re.findall(r"(?:^|(?<=\s))\d{4,}(?=\s|$|%| ·)", t):
            if not 1990 <= int(n) <= 2100:
                bad.append(f"{where}: {n} without a thousands separator in {t[:80]!r}")
    by_moment: dict[str, list[str]] = {}
    for label, t in labels:
        key = next((k for k, name in MOMENTS.items() if label == name), None)
        if key and "%" in t:
            by_moment.setdefault(key, []).append(t)
    seen[where] = {k for k, texts in by_moment.items() if any(_rate(t, "within") for t in texts)}
    for key, texts in by_moment.items():
        if key not in followed.index:
            continue
        window = [_rate(t, "within") for t in texts if _rate(t, "within")]
        if window and all(r in ("0%", "0.0%") for r in window):
            bad.append(f"{where}: {MOMENTS[key]} shows 0% bought within the window, yet purchases follow it")
        same = [_rate(t, "same visit") for t in texts if _rate(t, "same visit")]
        if followed.loc[key, "same_visit"] and same and all(r in ("0%", "0.0%") for r in same):
            bad.append(f"{where}: {MOMENTS[key]} shows 0% bought in the same visit, yet purchases follow it")
    # Tables (the report's metrics by moment): a row per moment with a "within" column.
    for table in page.locator("table").all():
        heads = [h.strip() for h in table.locator("thead th").all_inner_texts()]
        cols = [i for i, h in enumerate(heads) if "within" in h]
        for row in table.locator("tbody tr").all():
            cells = row.locator("td").all_inner_texts()
            if cols and cells and cells[0] in followed.index and cells[cols[0]].startswith(("0%", "0.0%")):
                bad.append(f"{where}: table row {cells[0]} shows {cells[cols[0]]} within the window")
    return bad


def test_every_page_and_the_report_read_right(demo, browser) -> None:
    base, followed = demo["base"], demo["followed"]
    assert set(followed.index) == set(MOMENTS), "the demo should have purchases after every kind of moment"
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    errors = _watch(page, (base,))
    page.goto(base + "/app/login")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", "lovelace")
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/app/login" not in u)
    bad: list[str] = []
    seen: dict[str, set[str]] = {}
    for path in PAGES:
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)  # let the charts draw
        bad += problems_on(page, path, followed, seen)
        if path in ("/app", "/app?period=14d"):
            # The period ends on a complete day, the partial one is named and left out.
            end = page.get_attribute(".kpis", "data-period-end")
            assert end is not None and end < demo["partial"].strftime("%Y-%m-%d"), (path, end)
            assert page.locator("[data-partial-day]").get_attribute("data-partial-day") == \
                demo["partial"].strftime("%Y-%m-%d")
            snap = demo["cache"].snapshot()  # the server holds the store open: ask through its cursor
            with snap.lock:
                days = snap.db.query("SELECT CAST(ts AS DATE) AS day, count(*) AS n FROM events GROUP BY 1")
            n_end = int(days[days.day.astype(str) == end].n.sum())
            assert n_end >= 0.5 * days.n.median(), f"{path}: the period ends on {end}, a partial day ({n_end} events)"
        if path == "/app/questions":
            first = page.locator("#faq table tbody tr td.theme").first.inner_text().strip()
            assert not first.lower().startswith("other"), f"the biggest theme is {first!r}"
            assert page.locator("#faq table tbody tr.other").count() <= 1
        if path == "/app/experiments":
            verdict = page.locator(".verdict").first.inner_text()
            assert verdict and "Not enough data" not in verdict, verdict
        if path == "/app":
            page.screenshot(path=str(IMG / "app-overview.png"), full_page=False)
        if path == "/app/journey":
            page.screenshot(path=str(IMG / "app-journey.png"), clip={"x": 0, "y": 0, "width": 1280, "height": 1400},
                            full_page=True)
        if path in ("/app/questions", "/app/experiments"):
            page.screenshot(path=str(IMG / f"app-{path.rsplit('/', 1)[1]}.png"), full_page=False)
    ctx.close()

    # The report, from its file: the same checks, and its FAQ table's first theme.
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    report_errors = _watch(page, ("file:",))
    page.goto(demo["report"].resolve().as_uri())
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 7", timeout=60000)
    bad += problems_on(page, "report", followed, seen)
    first = page.locator("#faq table tbody tr td").first.inner_text().strip()
    assert not first.lower().startswith("other"), f"the report's biggest theme is {first!r}"
    page.screenshot(path=str(IMG / "report.png"), full_page=False)
    ctx.close()
    assert bad == []
    for where in ("/app", "/app/journey", "report"):  # the moment mix and the journey map were read
        assert seen[where] == set(MOMENTS), (where, seen[where])
    assert errors == [] and report_errors == []
