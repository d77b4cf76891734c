"""The store step (`classify_store`) and the `classify` / `evaluate` / `classify-store` commands."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from micromoments.cli import app
from micromoments.config import Config, CustomMoment, IntentConfig
from micromoments.intent import Classifier, classify_store
from micromoments.store import Store

SITE = "https://www.greenhaven.example"
EVENTS = [
    # message_id, type, event, name, query, page_url, page_title, properties
    ("e1", "track", "Products Searched", None, "cordless drill for sale", f"{SITE}/search?q=cordless+drill", "Search | Greenhaven", '{"query": "cordless drill for sale"}'),
    ("e2", "track", "Products Searched", None, "Cordless  Drill for SALE", None, None, None),  # same text once normalised
    ("e3", "track", "Products Searched", None, "how to lay patio slabs", None, None, None),
    ("e4", "track", "Order Completed", None, None, f"{SITE}/checkout/confirmation", "Thank you | Greenhaven", '{"revenue": 59.9}'),
    ("e5", "track", "Checkout Started", None, None, f"{SITE}/checkout", None, None),
    ("e6", "page", None, "Store Locator", None, f"{SITE}/store-locator?postcode=LS1", "Find a store | Greenhaven", None),
    ("e7", "page", None, None, None, f"{SITE}/garden/how-to-grow-tomatoes", "How to grow tomatoes | Greenhaven", None),
    ("e8", "page", None, None, None, f"{SITE}/c/garden-furniture/sale", None, None),
    ("e9", "track", "Video Played", None, None, f"{SITE}/videos/9", None, '{"title": "Tutorial: tiling a splashback"}'),
    ("e10", "identify", None, None, None, None, None, None),
    ("e11", "screen", None, "Opening Hours", None, None, None, None),
    ("e12", "page", None, None, None, f"{SITE}/plants/tamarind-tree", "Tamarind tree facts - Greenhaven", None),
    ("e13", "track", "Products Searched", None, "gmail login", None, None, None),
]


def make_store(path: Path | str = ":memory:", events=EVENTS) -> Store:  # type: ignore[no-untyped-def]
    import pyarrow as pa

    store = Store(path)
    cols = ["message_id", "type", "event", "name", "query", "page_url", "page_title", "properties"]
    batch = pa.table({c: pa.array([e[i] for e in events], pa.string()) for i, c in enumerate(cols)})
    store.duck.register("_new_events", batch)
    store.duck.execute(f"INSERT INTO events ({', '.join(cols)}) SELECT * FROM _new_events")
    store.duck.unregister("_new_events")
    return store


def moments(store: Store) -> dict[str, tuple]:  # type: ignore[type-arg]
    rows = store.duck.execute("SELECT message_id, moment, go_type, basis, confidence, cues FROM event_moments").fetchall()
    return {r[0]: r[1:] for r in rows}


def test_store_step_classifies_distinct_texts_and_applies_rules() -> None:
    store = make_store()
    stats = classify_store(store)
    got = moments(store)
    assert got["e1"][:3] == ("buy", None, "query") and got["e2"][:3] == ("buy", None, "query")
    assert got["e3"][:3] == ("do", None, "query")
    assert got["e4"][:3] == ("buy", None, "rule") and got["e5"][0] == "buy"
    assert got["e6"][:3] == ("go", "local", "rule")        # store-locator URL rule
    assert got["e7"][:3] == ("do", None, "rule")           # how-to URL rule
    assert got["e8"][2] == "url" and got["e8"][0] == "buy"  # URL words: 'garden furniture sale'
    assert got["e9"][:3] == ("do", None, "rule")           # tutorial video
    assert "e10" not in got                                # identify: no intent
    assert got["e11"][:3] == ("go", "local", "title")      # screen name
    assert got["e12"][:3] == ("know", None, "title")       # title with the site suffix removed
    assert got["e13"][:3] == ("go", "site", "query")
    assert all(0 <= v[3] <= 1 for v in got.values())
    assert json.loads(got["e3"][4])  # cues are a JSON list
    texts = {r[0] for r in store.duck.execute("SELECT text FROM moments_by_text").fetchall()}
    assert "cordless drill for sale" in texts and "tamarind tree facts" in texts
    assert stats["classified"] == stats["distinct_texts"] == len(texts)
    assert stats["event_moments"] == len(got) == 12


def test_second_run_is_cached_and_new_model_version_reclassifies(tmp_path: Path) -> None:
    db = tmp_path / "mm.duckdb"
    store = make_store(db)
    first = classify_store(store)
    store.duck.execute("INSERT INTO events (message_id, type, event, query) VALUES "
                       "('n1', 'track', 'Products Searched', 'hedge trimmer near me'), "
                       "('n2', 'track', 'Products Searched', 'how to lay patio slabs')")
    second = classify_store(store)
    assert second["classified"] == 1 and second["cached"] == first["distinct_texts"]
    third = classify_store(store)
    assert third["classified"] == 0
    assert moments(store)["n1"][:2] == ("go", "local")
    # Custom moments change the model version: everything is classified again, once.
    cfg = Config(intent=IntentConfig(custom_moments=[CustomMoment("garden-makeover", "", [
        "garden makeover ideas", "transform my garden", "new garden design", "garden renovation on a budget",
        "redo my back garden", "small garden makeover", "garden design ideas for a new build",
        "landscaping a sloped garden", "modern garden redesign", "garden revamp before summer"])]))
    fourth = classify_store(store, cfg)
    assert fourth["classified"] == fourth["distinct_texts"] and fourth["model_version"] != third["model_version"]
    n_cache = store.count("moments_by_text")
    assert n_cache == fourth["distinct_texts"]  # stale rows replaced, not duplicated
    store.close()


def test_store_step_on_many_events_uses_distinct_texts() -> None:
    queries = ["how to lay decking", "decking boards for sale", "b&q near me", "what is composite decking"]
    events = [(f"m{i}", "track", "Products Searched", None, queries[i % 4], None, None, None) for i in range(20_000)]
    store = make_store(":memory:", events)
    calls: list[int] = []

    class Counting(Classifier):
        def predict(self, texts, *a, **kw):  # type: ignore[no-untyped-def]
            calls.append(len(texts))
            return super().predict(texts, *a, **kw)

    stats = classify_store(store, classifier=Counting())
    assert calls == [4] and stats["event_moments"] == 20_000
    counts = dict(store.duck.execute("SELECT moment, count(*) FROM event_moments GROUP BY 1").fetchall())
    assert counts == {"do": 5000, "buy": 5000, "go": 5000, "know": 5000}


def test_config_event_rules_in_store(tmp_path: Path) -> None:
    store = make_store()
    cfg = Config(intent=IntentConfig(event_rules=[{"event": "Checkout Started", "moment": "do", "confidence": 0.5}]))
    classify_store(store, cfg)
    assert moments(store)["e5"][:4] == ("do", None, "rule", 0.5)


# -- CLI -------------------------------------------------------------------------------------------

runner = CliRunner()


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_cli_classify_round_trips_formats(tmp_path: Path, suffix: str) -> None:
    rows = [{"query": "garden centre near me", "url": "", "note": "a"},
            {"query": "how to prune roses", "url": "/how-to/prune-roses", "note": "b"},
            {"query": "", "url": "/checkout", "note": "c"}]
    src = tmp_path / f"in{suffix}"
    if suffix == ".jsonl":
        src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    else:
        sep = "\t" if suffix == ".tsv" else ","
        src.write_text("query{0}url{0}note\n".format(sep) + "\n".join(sep.join(r.values()) for r in rows) + "\n")
    out = tmp_path / f"out{suffix}"
    res = runner.invoke(app, ["classify", "--input", str(src), "--text-column", "query", "--url-column", "url",
                              "--output", str(out)])
    assert res.exit_code == 0, res.output
    if suffix == ".jsonl":
        got = [json.loads(line) for line in out.read_text().splitlines()]
    else:
        with out.open(newline="") as fh:
            got = list(csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ","))
    assert [g["note"] for g in got] == ["a", "b", "c"]
    assert [g["moment"] for g in got] == ["go", "do", "buy"]
    assert got[0]["go_type"] == "local" and float(got[1]["confidence"]) > 0.5


def test_cli_classify_errors_name_the_file_and_column(tmp_path: Path) -> None:
    src = tmp_path / "q.csv"
    src.write_text("search_term\nhello\n")
    res = runner.invoke(app, ["classify", "--input", str(src), "--output", str(tmp_path / "o.csv")])
    assert res.exit_code == 2
    assert "q.csv" in res.output and "query" in res.output and "--text-column" in res.output
    res = runner.invoke(app, ["classify", "--input", str(src), "--output", str(tmp_path / "o.xlsx")])
    assert res.exit_code == 2 and "unknown file type" in res.output


def test_cli_evaluate_prints_metrics_and_confusion(tmp_path: Path) -> None:
    src = tmp_path / "labelled.csv"
    src.write_text("query,label\ngmail login,go\nhow to tile a wall,do\nbuy paint online,buy\n"
                   "brad pitt age,know\nhome depot near me,go\nlawn mower deals,buy\n")
    res = runner.invoke(app, ["evaluate", "--input", str(src), "--label-column", "label"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "macro-F1" in res.output and "95% bootstrap CI" in res.output
    assert "Confusion matrix" in res.output and "precision" in res.output
    assert "accuracy 1.000" in res.output


def test_cli_classify_store(tmp_path: Path) -> None:
    db = tmp_path / "mm.duckdb"
    make_store(db).close()
    res = runner.invoke(app, ["classify-store", "--db", str(db)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "12 event moments" in res.output
    res = runner.invoke(app, ["classify-store", "--db", str(db)], terminal_width=200)
    assert "0 classified" in res.output


def test_live_path_agrees_with_store_step() -> None:
    from micromoments.intent import moment_for_event

    store = make_store()
    classify_store(store)
    batch = moments(store)
    cols = ["message_id", "type", "event", "name", "query", "page_url", "page_title", "properties"]
    for row in EVENTS:
        event = {c: v for c, v in zip(cols, row) if v is not None}
        live = moment_for_event(event)
        if row[0] not in batch:
            assert live is None
            continue
        assert (live.moment, live.go_type, live.basis) == batch[row[0]][:3], row


def test_sql_url_words_match_python() -> None:
    import duckdb

    from micromoments.intent.store_step import _URL_WORDS_SQL
    from micromoments.intent.text import url_to_text

    urls = [
        "https://shop.example.com/c/garden-furniture/12345?utm_source=x", "/store-locator", "/search?q=hedge+trimmer",
        "https://example.com/p/12345", "/How-To/Build_A-Raised-Bed.html", "https://www.greenhaven.example/plants/tamarind-tree",
        "/a/b/deadbeef12/x", "", "https://x.com/index.php?k=red+paint&z=1", "HTTP://EXAMPLE.COM/Garden/Sheds#reviews",
        "/products/sku-889123/cordless-drill", "/blog/2026/09/how-to-grow-garlic;jsessionid=abc",
    ]
    con = duckdb.connect()
    got = con.execute(f"SELECT url, {_URL_WORDS_SQL} FROM (SELECT unnest(?) AS url)", [urls]).fetchall()
    assert [(u, url_to_text(u)) for u in urls] == [(u, w or "") for u, w in got]


def test_moments_are_stamped_on_events_and_restamped_when_they_change() -> None:
    from micromoments.journey.moments import events_with_moments
    from micromoments.journey.pipeline import load_events

    store = make_store()
    classify_store(store)
    stamped = {r[0]: r[1:] for r in store.duck.execute(
        "SELECT message_id, moment, go_type, confidence FROM events").fetchall()}
    expected = {k: (v[0], v[1], v[3]) for k, v in moments(store).items()}
    assert {k: v for k, v in stamped.items() if v != (None, None, None)} == expected
    assert stamped["e10"] == (None, None, None)
    # load_events reads the stamped columns: the same rows as the join with event_moments.
    events, has_moments = load_events(store)
    assert has_moments and "event_moments" not in store.ibis.compile(events)
    joined = events_with_moments(store.table("events"), store.table("event_moments"))
    cols = ["message_id", "moment", "go_type", "confidence"]
    assert (store.ibis.execute(events.select(cols).order_by("message_id")).equals(
        store.ibis.execute(joined.select(cols).order_by("message_id"))))
    # A moment that goes away (the event no longer matches) is cleared on the next run; an event
    # that gains one gets it; unchanged events are not rewritten.
    store.duck.execute("UPDATE events SET query = NULL, event = 'Identify Called', page_url = NULL, "
                       "page_title = NULL, properties = NULL WHERE message_id = 'e3'")
    store.duck.execute("UPDATE events SET query = 'how to prune roses' WHERE message_id = 'e10'")
    classify_store(store)
    after = {r[0]: r[1] for r in store.duck.execute("SELECT message_id, moment FROM events").fetchall()}
    assert after["e3"] is None and after["e10"] == "do"
    from micromoments.intent.store_step import stamp_moments

    assert stamp_moments(store.duck) == 0
