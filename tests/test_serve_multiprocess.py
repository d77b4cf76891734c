"""Scale-out through a real redis-server: `micromoments serve --role collector` and `--role worker`
as two processes. An event posted to the collector reaches the worker's playbooks, its live state
(read back by /v1/decide on either process) and its store; a frequency cap of 1 per day holds when
the events arrive at different processes; caps hold across two activators sharing Redis."""

from __future__ import annotations

import datetime as dt
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest

from _activation_fixtures import LEEDS, SECRET, Receiver
from _redis_server import needs_redis_server, redis, redis_url  # noqa: F401  (a fixture)
from _server_harness import basic, bearer, free_port, send_until_stopped, start_serve, stop, wait_up, write_config

pytestmark = needs_redis_server
KEY = basic("wk_test")


def _event(anon: str, query: str, when: dt.datetime) -> dict:
    return {"type": "track", "event": "Products Searched", "anonymousId": anon, "messageId": uuid.uuid4().hex,
            "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "properties": {"query": query},
            "context": {"timezone": "Europe/London", "device": {"type": "mobile"}, "location": {**LEEDS},
                        "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5)"}}


def _decide(url: str, anon: str) -> dict:
    r = httpx.post(f"{url}/v1/decide", json={"anonymousId": anon, "context": {"channel": "web"}},
                   headers={"Authorization": "Bearer adm_test"}, timeout=10)  # the whole decision
    assert r.status_code == 200, r.text
    return r.json()


def _wait_for(fn, timeout: float = 30.0):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@pytest.mark.slow
def test_collector_and_worker_processes_share_state_caps_and_store(tmp_path: Path, redis_url: str) -> None:
    from micromoments.store import Store

    gateway = Receiver()
    db = tmp_path / "store.duckdb"
    config = write_config(tmp_path / "micromoments.toml", db=db, wal=tmp_path / "wal", flush_ms=200, extra=(
        f'bus = "{redis_url}"\n\n[activation]\npush_url = "{gateway.url}/push"\n'
        f'webhook_secret = "{SECRET}"\nquiet_hours = "off"\n'))
    port_a, port_b = free_port(), free_port()
    url_a, url_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    collector = start_serve(config, port_a, "--role", "collector", "--data-dir", str(tmp_path / "a"),
                            log=tmp_path / "a.log")
    worker = start_serve(config, port_b, "--role", "worker", "--data-dir", str(tmp_path / "b"),
                         log=tmp_path / "b.log")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    try:
        wait_up(url_a, proc=collector)
        wait_up(url_b, proc=worker)
        assert httpx.get(f"{url_a}/health").json()["role"] == "collector"
        # 1. A go query near the Leeds store, posted to the collector (process A).
        r = httpx.post(f"{url_a}/v1/track", json=_event("mp-go", "garden centre near me", now), headers=KEY)
        assert r.status_code == 200, r.text
        # ... fires the worker's push (process B) ...
        pushes = _wait_for(lambda: gateway.received, 30)
        assert len(pushes) == 1 and pushes[0].valid
        assert "Greenhaven Leeds" in pushes[0].json["message"]["notification"]["body"]
        # ... and /v1/decide on B (its own live state) and on A (the snapshot in Redis) see the go moment.
        got_b = _wait_for(lambda: (d := _decide(url_b, "mp-go"))["moment"] == "go" and d, 20)
        assert got_b and got_b["status"] == "chosen" and "Greenhaven Leeds" in got_b["content"]["title"]
        got_a = _wait_for(lambda: (d := _decide(url_a, "mp-go"))["moment"] == "go" and d, 20)
        assert got_a and got_a["status"] == "chosen" and got_a["content_id"] == got_b["content_id"]
        assert got_a["content"]["title"] == got_b["content"]["title"]
        # A person nobody has seen: no go content anywhere.
        assert _decide(url_a, "mp-nobody")["moment"] is None

        # 2. The cap (go-near-store: 1 per person per 24 h) across processes: a know moment to B, then a
        # new go moment to B, and another to A: the playbook matches twice more, and is capped twice.
        for url, query in ((url_b, "how to lay patio slabs"), (url_b, "garden centre near me"),
                           (url_a, "how to build a raised bed"), (url_a, "garden centre open now near me")):
            now += dt.timedelta(seconds=5)
            assert httpx.post(f"{url}/v1/track", json=_event("mp-go", query, now), headers=KEY).status_code == 200
        # Wait until the worker has seen all five events (its admin profile is the live state).
        _wait_for(lambda: httpx.get(f"{url_b}/admin/profiles/mp-go", headers=bearer("adm_test"))
                  .json().get("events", 0) >= 5, 30)
        time.sleep(0.5)
        assert len(gateway.received) == 1, [p.json for p in gateway.received]
        # 3. Everything reached the store owned by the worker.
        for url in (url_a, url_b):
            assert httpx.post(f"{url}/admin/flush", headers=bearer("adm_test"), timeout=30).status_code == 200
        _wait_for(lambda: httpx.get(f"{url_b}/admin/stats", headers=bearer("adm_test")).json()
                  ["store"]["events"] >= 5, 30)
    finally:
        assert stop(collector) in (0, -signal.SIGTERM), (tmp_path / "a.log").read_text()[-3000:]
        assert stop(worker) in (0, -signal.SIGTERM), (tmp_path / "b.log").read_text()[-3000:]
        gateway.close()
    with Store(db, read_only=True) as store:
        assert store.duck.execute("SELECT count(*) FROM events WHERE anonymous_id = 'mp-go'").fetchone()[0] == 5
        statuses = dict(store.duck.execute(
            "SELECT status, count(*) FROM decisions WHERE playbook = 'go-near-store' GROUP BY 1").fetchall())
        assert statuses == {"chosen": 1, "capped": 2}, statuses
        # The collector's /v1/decide answers were logged too (forwarded through the bus).
        assert store.duck.execute("SELECT count(*) FROM decisions WHERE playbook IS NULL OR playbook LIKE 'know%'"
                                  ).fetchone()[0] >= 3


