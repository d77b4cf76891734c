"""The activator end to end with real parts: a push gateway (HTTP, HMAC checked) and an SMTP server."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from _activation_fixtures import (
    LEEDS,
    NOWHERE,
    SECRET,
    Receiver,
    Sink,
    SmtpSink,
    add_to_cart,
    canon,
    identify,
    raw_event,
    search,
)
from micromoments.activation.engine import Activator
from micromoments.activation.geo import distance_km
from micromoments.activation.limits import local_time
from micromoments.config import Config
from micromoments.store.schema import DECISIONS_COLUMNS, EXPOSURES_COLUMNS, OUTCOMES_COLUMNS

NOON = dt.datetime(2026, 9, 1, 11, 0)  # 12:00 in London (BST)


@pytest.fixture(scope="module")
def push_gateway():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def smtp():
    s = SmtpSink()
    yield s
    s.close()


def make(push_gateway: Receiver, smtp: SmtpSink, **kw: Any) -> tuple[Activator, Sink]:
    cfg = Config()
    cfg.activation.push_url = push_gateway.url + "/push"
    cfg.activation.webhook_secret = SECRET
    cfg.activation.smtp_host, cfg.activation.smtp_port = "127.0.0.1", smtp.port
    cfg.activation.smtp_from = "hello@greenhaven.example"
    for k, v in kw.items():
        setattr(cfg.activation, k, v)
    sink = Sink()
    return Activator(cfg, log_sink=sink, seed=1), sink


def test_go_query_near_a_store_fires_a_push_naming_that_store(push_gateway, smtp):
    act, sink = make(push_gateway, smtp)
    before = len(push_gateway.received)
    decisions = act.on_event(search(NOON, "garden centre near me", anon="go-1", location=LEEDS))
    assert [d.status for d in decisions] == ["chosen"]
    d = decisions[0]
    assert (d.playbook, d.channel, d.moment, d.content_id) == ("go-near-store", "push", "go", "store-nearby-push")
    got = push_gateway.wait(before + 1)[before:]
    act.close()
    assert len(got) == 1 and got[0].valid and got[0].path == "/push"
    msg = got[0].json["message"]
    assert "Greenhaven Leeds" in msg["notification"]["body"]
    assert "Greenhaven Leeds" in msg["apns"]["payload"]["aps"]["alert"]["body"]
    assert msg["data"]["decision_id"] == d.decision_id and msg["topic"] == "person-go-1"
    # Logged for measurement: the decision (schema columns), then the exposure once delivered.
    assert set(sink.rows["decisions"][0]) == set(DECISIONS_COLUMNS)
    assert sink.rows["decisions"][0]["propensity"] == 1.0
    exp = sink.rows["exposures"]
    assert len(exp) == 1 and set(exp[0]) == set(EXPOSURES_COLUMNS)
    assert (exp[0]["decision_id"], exp[0]["delivery_status"]) == (d.decision_id, "delivered")
    # moment.started was emitted with the store
    m = act.recent_moments(5)[0]
    assert (m["event"], m["moment"], m["go_type"], m["nearest_store"]) == (
        "moment.started", "go", "local", "Greenhaven Leeds")


def test_go_query_far_from_any_store_sends_nothing(push_gateway, smtp):
    act, _ = make(push_gateway, smtp)
    before = len(push_gateway.received)
    assert act.on_event(search(NOON, "garden centre near me", anon="go-far", location=NOWHERE)) == []
    assert act.state("go-far").moment == "go"
    act.close()
    time.sleep(0.1)
    assert len(push_gateway.received) == before


def test_buy_moment_with_abandoned_cart_sends_an_email_with_a_discount(push_gateway, smtp):
    act, sink = make(push_gateway, smtp)
    before = len(smtp.messages)
    # Anonymous browsing and a cart, then login (the anonymous profile merges into the user's).
    act.on_event(add_to_cart(NOON, anon="a-cart"))
    act.on_event(identify(NOON + dt.timedelta(minutes=1), "u-maya", "Maya", "maya@post.example", anon="a-cart"))
    # Back the next hour with a buy query: a new session, the cart idle for an hour.
    back = NOON + dt.timedelta(hours=1, minutes=5)
    decisions = act.on_event(search(back, "buy patio slabs online", anon="a-cart", user="u-maya"))
    assert [(d.playbook, d.status) for d in decisions] == [("buy-abandoned-cart", "chosen")]
    st = act.state("u-maya")
    assert st.session_no == 2 and st.moment == "buy" and st.cart and st.email == "maya@post.example"
    msgs = smtp.wait(before + 1)[before:]
    act.close()
    assert len(msgs) == 1
    m = msgs[0]
    assert m["To"] == "maya@post.example" and m["From"] == "hello@greenhaven.example"
    assert m["Subject"].startswith("Maya, your cart is waiting")
    body = m.get_payload(decode=True).decode()
    assert "patio slabs" in body and "CART10-" in body
    assert m["X-Micromoments-Decision"] == decisions[0].decision_id
    # A later purchase is an outcome credited to that decision.
    act2_order = canon(raw_event("track", back + dt.timedelta(minutes=20), anon="a-cart", user="u-maya",
                                 event="Order Completed", props={"order_id": "o1", "revenue": 56.0}))
    act.on_event(act2_order)
    out = sink.rows["outcomes"]
    assert len(out) == 1 and set(out[0]) == set(OUTCOMES_COLUMNS)
    assert (out[0]["kind"], out[0]["decision_id"], out[0]["revenue"]) == ("conversion", decisions[0].decision_id, 56.0)
    assert not act.state("u-maya").cart


def test_buy_moment_without_an_idle_cart_sends_no_email(push_gateway, smtp):
    act, _ = make(push_gateway, smtp)
    act.on_event(identify(NOON, "u-fast", "Ola", "ola@post.example", anon="a-fast"))
    act.on_event(add_to_cart(NOON + dt.timedelta(minutes=1), anon="a-fast", user="u-fast"))
    # Still shopping five minutes later: the cart is not abandoned.
    d = act.on_event(search(NOON + dt.timedelta(minutes=6), "buy patio slabs online", anon="a-fast", user="u-fast"))
    act.close()
    assert [x for x in d if x.channel == "email"] == []


def test_frequency_cap_quiet_hours_and_opt_out_are_honoured(push_gateway, smtp):
    act, sink = make(push_gateway, smtp)
    before = len(push_gateway.received)

    def go(when: dt.datetime, anon: str) -> list[str]:
        # A do moment in between, so each go query starts a new moment.
        act.on_event(search(when - dt.timedelta(minutes=20), "how to lay patio slabs", anon=anon))
        return [d.status for d in act.on_event(search(when, "garden centre near me", anon=anon))]

    # Caps: go-near-store allows 1 push per 24 h per person.
    assert go(NOON, "cap-1") == ["chosen"]
    assert go(NOON + dt.timedelta(hours=2), "cap-1") == ["capped"]
    assert go(NOON + dt.timedelta(hours=25), "cap-1") == ["chosen"]
    # Quiet hours (21:00-08:00 local): 22:30 in London is 21:30 UTC in September.
    late = dt.datetime(2026, 9, 1, 21, 30)
    assert local_time(late, "Europe/London").hour == 22
    assert go(late, "quiet-1") == ["quiet_hours"]
    # The same UTC time is 17:30 in New York: not quiet there.
    act.on_event(search(late - dt.timedelta(minutes=20), "how to lay patio slabs", anon="ny-1",
                        timezone="America/New_York"))
    assert [d.status for d in act.on_event(search(late, "garden centre near me", anon="ny-1",
                                                   timezone="America/New_York"))] == ["chosen"]
    # Opt-out: an Unsubscribed event, a push opt-out trait, and Segment consent preferences.
    act.on_event(canon(raw_event("track", NOON, anon="out-1", event="Unsubscribed", props={})))
    assert go(NOON + dt.timedelta(minutes=30), "out-1") == ["opted_out"]
    act.on_event(canon(raw_event("identify", NOON, anon="out-2", user="u-out2", traits={"push_opt_out": True})))
    assert go(NOON + dt.timedelta(minutes=30), "u-out2") == ["opted_out"]
    act.on_event(canon(raw_event("track", NOON, anon="out-3", event="Consent Updated", props={},
                                 extra_ctx={"consent": {"categoryPreferences": {"marketing": False}}})))
    assert go(NOON + dt.timedelta(minutes=30), "out-3") == ["no_consent"]
    act.close()
    # Exactly the three chosen pushes reached the gateway.
    assert len(push_gateway.wait(before + 3)) - before == 3
    time.sleep(0.2)
    assert len(push_gateway.received) - before == 3
    statuses = Counter(r["status"] for r in sink.rows["decisions"])
    assert statuses == {"chosen": 3, "capped": 1, "quiet_hours": 1, "opted_out": 2, "no_consent": 1}


def test_require_consent_needs_an_explicit_yes(push_gateway, smtp):
    act, _ = make(push_gateway, smtp, require_consent=True)
    assert [d.status for d in act.on_event(search(NOON, "garden centre near me", anon="c-1"))] == ["no_consent"]
    act.on_event(canon(raw_event("identify", NOON, anon="c-2", user="u-c2", traits={"marketing_consent": True})))
    assert [d.status for d in act.on_event(search(NOON, "garden centre near me", anon="c-2", user="u-c2"))] == ["chosen"]
    act.close()


def test_priority_between_playbooks_and_one_contact_per_event(push_gateway, smtp, tmp_path: Path):
    (tmp_path / "p.yaml").write_text("""
