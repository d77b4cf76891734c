"""The demo data generator: Segment shape, ground truth, determinism, realism, streaming."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import random
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import orjson
import pytest
from typer.testing import CliRunner

from micromoments.demo import FAMILIES, STORES, generate
from micromoments.demo.queries import MOMENTS, QueryContext, generate_query, misspell
from micromoments.demo.stores import distance_km
from micromoments.demo.vocab import PRODUCTS, PROJECTS, VOICE_PREFIXES

TYPES = {"track", "page", "screen", "identify", "alias"}
CHANNELS = {"web", "app", "email", "social", "paid-search", "organic-search", "direct"}


def _ts(text: str) -> dt.datetime:
    assert text.endswith("Z"), text
    return dt.datetime.fromisoformat(text[:-1])


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("demo")
    paths = generate(out, users=400, days=30, seed=11)
    events = [orjson.loads(line) for line in paths.events.read_bytes().splitlines()]
    return paths, events


def test_sizes_and_files(demo):
    paths, events = demo
    assert paths.n_events == len(events)
    # Rough sizing promised in the docs: 25-60 events per person.
    assert 25 <= paths.events_per_user <= 60
    assert paths.n_sessions > paths.users and paths.n_episodes > paths.n_sessions
    stores = _csv(paths.stores)
    assert len(stores) == len(STORES) == 25
    assert len({s["country"] for s in stores}) >= 3 and len({s["timezone"] for s in stores}) >= 4
    assert all(s["opening_hours"].startswith("Mo-Sa ") for s in stores)


def test_every_line_is_a_segment_event(demo):
    _, events = demo
    ids = [e["messageId"] for e in events]
    assert len(ids) == len(set(ids)), "messageId must be unique"
    for e in events:
        assert e["type"] in TYPES
        assert e["anonymousId"]
        _ts(e["timestamp"])
        assert e["channel"] in CHANNELS
        ctx = e["context"]
        assert ctx["device"]["type"] in {"mobile", "desktop", "tablet"}
        assert ctx["timezone"].count("/") == 1 and ctx["locale"].startswith("en-")
        assert ctx["ip"] and ctx["userAgent"] and ctx["os"]["name"]
        assert {"latitude", "longitude", "city", "country"} <= set(ctx["location"])
        if e["type"] == "track":
            assert e["event"] and isinstance(e["properties"], dict)
        if e["type"] in ("page", "screen"):
            assert e["name"]
        if e["type"] == "page":
            page = ctx["page"]
            assert page["url"].startswith("https://") and page["path"].startswith("/") and page["title"]
        if e["type"] == "identify":
            assert e["userId"] and "@" in e["traits"]["email"] and e["traits"]["first_name"]
        if e["type"] == "alias":
            assert e["previousId"] == e["anonymousId"] and e["userId"]
        if e["channel"] == "app":
            assert ctx["app"]["name"] == "Greenhaven"
        if e["channel"] in ("email", "paid-search", "social"):
            assert ctx["campaign"]["medium"] and ctx["campaign"]["source"]
    names = Counter(e.get("event") or e.get("name") for e in events)
    for needed in ("Products Searched", "Product List Viewed", "Product Viewed", "Product Added", "Cart Viewed",
                   "Checkout Started", "Order Completed", "Store Locator Viewed", "Directions Requested",
                   "Video Played", "Email Link Clicked", "How-To", "Advice", "Search Results", "Store Finder"):
        assert names[needed] > 0, needed
    types = Counter(e["type"] for e in events)
    assert all(types[t] > 0 for t in TYPES)


def _queries_of(e: dict) -> list[str]:
    """Every place a query can hide: properties.query, context.page.search, a ?q= URL."""
    found = []
    if e.get("properties", {}).get("query"):
        found.append(e["properties"]["query"])
    page = e.get("context", {}).get("page") or {}
    if page.get("search"):
        found.append(page["search"])
    q = parse_qs(urlparse(page.get("url", "")).query).get("q")
    if q and e["type"] == "page":
        found.append(q[0])
    return found


def test_ground_truth_matches_events(demo):
    paths, events = demo
    moments = {r["query"]: r for r in _csv(paths.truth_moments)}
    in_events = {q for e in events for q in _queries_of(e)}
    assert in_events and in_events <= set(moments), sorted(in_events - set(moments))[:5]
    assert set(moments) == in_events, "truth_moments lists only queries that occur"

    truth = {r["messageId"]: r for r in _csv(paths.truth_events)}
    assert set(truth) == {e["messageId"] for e in events}
    people = {r["person_key"]: r for r in _csv(paths.truth_personas)}
    assert len(people) == paths.users
    for e in events:
        t = truth[e["messageId"]]
        person = people[t["person_key"]]
        assert t["persona"] == person["persona"]
        assert e["anonymousId"] in person["anonymous_ids"].split("|")
        if "userId" in e:
            assert e["userId"] == person["user_id"]
        assert bool(t["episode_id"]) == bool(t["episode_moment"])
        if t["episode_moment"] == "go":
            assert t["episode_go_type"] in ("local", "site")
        # An identify, alias, app open, home page or email click is never part of an episode.
        if e["type"] in ("identify", "alias") or e.get("event") in ("Application Opened", "Email Link Clicked"):
            assert not t["episode_id"]
        # A searched query carries the moment of its episode.
        for q in _queries_of(e):
            assert moments[q]["moment"] == t["episode_moment"], (q, t)


def test_all_moments_and_personas_present(demo):
    paths, _ = demo
    labels = _csv(paths.truth_moments)
    assert {r["moment"] for r in labels} == set(MOMENTS)
    assert {r["go_type"] for r in labels if r["moment"] == "go"} == {"local", "site"}
    assert {r["go_type"] for r in labels if r["moment"] != "go"} == {""}
    truth = _csv(paths.truth_events)
    assert {r["episode_moment"] for r in truth} == set(MOMENTS) | {""}
    assert len({r["persona"] for r in _csv(paths.truth_personas)}) == 5


def test_split_is_by_template_family(demo):
    paths, _ = demo
    rows = _csv(paths.truth_moments)
    split_of: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        split_of[r["family"]].add(r["split"])
    assert all(len(s) == 1 for s in split_of.values()), "a family straddles train and test"
    # About 30% of families (and each label) are held out.
    test_families = [f for f in FAMILIES if f.split == "test"]
    assert 0.2 <= len(test_families) / len(FAMILIES) <= 0.4
    for label in {(f.moment, f.go_type) for f in FAMILIES}:
        assert {f.split for f in FAMILIES if (f.moment, f.go_type) == label} == {"train", "test"}, label
    share = Counter(r["split"] for r in rows)
    assert 0.15 <= share["test"] / len(rows) <= 0.45


def test_clock_skew_is_recoverable(demo):
    paths, events = demo
    truth = {r["messageId"]: r["true_timestamp"] for r in _csv(paths.truth_events)}
    skewed = 0
    for e in events:
        true = _ts(truth[e["messageId"]])
        if "sentAt" in e:
            corrected = _ts(e["receivedAt"]) - (_ts(e["sentAt"]) - _ts(e["timestamp"]))
            assert corrected == true
            if _ts(e["timestamp"]) != true:
                skewed += 1
                off = abs((_ts(e["timestamp"]) - true).total_seconds())
                assert 60 <= off <= 1200, "device clocks are off by minutes"
        else:
            assert _ts(e["timestamp"]) == true
    mobile = sum(e["context"]["device"]["type"] == "mobile" for e in events)
    assert 0 < skewed < 0.15 * mobile, "a few % of mobile events are skewed"


def test_episodes_are_detectable(demo):
    """Episodes are runs within one session, < 10 minutes apart; a later one opens with a search."""
    paths, events = demo
    truth = {r["messageId"]: r for r in _csv(paths.truth_events)}
    moments = {r["query"]: r["moment"] for r in _csv(paths.truth_moments)}
    by_episode: dict[str, list[tuple[dt.datetime, dict]]] = defaultdict(list)
    for e in events:
        t = truth[e["messageId"]]
        if t["episode_id"]:
            by_episode[t["episode_id"]].append((_ts(t["true_timestamp"]), e))
    sessions_seen: dict[str, int] = Counter()
    for ep_id, rows in by_episode.items():
        rows.sort(key=lambda r: r[0])
        sessions = {truth[e["messageId"]]["session_key"] for _, e in rows}
        assert len(sessions) == 1
        gaps = [(b[0] - a[0]).total_seconds() for a, b in zip(rows, rows[1:])]
        assert all(g < 600 for g in gaps), ep_id
        session = sessions.pop()
        sessions_seen[session] += 1
        if sessions_seen[session] > 1:  # not the session's first episode: it opens with a search
            first = rows[0][1]
            assert _queries_of(first) and moments[_queries_of(first)[0]] == truth[first["messageId"]]["episode_moment"]


def test_identity_can_be_stitched(demo):
    paths, events = demo
    people = _csv(paths.truth_personas)
    with_app = [p for p in people if p["app_anonymous_id"] and p["user_id"]]
    assert with_app, "some people use the app and have an account"
    ids_with_user = {e["anonymousId"] for e in events if e.get("userId")}
    # Cross-device: a person's web and app ids both appear next to the same userId.
    stitched = [p for p in with_app
                if p["app_anonymous_id"] in ids_with_user
                and any(a in ids_with_user for a in p["anonymous_ids"].split("|") if a != p["app_anonymous_id"])]
    assert stitched
    # Some people never log in: their journeys stay anonymous.
    assert any(not p["user_id"] for p in people)


def test_personas_differ_in_behaviour(demo):
    paths, events = demo
    truth = {r["messageId"]: r for r in _csv(paths.truth_events)}
    stats: dict[str, Counter] = defaultdict(Counter)
    revenue: dict[str, list[float]] = defaultdict(list)
    for e in events:
        t = truth[e["messageId"]]
        s = stats[t["persona"]]
        s["n"] += 1
        s["ch:" + e["channel"]] += 1
        s["dev:" + e["context"]["device"]["type"]] += 1
        s["ep:" + t["episode_moment"]] += 1
        local = _ts(t["true_timestamp"]).replace(tzinfo=dt.timezone.utc).astimezone(
            __import__("zoneinfo").ZoneInfo(e["context"]["timezone"]))
        s["weekend"] += local.weekday() >= 5
        s["early"] += local.hour < 9
        if e.get("event") == "Order Completed":
            p = e["properties"]
            assert p["revenue"] == pytest.approx(sum(x["price"] * x["quantity"] for x in p["products"]), abs=0.01)
            revenue[t["persona"]].append(p["revenue"])

    def share(persona: str, key: str) -> float:
        return stats[persona][key] / stats[persona]["n"]

    def top(key: str) -> str:
        return max(stats, key=lambda p: share(p, key))

    assert top("ep:do") == "weekend_diy" and top("weekend") == "weekend_diy"
    assert top("ep:go") == "local_shopper"
    assert top("ep:know") == "garden_researcher" and top("dev:tablet") == "garden_researcher"
    assert top("ch:email") == "deal_hunter"
    assert top("ch:app") == "trade_pro" and top("early") == "trade_pro"
    mean = {p: sum(v) / len(v) for p, v in revenue.items() if v}
    assert max(mean, key=mean.get) == "trade_pro"


def test_directions_are_near_a_store(demo):
    _, events = demo
    stores = {s.store_id: s for s in STORES}
    directions = [e for e in events if e.get("event") == "Directions Requested"]
    assert directions
    for e in directions:
        s = stores[e["properties"]["store_id"]]
        loc = e["context"]["location"]
        assert distance_km(loc["latitude"], loc["longitude"], s.lat, s.lon) < 60


def test_deterministic_for_a_seed(tmp_path):
    a = generate(tmp_path / "a", users=30, days=10, seed=5)
    b = generate(tmp_path / "b", users=30, days=10, seed=5)
    c = generate(tmp_path / "c", users=30, days=10, seed=6)
    for name in ("events", "truth_moments", "truth_events", "truth_personas", "stores"):
        assert getattr(a, name).read_bytes() == getattr(b, name).read_bytes(), name
    assert a.events.read_bytes() != c.events.read_bytes()


def test_workers_and_gzip_give_the_same_data(tmp_path):
    one = generate(tmp_path / "one", users=450, days=7, seed=3, workers=1)
    two = generate(tmp_path / "two", users=450, days=7, seed=3, workers=2, gzip_events=True)
    assert two.events.name == "events.jsonl.gz"
    assert gzip.decompress(two.events.read_bytes()) == one.events.read_bytes()
    assert one.truth_events.read_bytes() == two.truth_events.read_bytes()
    assert one.truth_moments.read_bytes() == two.truth_moments.read_bytes()
    assert not (tmp_path / "two" / ".parts").exists()


def test_generation_streams_in_blocks(tmp_path):
    """The files grow while people are simulated: nothing waits for the end."""
    sizes: list[tuple[int, int]] = []
    out = tmp_path / "s"

    def seen(done: int, n_events: int) -> None:
        sizes.append((done, (out / "events.jsonl").stat().st_size))

    generate(out, users=650, days=5, seed=2, on_progress=seen)
    assert len(sizes) >= 4
    assert [d for d, _ in sizes] == sorted(d for d, _ in sizes)
    grown = [s for _, s in sizes]
    assert grown == sorted(grown) and grown[0] > 0 and grown[-1] > grown[0]


def test_query_grammar_is_rich_and_realistic():
    rng = random.Random(0)
    texts: dict[str, str] = {}
    for _ in range(20_000):
        project = PROJECTS[rng.choice(list(PROJECTS))]
        ctx = QueryContext(project, PRODUCTS[rng.choice(project.products)], rng.choice(project.tasks),
                           city=rng.choice(STORES).city, us=rng.random() < 0.2)
        text, fam = generate_query(rng, ctx, rng.choice(MOMENTS), typo_rate=0.08, capitalise_rate=0.05)
        texts.setdefault(text, fam.moment)
    assert len(texts) > 5000
    lower = list(texts)
    assert any(t.startswith(VOICE_PREFIXES) and len(t.split()) >= 7 for t in lower)      # voice, conversational
    assert any(t.startswith(("how do i ", "what is ", "can you ")) for t in lower)       # questions
    assert any(t.endswith("near me") for t in lower)                                     # local
    assert any(t.startswith("greenhaven ") and texts[t] == "go" for t in lower)          # site navigation
    assert any(t.startswith(("cheap ", "buy ")) for t in lower)                          # buy
    assert any(" center" in t for t in lower)                                            # US spelling
    assert sum(len(t.split()) <= 2 for t in lower) > 100                                # short head terms
    assert misspell(random.Random(1), "ericaceous compost") != "ericaceous compost"


def test_cli_writes_the_files(tmp_path):
    from micromoments.cli import app

    result = CliRunner().invoke(app, ["demo-data", "--users", "20", "--days", "5", "--out", str(tmp_path),
                                      "--seed", "1", "--workers", "1", "--start", "2026-10-01"])
    assert result.exit_code == 0, result.output
    assert "events/s" in result.output
    first = orjson.loads((tmp_path / "events.jsonl").read_bytes().splitlines()[0])
    assert first["timestamp"] >= "2026-09-30"
    bad = CliRunner().invoke(app, ["demo-data", "--users", "2", "--out", str(tmp_path), "--start", "tomorrow"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
    digest = hashlib.sha1((tmp_path / "truth_moments.csv").read_bytes()).hexdigest()
    assert digest