@pytest.mark.slow
def test_caps_hold_across_two_activators_sharing_redis(redis_url: str) -> None:
    """Two workers that both act on one person (e.g. after a repartition) still contact once per day."""
    from micromoments.activation.engine import Activator
    from micromoments.activation.live_events import canonical_event
    from micromoments.activation.shared_state import RedisLedger
    from micromoments.config import Config

    class Count:
        def __init__(self) -> None:
            self.sent: list[str] = []

        def send(self, message) -> str:  # noqa: ANN001
            self.sent.append(message.person_id)
            return "counted"

    cfg = Config()
    cfg.activation.quiet_hours = "off"
    sender = Count()
    acts = [Activator(cfg, deliverers={"push": sender}) for _ in range(2)]
    for act in acts:
        act.ledger = RedisLedger(redis_url, prefix="t:")  # each its own connection, like two processes
    t0 = dt.datetime(2026, 9, 1, 12)
    statuses = []
    steps = [(0, "garden centre near me"), (1, "garden centre near me"), (1, "how to lay patio"),
             (1, "garden centre open now near me"), (0, "how to tile"), (0, "garden centre near me")]
    for i, (which, query) in enumerate(steps):
        ev = canonical_event(_event("cap-1", query, t0 + dt.timedelta(minutes=i)), received_at=t0)
        statuses += [d.status for d in acts[which].on_event(ev) if d.playbook == "go-near-store"]
    for act in acts:
        act.worker.flush(5)
    assert statuses == ["chosen", "capped", "capped", "capped"], statuses
    assert sender.sent == ["cap-1"]
    # 25 hours later the cap allows one more, whichever worker asks.
    ev = canonical_event(_event("cap-1", "garden centre near me", t0 + dt.timedelta(hours=25)), received_at=t0)
    acts[0].on_event(canonical_event(_event("cap-1", "how to tile", t0 + dt.timedelta(hours=25)), received_at=t0))
    assert [d.status for d in acts[0].on_event(ev) if d.playbook == "go-near-store"] == ["chosen"]
    for act in acts:
        act.close()


@pytest.mark.slow
def test_collector_role_refuses_to_start_without_a_shared_bus(tmp_path: Path) -> None:
    config = write_config(tmp_path / "micromoments.toml", db=tmp_path / "s.duckdb", wal=tmp_path / "wal")
    proc = start_serve(config, free_port(), "--role", "collector", log=tmp_path / "c.log")
    assert proc.wait(timeout=120) == 2
    assert "needs a shared bus" in (tmp_path / "c.log").read_text()