playbooks:
  - name: low
    priority: 1
    when: {moments: [go]}
    action: {channel: push, content: [store-nearby-push]}
  - name: high
    priority: 50
    when: {moments: [go], devices: [mobile]}
    action: {channel: push, content: [store-nearby-push]}
""")
    act, _ = make(push_gateway, smtp, playbooks_dir=str(tmp_path))
    assert [(d.playbook, d.status) for d in act.on_event(search(NOON, "garden centre near me", anon="pr-1"))] == [
        ("high", "chosen")]
    # On a desktop only `low` matches.
    assert [(d.playbook, d.status) for d in act.on_event(search(NOON, "garden centre near me", anon="pr-2",
                                                                device="desktop"))] == [("low", "chosen")]
    act.close()


def test_delivery_does_not_block_on_event(push_gateway, smtp):
    release = threading.Event()

    class Blocked:
        def send(self, message: Any) -> str:
            release.wait(10)
            return "slow"

    cfg = Config()
    act = Activator(cfg, deliverers={"push": Blocked()})
    # on_event returns while the deliverer is still blocked: delivery happens off the event path.
    d = act.on_event(search(NOON, "garden centre near me", anon="slow-1"))
    assert d[0].status == "chosen" and not release.is_set()
    assert act.worker.pending() == 1
    release.set()
    act.close(timeout=3)
    assert act.worker.stats["delivered"] == 1


def test_decide_returns_content_for_the_live_moment(push_gateway, smtp):
    act, sink = make(push_gateway, smtp)
    act.on_event(search(NOON, "how to lay patio slabs", anon="d-1"))
    d = act.decide("d-1", {"channel": "web"})
    assert (d.status, d.playbook, d.content_id, d.moment) == ("chosen", "know-howto", "howto-article", "do")
    assert "how to lay patio slabs" in d.content["body"]
    body = d.to_dict()
    json.dumps(body)  # JSON-ready
    assert body["content"]["url"].startswith("https://")
    # A query in the request is read with the intent engine: a go query gets the store finder.
    d2 = act.decide("d-1", {"channel": "web", "query": "greenhaven opening hours near me",
                            "lat": LEEDS["latitude"], "lon": LEEDS["longitude"]})
    assert d2.content_id == "store-finder-web" and d2.content["title"] == "Greenhaven Leeds"
    # Someone never seen gets the generic item; an opted-out person is not personalised.
    assert act.decide("nobody").content_id == "welcome-web"
    act.on_event(canon(raw_event("track", NOON, anon="d-1", event="Unsubscribed", props={})))
    d3 = act.decide("d-1")
    assert d3.content_id == "welcome-web" and d3.context["personalised"] is False
    assert len(sink.rows["exposures"]) == 4
    act.close()


def test_click_outcome_and_cached_classifier(push_gateway, smtp):
    act, sink = make(push_gateway, smtp)
    d = act.on_event(search(NOON, "garden centre near me", anon="clk"))[0]
    act.on_event(canon(raw_event("track", NOON + dt.timedelta(minutes=3), anon="clk",
                                 event="Push Notification Opened", props={"mm_decision": d.decision_id})))
    assert [(o["kind"], o["decision_id"]) for o in sink.rows["outcomes"]] == [("click", d.decision_id)]
    misses = act.classifier.misses
    for i in range(20):
        act.on_event(search(NOON + dt.timedelta(hours=2, minutes=i), "garden centre near me", anon=f"c{i}"))
    assert act.classifier.misses == misses and act.classifier.hits >= 20
    act.close()


@pytest.fixture(scope="module")
def demo_events(tmp_path_factory) -> list[dict[str, Any]]:
    from micromoments.demo import generate
    from micromoments.activation.live_events import canonical_event

    out = tmp_path_factory.mktemp("demo")
    paths = generate(out, users=300, days=14, seed=7, workers=1)
    rows = [json.loads(line) for line in open(paths.events, encoding="utf-8")]
    far = dt.datetime(2100, 1, 1)
    return sorted((canonical_event(r, received_at=None, now=far) for r in rows), key=lambda e: e["ts"])


def test_demo_replay_respects_distance_caps_and_quiet_hours(demo_events):
    """Replay two weeks of demo traffic: every push names a store within the playbook's 25 km of the
    event, nobody gets two pushes within 24 h, and nothing interrupts between 21:00 and 08:00 local."""
    sent: list[Any] = []

    class Capture:
        def send(self, message: Any) -> str:
            sent.append(message)
            return "ok"

    sink = Sink()
    act = Activator(Config(), deliverers={"push": Capture(), "email": Capture()}, log_sink=sink)
    by_id = {}
    for e in demo_events:
        for d in act.on_event(e):
            by_id[d.decision_id] = (d, e)
    act.close()
    chosen = [r for r in sink.rows["decisions"] if r["status"] == "chosen"]
    pushes = [m for m in sent if m.channel == "push"]
    assert len(pushes) >= 20 and len(sent) == len(chosen) == act.worker.stats["delivered"]
    last: dict[str, dt.datetime] = {}
    for m in pushes:
        d, e = by_id[m.decision_id]
        store = next(s for s in act.stores.stores if s["store_id"] == d.context["store_id"])
        assert store["name"] in m.content["body"] and store["name"] in m.content["title"]
        assert distance_km(e["lat"], e["lon"], store["lat"], store["lon"]) <= 25
        hour = local_time(d.ts, e["timezone"]).hour
        assert 8 <= hour < 21
        assert d.person_id not in last or d.ts - last[d.person_id] >= dt.timedelta(hours=24)
        last[d.person_id] = d.ts
    statuses = Counter(r["status"] for r in sink.rows["decisions"])
    assert statuses["quiet_hours"] > 0 and statuses["capped"] > 0
    # The live stage uses the batch rules: all four stages appear over two weeks.
    assert {act.state(p).stage for p in list(act._states)} >= {"awareness", "consideration", "decision",
                                                                   "post-purchase"}


def test_decision_rows_keep_the_context_json_and_ids_stay_unique_uuid4s() -> None:
    """The logged context reads back as `json.dumps(default=str)` wrote it (datetimes as str(),
    non-string keys, non-ASCII text); decision ids are UUID4-shaped and do not repeat."""
    import uuid

    from micromoments.activation.engine import Decision
    from micromoments.activation.ids import new_id

    when = dt.datetime(2026, 11, 23, 12, 30, 5)
    context = {"event": "Products Searched", "local_time": "Mon 12:30", "store_km": 1.25,
               "seen_at": when, 7: "seven", "query": "café près de moi", "tags": ("a", "b"), "none": None}
    d = Decision(decision_id=new_id(), ts=when, person_id="p1", context=context)
    assert json.loads(d.to_row()["context"]) == json.loads(json.dumps(context, default=str, ensure_ascii=False))
    ids = [new_id() for _ in range(5000)]  # more than one 4 KiB buffer of randomness
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 4 and uuid.UUID(i).hex == i for i in ids[:300])


def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    import os

    from micromoments.activation.ids import new_id

    new_id()  # the parent's buffer holds the next 255 ids
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write its next id and leave at once
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert len(child) == 32 and child != new_id()
