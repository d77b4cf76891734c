"""The HTML report: sections, self-containment, graceful degradation, and a headless-Chromium check."""

from __future__ import annotations

import datetime as dt
import random
import re
from pathlib import Path

import pandas as pd
import pytest

from conftest import events_frame
from micromoments.report import build_report
from micromoments.store import Store
from micromoments.store.schema import EVENTS_COLUMNS

pytestmark = pytest.mark.filterwarnings("ignore:The .future.infer_string. option")

QUERIES = {
    "know": ["how to choose running shoes", "what is heel drop in running shoes", "are carbon plate shoes worth it",
             "how long do running shoes last", "what shoes for flat feet"],
    "go": ["shoe store near me", "running store open now", "where is the nearest outlet store"],
    "do": ["how to clean white sneakers", "how to lace running shoes", "how to break in new boots"],
    "buy": ["buy trail running shoes", "cheap running shoes sale", "best price nike pegasus"],
}
ZONES = ["Europe/Paris", "America/New_York", "Asia/Tokyo", None]
CHANNELS = ["organic-search", "paid-search", "email", "social", "direct"]


def journey_events(people: int = 240, seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A small shop's month: people search (know/go/do/buy), browse, buy sometimes, ask how-to after."""
    rng = random.Random(seed)
    rows, moments = [], []
    start = dt.datetime(2026, 3, 2, 6)

    def add(p: dict, t: dt.datetime, moment: str | None = None, **kw) -> dt.datetime:
        rows.append(dict(p, ts=t, **kw))
        if moment:
            moments.append((len(rows) - 1, moment, 0.6 + 0.4 * rng.random()))
        return t + dt.timedelta(minutes=rng.randint(1, 4))

    for i in range(people):
        p = dict(person_id=f"u{i}", timezone=rng.choice(ZONES), channel=rng.choice(CHANNELS), device_type="mobile")
        t = start + dt.timedelta(days=rng.randint(0, 25), hours=rng.choice([0, 2, 3, 5, 6, 11, 12, 13, 14]))
        first = rng.choice(["know", "know", "go", "do", "buy"])
        q = rng.choice(QUERIES[first])
        t = add(p, t, first, event="Products Searched", query=q)
        t = add(p, t, first, type="page", page_path=f"/{first}/{q.split()[-1]}")
        if first == "know" and "flat feet" in q:  # a content gap: asked a lot, rarely buys
            continue
        if rng.random() < 0.6:
            q = rng.choice(QUERIES["buy"])
            t = add(p, t, "buy", event="Products Searched", query=q)
            for _ in range(rng.randint(1, 3)):
                t = add(p, t, "buy", event="Product Viewed", page_path=f"/p/{rng.randint(1, 6)}")
            if rng.random() < 0.5:
                t = add(p, t, event="Product Added", page_path="/cart")
                if rng.random() < 0.7:
                    t = add(p, t, event="Order Completed", revenue=float(rng.randint(40, 160)), page_path="/checkout")
                    if rng.random() < 0.4:
                        t += dt.timedelta(days=2)
                        q = rng.choice(QUERIES["do"])
                        t = add(p, t, "do", event="Products Searched", query=q)
                        add(p, t, "do", type="page", page_path="/help/care")
    frame = events_frame(rows, with_moments=False)
    em = pd.DataFrame([(frame.message_id[i], m, None, c, None, "test") for i, m, c in moments],
                      columns=["message_id", "moment", "go_type", "confidence", "cues", "basis"])
    return frame, em


def make_store(path: Path, with_moments: bool = True, people: int = 240) -> Store:
    store = Store(path)
    frame, em = journey_events(people)
    store.duck.register("_frame", frame)
    store.duck.execute(f"INSERT INTO events SELECT {', '.join(EVENTS_COLUMNS)} FROM _frame")
    if with_moments:
        store.duck.register("_em", em)
        store.duck.execute("CREATE TABLE event_moments AS SELECT * FROM _em")
    return store


SECTIONS = ("overview", "moments", "journey", "paths", "funnels", "peaks", "faq", "touchpoints")


def test_report_has_every_section_and_is_self_contained(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s.duckdb")
    out = build_report(store, tmp_path / "out" / "report.html")
    text = out.read_text()
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in text
    assert "plotly.js v" in text or "plotly.js" in text
    assert not re.search(r'<script[^>]+src=', text), "no external scripts"
    assert "cdn." not in text.split("<body>")[1]
    assert text.count('class="plotly-graph-div"') >= 7
    assert "Micro-moments have not been classified" not in text
    assert "most common" in text and "Content gap" in text
    assert "what shoes for flat feet" in text  # the planted content gap is named


def test_report_without_moments_says_so(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s.duckdb", with_moments=False)
    text = build_report(store, tmp_path / "r.html").read_text()
    assert "Micro-moments have not been classified yet" in text
    assert 'id="chart-funnel"' in text and 'id="chart-journey"' in text


def test_report_on_an_empty_store(tmp_path: Path) -> None:
    text = build_report(Store(tmp_path / "e.duckdb"), tmp_path / "r.html").read_text()
    assert "holds no events yet" in text


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    store = make_store(tmp_path / "s.duckdb", people=400)
    out = build_report(store, tmp_path / "report.html")
    errors: list[str] = []
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: errors.append(f"network request {r.url}") if not r.url.startswith(("file:", "data:", "about:")) else None)
        page.goto(out.as_uri())
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 7")
        charts = page.eval_on_selector_all(
            ".plotly-graph-div",
            "els => els.map(e => [e.id, e.querySelectorAll('svg.main-svg *').length])")
        assert len(charts) >= 7
        for chart_id, n in charts:
            assert n > 10, f"{chart_id} drew an empty SVG"
        # Into the test's folder: the README's screenshot (docs/img) comes from the real demo report.
        shot = out.parent / "report.png"
        page.screenshot(path=str(shot), full_page=False, clip={"x": 0, "y": 0, "width": 1200, "height": 1500})
        assert shot.stat().st_size > 10_000
        browser.close()
    assert errors == []