@pytest.mark.slow
def test_kill_9_of_worker_then_collector_loses_no_acknowledged_event(tmp_path: Path, redis_url: str) -> None:
    import threading

    from micromoments.store import Store

    db = tmp_path / "store.duckdb"
    config = write_config(tmp_path / "micromoments.toml", db=db, wal=tmp_path / "wal", flush_ms=300,
                          extra=f'bus = "{redis_url}"\n')
    port_a, port_b = free_port(), free_port()
    url_a, url_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"

    def collector():  # noqa: ANN202
        return start_serve(config, port_a, "--role", "collector", "--no-activator", "--data-dir",
                           str(tmp_path / "a"), log=tmp_path / "a.log")

    def worker():  # noqa: ANN202
        return start_serve(config, port_b, "--role", "worker", "--data-dir", str(tmp_path / "b"),
                           log=tmp_path / "b.log")

    procs = {"a": collector(), "b": worker()}
    acked: list[str] = []
    stop_at = threading.Event()
    threads = [threading.Thread(target=send_until_stopped, args=(url_a, KEY, acked, stop_at),
                                kwargs={"batch": i % 2 == 1}) for i in range(3)]
    try:
        wait_up(url_a, proc=procs["a"])
        wait_up(url_b, proc=procs["b"])
        for t in threads:
            t.start()
        time.sleep(1.5)
        assert stop(procs["b"], signal.SIGKILL) == -signal.SIGKILL  # the worker, mid-load
        procs["b"] = worker()
        wait_up(url_b, proc=procs["b"])
        time.sleep(1.0)
        assert stop(procs["a"], signal.SIGKILL) == -signal.SIGKILL  # the collector, mid-load
        stop_at.set()
        for t in threads:
            t.join(timeout=30)
        assert len(acked) > 200, len(acked)
        procs["a"] = collector()  # ships the WAL segments the killed one left
        wait_up(url_a, proc=procs["a"])
        want = len(set(acked))
        got = _wait_for(lambda: httpx.get(f"{url_b}/admin/stats", headers=bearer("adm_test"), timeout=10).json()
                        ["store"]["events"] >= want, 90)
        assert got, httpx.get(f"{url_b}/admin/stats", headers=bearer("adm_test")).json()
    finally:
        stop_at.set()
        for proc in procs.values():
            stop(proc)
    with Store(db, read_only=True) as store:
        store.duck.execute("CREATE TEMP TABLE acked (id VARCHAR)")
        store.duck.executemany("INSERT INTO acked VALUES (?)", [[i] for i in set(acked)])
        missing = store.duck.execute(
            "SELECT count(*) FROM acked WHERE id NOT IN (SELECT message_id FROM events)").fetchone()[0]
        stored = store.duck.execute("SELECT count(*) FROM events").fetchone()[0]
    print(f"acknowledged {len(set(acked))}, stored {stored}, missing {missing}")
    assert missing == 0


def test_wal_shipper_ships_crash_left_segments_and_live_groups_once(tmp_path: Path, redis_url: str) -> None:
    from micromoments.activation.bus import RedisStreamsBus, WalShipper
    from micromoments.activation.wal import WriteAheadLog

    lines = [b'{"messageId":"old-%d","pad":"%s"}\n' % (i, b"x" * (i % 37)) for i in range(300)]
    (tmp_path / "wal").mkdir()
    # A segment the killed collector left behind, its last line torn (never acknowledged).
    (tmp_path / "wal" / "wal-000000000007.jsonl").write_bytes(b"".join(lines) + b'{"messageId":"torn')
    wal = WriteAheadLog(tmp_path / "wal", fsync=False)
    out = RedisStreamsBus(redis_url, stream="ship:t")
    shipper = WalShipper(wal, out, interval_ms=60_000)
    shipper.entry_bytes = 1000  # several entries, each cut after a whole line
    assert shipper.ship_once() == 300
    new = [b'{"messageId":"new-%d"}\n' % i for i in range(50)]
    for i in range(0, 50, 10):
        wal.write_sync(b"".join(new[i:i + 10]))  # five group commits
    assert shipper.ship_once(rotate=True) == 50
    assert shipper.ship_once() == 0
    assert wal.closed_segments() == []  # shipped segments are deleted
    wal.close()
    shipper.close()
    got: list[bytes] = []
    reader = RedisStreamsBus(redis_url, stream="ship:t", group="check", consumer="c", block_ms=50)
    reader.subscribe_blobs(got.extend)
    _wait_for(lambda: len(got) >= 350, 10)
    reader.close()
    assert got == [x.rstrip(b"\n") for x in lines + new]
    entries = redis.Redis.from_url(redis_url).xlen("ship:t")
    assert 5 + 3 <= entries <= 5 + 40  # one entry per group commit; the old segment in ~1 KB entries


