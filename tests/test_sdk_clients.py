"""The real tracking SDKs, unchanged but for their host, against a running `micromoments serve`.

Segment's `segment-analytics-python`, RudderStack's `rudder-sdk-python` and PostHog's
`posthog` (all in the `test` extra), each with and without gzip, and Segment's
`@segment/analytics-node` installed with npm when Node is on the machine. Every call type
goes through each; the store must then hold every event exactly once, with the right
person (the anonymous id stitched to the user), event name, properties and timestamp.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import subprocess
import uuid
from pathlib import Path

import duckdb
import pytest

from _server_harness import free_port, start_serve, stop, wait_up, write_config

pytestmark = pytest.mark.slow

WRITE_KEY = "wk_test"
POSTHOG_KEY = "phc_e2e_project"
NODE_PACKAGE = "@segment/analytics-node@2"


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sdk")
    db = tmp / "store.duckdb"
    config = write_config(tmp / "micromoments.toml", db=db, wal=tmp / "wal", flush_ms=200,
                          extra=f'posthog_keys = {{"{POSTHOG_KEY}" = "posthog-server"}}\n')
    port = free_port()
    proc = start_serve(config, port, "--no-activator", log=tmp / "serve.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(url, proc=proc)
        yield {"url": url, "db": db, "proc": proc, "tmp": tmp}
    finally:
        stop(proc)


def _plan(run: str) -> dict:
    """Ids, times and the expected rows of one client run: every call type, one person."""
    anon, user = f"anon-{run}", f"user-{run}"
    base = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    times = [base + dt.timedelta(seconds=10 * i) for i in range(8)]
    return {"anon": anon, "user": user, "times": times, "ids": [str(uuid.uuid4()) for _ in range(8)]}


def _check(serve, plan: dict, expected: list[tuple[str, str | None, dict]]) -> None:
    """Every expected (type, event, properties subset) is in the store once, for the user, at its time."""
    import httpx

    r = httpx.post(serve["url"] + "/admin/flush", headers={"Authorization": "Bearer adm_test"}, timeout=30)
    assert r.status_code == 200, r.text
    ids = plan["ids"][:len(expected)]
    rows = _rows_for(serve, ids)
    by_id: dict[str, list] = {}
    for row in rows:
        by_id.setdefault(row[0], []).append(row)
    for mid, when, (type_, event, props) in zip(ids, plan["times"], expected):
        got = by_id.get(mid, [])
        assert len(got) == 1, (mid, type_, event, got)
        _, t, ev, person, ts, properties, traits = got[0]
        assert t == type_, (mid, t, type_)
        assert ev == event, (mid, ev, event)
        assert person == plan["user"], (type_, event, person)
        assert abs((ts - when.replace(tzinfo=None)).total_seconds()) < 2, (type_, ts, when)
        stored = {**json.loads(properties or "{}"), **json.loads(traits or "{}")}
        for key, value in props.items():
            assert stored.get(key) == value, (type_, key, stored)


def _rows_for(serve, ids: list[str]) -> list[tuple]:
    """The rows of these message ids, read from a copy of the store (the server holds the file)."""
    copy = serve["tmp"] / f"copy-{uuid.uuid4().hex[:6]}.duckdb"
    shutil.copy(serve["db"], copy)
    wal = Path(str(serve["db"]) + ".wal")
    if wal.exists():
        shutil.copy(wal, str(copy) + ".wal")
    con = duckdb.connect(str(copy))
    try:
        return con.execute("SELECT message_id, type, event, person_id, ts, properties, traits FROM events "
                           "WHERE message_id IN (SELECT unnest(?))", [ids]).fetchall()
    finally:
        con.close()
        copy.unlink(missing_ok=True)
        Path(str(copy) + ".wal").unlink(missing_ok=True)


SEGMENT_EXPECTED = [
    ("track", "Product Viewed", {"product_id": "p-1", "price": 9.5}),
    ("identify", None, {"plan": "pro"}),
    ("track", "Products Searched", {"query": "paint near me"}),
    ("page", None, {"url": "https://shop.example/paint", "title": "Paint"}),
    ("screen", None, {"step": 2}),
    ("group", None, {"company": "Acme"}),
    ("alias", None, {}),
    ("track", "Order Completed", {"revenue": 42.5}),
]


def _send_segment_like(client, plan: dict, message_key: str = "message_id") -> None:
    a, u, t, ids = plan["anon"], plan["user"], plan["times"], plan["ids"]
    client.track(anonymous_id=a, event="Product Viewed", properties={"product_id": "p-1", "price": 9.5},
                 timestamp=t[0], **{message_key: ids[0]})
    client.identify(user_id=u, anonymous_id=a, traits={"plan": "pro"}, timestamp=t[1], **{message_key: ids[1]})
    client.track(user_id=u, event="Products Searched", properties={"query": "paint near me"},
                 context={"locale": "en-GB"}, integrations={"All": True}, timestamp=t[2], **{message_key: ids[2]})
    client.page(user_id=u, name="Paint", properties={"url": "https://shop.example/paint", "title": "Paint"},
                timestamp=t[3], **{message_key: ids[3]})
    client.screen(user_id=u, name="Checkout", properties={"step": 2}, timestamp=t[4], **{message_key: ids[4]})
    client.group(user_id=u, group_id="g-acme", traits={"company": "Acme"}, timestamp=t[5], **{message_key: ids[5]})
    client.alias(previous_id=a, user_id=u, timestamp=t[6], **{message_key: ids[6]})
    client.track(user_id=u, event="Order Completed", properties={"revenue": 42.5}, timestamp=t[7],
                 **{message_key: ids[7]})


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_segment_analytics_python(serve, gzip: bool) -> None:
    analytics = pytest.importorskip("segment.analytics", reason="pip install segment-analytics-python (test extra)")
    errors: list = []
    client = analytics.Client(WRITE_KEY, host=serve["url"], gzip=gzip, sync_mode=True, max_retries=1,
                              on_error=lambda e, batch: errors.append(e))
    plan = _plan(f"seg-{'gz' if gzip else 'plain'}-{uuid.uuid4().hex[:6]}")
    _send_segment_like(client, plan)
    client.flush()
    assert not errors, errors
    _check(serve, plan, SEGMENT_EXPECTED)


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_rudder_sdk_python(serve, gzip: bool) -> None:
    rudder = pytest.importorskip("rudderstack.analytics.client", reason="pip install rudder-sdk-python (test extra)")
    errors: list = []
    client = rudder.Client(WRITE_KEY, host=serve["url"], gzip=gzip, sync_mode=True, max_retries=1,
                           on_error=lambda e, batch: errors.append(e))
    plan = _plan(f"rs-{'gz' if gzip else 'plain'}-{uuid.uuid4().hex[:6]}")
    _send_segment_like(client, plan)
    client.flush()
    assert not errors, errors
    _check(serve, plan, SEGMENT_EXPECTED)


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_posthog_python(serve, gzip: bool) -> None:
    posthog = pytest.importorskip("posthog", reason="pip install posthog (test extra)")
    errors: list = []
    client = posthog.Posthog(POSTHOG_KEY, host=serve["url"], gzip=gzip, sync_mode=True, max_retries=1,
                             on_error=lambda e, batch: errors.append(e), enable_local_evaluation=False)
    plan = _plan(f"ph-{'gz' if gzip else 'plain'}-{uuid.uuid4().hex[:6]}")
    a, u, t, ids = plan["anon"], plan["user"], plan["times"], plan["ids"]
    client.capture("Product Viewed", distinct_id=a, properties={"product_id": "p-1"}, timestamp=t[0], uuid=ids[0])
    client.capture("$identify", distinct_id=u, properties={"$anon_distinct_id": a, "$set": {"plan": "pro"}},
                   timestamp=t[1], uuid=ids[1])
    client.capture("Products Searched", distinct_id=u, properties={"$search": "paint near me"}, timestamp=t[2],
                   uuid=ids[2])
    client.capture("$pageview", distinct_id=u, properties={"$current_url": "https://shop.example/paint",
                                                            "$title": "Paint"}, timestamp=t[3], uuid=ids[3])
    client.capture("$screen", distinct_id=u, properties={"$screen_name": "Checkout"}, timestamp=t[4], uuid=ids[4])
    client.set(distinct_id=u, properties={"tier": "gold"}, timestamp=t[5], uuid=ids[5])
    client.alias(previous_id=a, distinct_id=u, timestamp=t[6], uuid=ids[6])
    client.capture("Order Completed", distinct_id=u, properties={"revenue": 42.5}, timestamp=t[7], uuid=ids[7])
    client.group_identify("company", "g-acme", properties={"name": "Acme"}, distinct_id=u,
                          uuid=(group_id := str(uuid.uuid4())))
    client.flush()
    client.shutdown()
    assert not errors, errors
    # $create_alias: PostHog sends the old id as distinct_id and the new one as `alias`; the
    # export reader (and so the collector) links both, so the person is still the user.
    _check(serve, plan, [
        ("track", "Product Viewed", {"product_id": "p-1"}),
        ("identify", None, {"plan": "pro"}),
        ("track", "Products Searched", {"$search": "paint near me", "query": "paint near me"}),
        ("page", None, {"url": "https://shop.example/paint", "$title": "Paint"}),
        ("screen", None, {"$screen_name": "Checkout"}),
        ("identify", None, {"tier": "gold"}),
        ("alias", None, {}),
        ("track", "Order Completed", {"revenue": 42.5}),
    ])
    (group,) = _rows_for(serve, [group_id])
    assert group[1] == "group"
    logging.getLogger("posthog").handlers.clear()


NODE_SCRIPT = r"""
const { Analytics } = require('@segment/analytics-node');
const plan = JSON.parse(process.env.PLAN);
const a = new Analytics({ writeKey: process.env.WRITE_KEY, host: process.env.HOST, flushAt: 3, maxRetries: 1 });
const errors = [];
a.on('error', (e) => errors.push(String(e && (e.reason || e.code || e))));
const [t, ids, anon, user] = [plan.times, plan.ids, plan.anon, plan.user];
a.track({ anonymousId: anon, event: 'Product Viewed', properties: { product_id: 'p-1', price: 9.5 }, timestamp: t[0], messageId: ids[0] });
a.identify({ userId: user, anonymousId: anon, traits: { plan: 'pro' }, timestamp: t[1], messageId: ids[1] });
a.track({ userId: user, event: 'Products Searched', properties: { query: 'paint near me' }, context: { locale: 'en-GB' }, timestamp: t[2], messageId: ids[2] });
a.page({ userId: user, name: 'Paint', properties: { url: 'https://shop.example/paint', title: 'Paint' }, timestamp: t[3], messageId: ids[3] });
a.screen({ userId: user, name: 'Checkout', properties: { step: 2 }, timestamp: t[4], messageId: ids[4] });
a.group({ userId: user, groupId: 'g-acme', traits: { company: 'Acme' }, timestamp: t[5], messageId: ids[5] });
a.alias({ previousId: anon, userId: user, timestamp: t[6], messageId: ids[6] });
a.track({ userId: user, event: 'Order Completed', properties: { revenue: 42.5 }, timestamp: t[7], messageId: ids[7] });
a.closeAndFlush({ timeout: 20000 }).then(() => {
  if (errors.length) { console.error(errors.join('\n')); process.exit(1); }
  console.log('ok');
});
"""


def test_segment_analytics_node(serve, tmp_path_factory) -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are not on this machine: @segment/analytics-node not tested")
    where = tmp_path_factory.mktemp("node")
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent", NODE_PACKAGE], cwd=where, check=True,
                   timeout=300, capture_output=True)
    (where / "send.js").write_text(NODE_SCRIPT)
    plan = _plan(f"node-{uuid.uuid4().hex[:6]}")
    env_plan = {**plan, "times": [t.isoformat() for t in plan["times"]]}
    done = subprocess.run([node, "send.js"], cwd=where, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PLAN": json.dumps(env_plan), "WRITE_KEY": WRITE_KEY,
                               "HOST": serve["url"]})
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr
    # analytics-node has no compression option: it is tested plain only.
    _check(serve, plan, SEGMENT_EXPECTED)
