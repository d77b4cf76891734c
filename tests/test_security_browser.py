"""Hostile strings in real headless Chromium (issue 18): planted through the collector's own path
(ingest) into every field that reaches a page or the report, into playbook and catalog text and
into query strings; every /app page, a person page and the report are opened, and the test fails
on any dialog, console error, script error, or element built from the data.

Each payload marks the markup it would create with `data-xss`, so markup that got through is
found in the DOM even where the Content-Security-Policy stops its script from running.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import orjson
import pytest

from _server_harness import CHROMIUM, chromium_browser, pages_served
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:The .future.infer_string. option")]


RTL_MIX = ("\u202e\u200b\u2067\u200d\u2066\u200f" * 40) + "مرحبا بالعالم" + "\u202c" * 30
HOSTILE = [
    '<script data-xss>alert("h0")</script>',
    '"><img data-xss src=x onerror=alert("h1")>',
    "' autofocus onfocus='alert(2)' data-xss='",
    '" autofocus onfocus="alert(3)" data-xss="',
    "javascript:alert(4)",
    "</title></textarea><svg data-xss onload=alert(5)>",
    '<a data-xss href="javascript:alert(6)">click me</a>',
    "</script><script data-xss>alert(7)</script>",
    '{{ 7*7 }}{% raw %}<b data-xss>b</b>',
    '<iframe data-xss srcdoc="<script>parent.alert(9)</script>"></iframe>',
    RTL_MIX + '<i data-xss onmouseover="alert(10)">rtl</i>',
    "%3Cimg%20data-xss%20src%3Dx%20onerror%3Dalert(11)%3E",
]
PAGES = ["/app", "/app?period=all", "/app/live", "/app/journey", "/app/questions", "/app/search", "/app/personas",
         "/app/playbooks", "/app/experiments"]


def _hostile_events(now: str) -> list[dict]:
    """Events whose every text field carries one hostile string, through the Segment shape."""
    out = []
    for i, h in enumerate(HOSTILE):
        for j, name in enumerate((h, "Products Searched", "Product Viewed", "Order Completed")):
            out.append({
                "type": "track", "event": name, "messageId": f"hostile-{i}-{j}", "timestamp": now,
                "userId": f"u{i}{h}", "anonymousId": f"a{i}{h}",
                "properties": {"query": f"how to {h}", "title": h, "path": f"/p/{i}/{h}", "name": h,
                               "url": f"https://shop.example/search?q={urllib.parse.quote(h)}", h: h},
                "traits": {"name": h, "email": f"{i}@x.example"},
                "context": {"page": {"title": h, "path": f"/p/{i}/{h}", "referrer": h,
                                     "url": f"https://shop.example/p/{i}?q={urllib.parse.quote(h)}"},
                            "campaign": {"name": h, "source": h, "medium": "cpc"}, "timezone": "Europe/Paris"},
            })
    return out


def _hostile_activation(src: Path, dest: Path) -> tuple[Path, Path]:
    """The shipped playbooks and catalog with hostile names, descriptions and content text."""
    playbooks = dest / "playbooks"
    playbooks.mkdir(parents=True)
    for i, f in enumerate(sorted((src / "playbooks").glob("*.yaml"))):
        doc = yaml.safe_load(f.read_text())
        for pb in doc.get("playbooks", []):
            pb["description"] = HOSTILE[(i + 1) % len(HOSTILE)]  # names are identifiers (checked on load)
        (playbooks / f.name).write_text(yaml.safe_dump(doc, allow_unicode=True))
    catalog = yaml.safe_load((src / "catalog.yaml").read_text())
    text = [h for h in HOSTILE if "{" not in h]  # catalog fields are templates: braces are the author's
    for i, item in enumerate(catalog["items"]):
        item["title"] = text[i % len(text)] + " " + str(item.get("title", ""))
        item["cta"] = text[(i + 2) % len(text)]
    (dest / "catalog.yaml").write_text(yaml.safe_dump(catalog, allow_unicode=True))
    return playbooks, dest / "catalog.yaml"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    import datetime as dt


    from micromoments.activation import engine
    from micromoments.config import Config
    from micromoments.demo import generate
    from micromoments.intent import classify_store
    from micromoments.report.build import build_report
    from micromoments.server.app import create_app
    from micromoments.server.pages import hash_password
    from micromoments.store import Store
    from micromoments.store.ingest import ingest_file

    out = tmp_path_factory.mktemp("hostile")
    cfg = Config()
    cfg.server.admin_users = {"ada": hash_password("lovelace")}
    cfg.server.write_keys = {"test-key": "test"}
    examples = Path(engine.__file__).parent / "examples"
    playbooks, catalog = _hostile_activation(examples, out / "activation")
    cfg.activation.playbooks_dir, cfg.activation.catalog = str(playbooks), str(catalog)
    paths = generate(out / "data", users=80, days=5, seed=3)
    now = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).isoformat()
    hostile = out / "hostile.jsonl"
    hostile.write_bytes(b"\n".join(orjson.dumps(e) for e in _hostile_events(now)) + b"\n")
    db = out / "micromoments.duckdb"
    store = Store(db)
    ingest_file(store, paths.events, config=cfg)
    result = ingest_file(store, hostile, config=cfg)
    assert result.loaded == 4 * len(HOSTILE), "the hostile events must really be in the store"
    classify_store(store, cfg)
    report = build_report(store, out / "report.html", cfg)
    store.close()

    from micromoments.activation.engine import Activator
    from micromoments.activation.wal_loader import LogSink

    sink = LogSink()
    activator = Activator(cfg, log_sink=sink)
    app = create_app(cfg, db_path=db, data_dir=out, activator=activator, log_sink=sink)
    with pages_served(app) as base:
        yield base, report


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as b:
        yield b


INJECTED = """() => {
  const found = [...document.querySelectorAll('[data-xss]')].map(e => e.outerHTML.slice(0, 80));
  for (const e of document.querySelectorAll('[href], [src], [action], [formaction]')) {
    for (const a of ['href', 'src', 'action', 'formaction']) {
      const v = (e.getAttribute(a) || '').replace(/[\\s\\u0000-\\u001f]/g, '').toLowerCase();
      if (v.startsWith('javascript:')) found.push(e.outerHTML.slice(0, 80));
    }
  }
  for (const f of document.querySelectorAll('iframe')) found.push(f.outerHTML.slice(0, 80));
  return found;
}"""


def _watch(page) -> list[str]:
    problems: list[str] = []

    def on_dialog(d) -> None:
        problems.append(f"dialog: {d.message}")
        d.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    return problems


def _check(page, where: str, problems: list[str], *, missing_ok: bool = False) -> None:
    """`missing_ok`: a person page may be a 404 (an id with "/" is not one path segment)."""
    page.wait_for_timeout(150)  # let chart drawing and deferred scripts run
    if missing_ok:
        problems[:] = [p for p in problems if "status of 404" not in p]
    injected = page.evaluate(INJECTED)
    assert not injected, f"{where}: markup from the data: {injected[:3]}"
    assert not problems, f"{where}: {problems[:5]}"


def test_hostile_strings_never_run_or_become_markup(server, browser) -> None:
    base, report = server
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    problems = _watch(page)
    # The login page, with hostile query-string parameters, before anyone signs in.
    for h in HOSTILE[:8]:  # "/app" + h passed the old check of next= and was reflected unescaped
        page.goto(base + "/app/login?" + urllib.parse.urlencode({"next": "/app" + h, "error": h}))
        _check(page, f"login next={h!r}", problems)
    page.goto(base + "/app/login?next=" + urllib.parse.quote("/app/journey"))
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", "lovelace")
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/app/login" not in u)
    for path in PAGES:
        page.goto(base + path)
        _check(page, path, problems)
    # Query strings on every page that reads them.
    quoted = [urllib.parse.quote(h, safe="") for h in HOSTILE]
    urls = [f"/app/playbooks?msg={q}" for q in quoted]
    urls += [f"/app/journey/examples?path={a}&stage={b}&moment={c}&persona={d}"
             for a, b, c, d in zip(quoted[0::4], quoted[1::4], quoted[2::4], quoted[3::4])]
    urls += [f"/app?period={q}" for q in quoted[:4]] + [f"/app/people/{q}" for q in quoted[4:8]]
    for url in urls:
        page.goto(base + url)
        _check(page, url, problems, missing_ok=url.startswith("/app/people/"))
    # People pages of the hostile ids, reached by their links.
    page.goto(base + "/app/journey/examples?path=" + urllib.parse.quote("know"))
    people = page.eval_on_selector_all("#examples a", "els => els.map(e => e.getAttribute('href'))")
    for i, h in enumerate(HOSTILE[:6]):
        page.goto(base + "/app/people/" + urllib.parse.quote(f"u{i}{h}", safe=""))
        _check(page, f"person u{i}", problems, missing_ok=True)
    for href in people[:3]:
        page.goto(base + href)
        _check(page, href, problems)
    # Keywords typed into the questions page come back escaped.
    page.goto(base + "/app/questions")
    if page.locator("textarea[name=keywords]").count():
        page.fill("textarea[name=keywords]", "\n".join(HOSTILE + ["🎉🎉", "✨", "🔥"]))
        page.locator("form:has(textarea[name=keywords]) button[type=submit]").click()
        page.wait_for_load_state()
        _check(page, "keywords", problems)
    # The self-contained report, opened from disk as marketers do.
    page.goto(report.as_uri())
    page.wait_for_timeout(1500)
    _check(page, "report", problems)
    assert page.locator(".js-plotly-plot").count() >= 5  # the charts did draw
    ctx.close()