def test_two_worker_partitions_split_people_disjointly_and_keep_a_person_together() -> None:
    from micromoments.config import Config
    from micromoments.server.app import live_handler

    seen: dict[int, list[str]] = {0: [], 1: []}
    handlers = {i: live_handler(lambda ev, i=i: seen[i].append(ev["anonymous_id"]), Config(), partition=(i, 2),
                                dedupe=1000) for i in (0, 1)}
    t = "2026-09-01T10:00:00Z"
    events = []
    for n in range(200):
        anon = f"anon-{n}"
        events.append({"type": "track", "event": "Viewed", "anonymousId": anon, "messageId": f"m{n}", "timestamp": t})
        # After login the same device keeps its anonymousId: the same worker.
        events.append({"type": "track", "event": "Viewed", "anonymousId": anon, "userId": f"u{n}",
                       "messageId": f"m{n}-login", "timestamp": t})
    for ev in events + events[:50]:  # the first 50 again: at-least-once delivery repeats them
        for h in handlers.values():
            h(dict(ev))
    assert len(seen[0]) + len(seen[1]) == 400  # every event once, repeats skipped
    assert set(seen[0]).isdisjoint(seen[1])
    assert 60 <= len(set(seen[0])) <= 140  # roughly half each
    for part in seen.values():
        assert all(part.count(a) == 2 for a in set(part))  # both events of a person on one worker


def test_a_loader_round_allocates_no_128_mb_block(tmp_path: Path) -> None:
    """A 128 MB bytearray per block froze every request for 85-240 ms (zeroed under the GIL)."""
    import tracemalloc

    from micromoments.activation.wal import WriteAheadLog
    from micromoments.activation.wal_loader import StoreLoader

    wal = WriteAheadLog(tmp_path / "wal", fsync=False)
    loader = StoreLoader(wal, tmp_path / "s.duckdb")
    t = "2026-09-01T10:00:00Z"
    wal.write_sync(b"".join(b'{"type":"track","event":"Viewed","anonymousId":"a%d","messageId":"m%d","timestamp":"%s"}\n'
                            % (i, i, t.encode()) for i in range(2000)))
    tracemalloc.start()
    try:
        assert loader.flush()["loaded"] == 2000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        loader.close()
        wal.close()
    assert peak < 32 * 1024 * 1024, f"peak Python allocation {peak / 2**20:.0f} MB in one loader round"


def test_a_restarted_worker_resumes_profiles_from_snapshots(redis_url: str) -> None:
    """Moment, consent and contacts survive a worker restart; an anonymous id merged at login
    leads to the person's one profile."""
    from micromoments.activation.engine import Activator
    from micromoments.activation.live_events import canonical_event
    from micromoments.activation.shared_state import RedisSharedState
    from micromoments.config import Config

    cfg = Config()
    t0 = dt.datetime(2026, 9, 1, 12)
    first = Activator(cfg, deliverers={})
    first.shared = RedisSharedState(redis_url, prefix="r:")
    login = _event("dev-1", "garden centre near me", t0)
    login["userId"] = "u-9"
    login["context"]["traits"] = {"email": "kim@example.com", "unsubscribed": True}
    first.on_event(canonical_event(login, received_at=t0))
    assert first.flush_shared() == 1
    first.close()

    again = Activator(cfg, deliverers={})  # the restarted worker: nothing in memory
    again.shared = RedisSharedState(redis_url, prefix="r:")
    st = again.state("dev-1")
    assert st.person_id == "dev-1" and st.moment is None  # state() does not read Redis
    ev = _event("dev-1", "garden centre open now", t0 + dt.timedelta(minutes=1))  # anonymous only
    again.on_event(canonical_event(ev, received_at=t0))
    st = again.state("u-9")
    assert st.person_id == "u-9" and st.moment == "go" and st.events == 2 and "all" in st.opted_out
    assert again.state("dev-1") is st
    d = again.decide("dev-1", {"channel": "web"})
    assert d.person_id == "u-9" and d.context.get("personalised") is False  # opted out: generic content
    again.close()


def test_snapshot_load_follows_an_alias_and_falls_back_to_the_ids_own_hash(redis_url: str) -> None:
    """`RedisSharedState.load` is one script call: an anonymous id leads to its person's hash; an
    alias whose person has no hash (expired) falls back to the id's own; an unknown id is None."""
    from micromoments.activation.engine import ProfileState
    from micromoments.activation.shared_state import RedisSharedState, take_snapshot

    shared = RedisSharedState(redis_url, prefix="ld:")
    person = ProfileState("u-1")
    person.moment, person.stage, person.anonymous_ids = "buy", "decision", {"anon-1"}
    own = ProfileState("anon-2")
    own.moment = "know"
    shared.save_many([take_snapshot(person), take_snapshot(own)])
    shared._redis.set("ld:a:anon-2", "u-gone")  # an alias to a person whose hash expired

    via_alias = shared.load("anon-1", ProfileState)
    assert (via_alias.person_id, via_alias.moment, via_alias.stage) == ("u-1", "buy", "decision")
    assert via_alias.anonymous_ids == {"anon-1"}
    assert shared.load("anon-2", ProfileState).moment == "know"
    assert shared.load("u-1", ProfileState).person_id == "u-1"
    assert shared.load("nobody", ProfileState) is None
    assert shared.loads == 4
    shared.close()


@pytest.mark.slow
def test_split_collector_quarantines_a_mixed_batchs_bad_event_once(tmp_path: Path, redis_url: str) -> None:
    """A `role = "collector"` process answers a mixed batch with 200; the bad event reaches the
    loader worker's `quarantine` table with its index and reason, once, across a restart."""
    from micromoments.store import Store

    db = tmp_path / "store.duckdb"
    config = write_config(tmp_path / "micromoments.toml", db=db, wal=tmp_path / "wal", flush_ms=200,
                          extra=f'bus = "{redis_url}"\n')
    port_a, port_b = free_port(), free_port()
    url_a, url_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"

    def worker():  # noqa: ANN202
        return start_serve(config, port_b, "--role", "worker", "--no-activator", "--data-dir",
                           str(tmp_path / "b"), log=tmp_path / "b.log")

    collector = start_serve(config, port_a, "--role", "collector", "--no-activator", "--data-dir",
                            str(tmp_path / "a"), log=tmp_path / "a.log")
    procs = [collector, worker()]
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    good, bad = _event("q-good", "garden centre", now), _event("q-bad", "garden centre", now)
    bad["timestamp"] = "0001-01-01T00:00:00Z"

    def quarantined() -> int:
        httpx.post(f"{url_a}/admin/flush", headers=bearer("adm_test"), timeout=30).raise_for_status()
        httpx.post(f"{url_b}/admin/flush", headers=bearer("adm_test"), timeout=30).raise_for_status()
        # The worker's count since it started: its own 200 ms rounds may load the row before a flush does.
        stats = httpx.get(f"{url_b}/admin/stats", headers=bearer("adm_test"), timeout=30).json()
        return stats["store"]["quarantined"]

    try:
        wait_up(url_a, proc=procs[0])
        wait_up(url_b, proc=procs[1])
        r = httpx.post(f"{url_a}/v1/batch", json={"batch": [good, bad]}, headers=KEY, timeout=10)
        assert r.status_code == 200, r.text
        assert [x["index"] for x in r.json()["rejected"]] == [1]
        assert _wait_for(quarantined, 30), (tmp_path / "b.log").read_text()[-3000:]
        # A restarted worker (its inbox and the stream already handled) stores nothing twice.
        assert stop(procs[1]) in (0, -signal.SIGTERM)
        procs[1] = worker()
        wait_up(url_b, proc=procs[1])
        assert quarantined() == 0
    finally:
        for proc in procs:
            stop(proc)
    with Store(db, read_only=True) as store:
        rows = store.duck.execute("SELECT source, line, field, reason FROM quarantine WHERE raw LIKE ?",
                                  [f"%{bad['messageId']}%"]).fetchall()
        assert store.duck.execute("SELECT count(*) FROM events WHERE message_id = ?",
                                  [good["messageId"]]).fetchone()[0] == 1
    assert len(rows) == 1, rows
    assert rows[0][:3] == ("api", 1, "batch[1].timestamp") and "outside the accepted range" in rows[0][3]
