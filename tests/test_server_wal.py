"""The write-ahead log and its loader: group commit, crash recovery, poison rows, the bus."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import orjson

from micromoments.activation.bus import InProcessBus
from micromoments.activation.wal import WriteAheadLog
from micromoments.activation.wal_loader import LogSink, StoreLoader


def _event(i: int, **extra) -> bytes:
    return orjson.dumps({"type": "track", "event": "Products Searched", "messageId": f"m{i}", "anonymousId": f"a{i}",
                         "timestamp": "2026-09-01T10:00:00Z", "properties": {"query": "shed"}, **extra}) + b"\n"


def test_group_commit_shares_fsyncs_and_wakes_every_waiter(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal", group_commit_ms=2)

    async def load() -> None:
        await asyncio.gather(*(wal.submit(_event(i)) for i in range(2000)))

    asyncio.run(load())
    assert wal.appends == 2000
    assert wal.groups < 200  # hundreds of events per fsync, not one each
    wal.close()
    lines = b"".join(p.read_bytes() for p in sorted((tmp_path / "wal").glob("wal-*.jsonl"))).splitlines()
    assert sorted(orjson.loads(line)["messageId"] for line in lines) == sorted(f"m{i}" for i in range(2000))


def test_recovery_cuts_a_torn_last_line_and_starts_a_new_segment(tmp_path: Path) -> None:
    d = tmp_path / "wal"
    wal = WriteAheadLog(d)
    wal.write_sync(_event(1) + _event(2))
    seg = d / "wal-000000000001.jsonl"
    # What a kill -9 in the middle of a write leaves: half a line, never acknowledged.
    with open(seg, "ab") as fh:
        fh.write(_event(3)[:25])
    wal2 = WriteAheadLog(d)
    assert wal2.recovered_bytes_dropped == 25
    assert wal2.current_seq == 2 and [p.name for p in wal2.closed_segments()] == [seg.name]
    assert seg.read_bytes() == _event(1) + _event(2)
    wal2.close()


def test_loader_survives_a_row_the_sql_cannot_load(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    sink = LogSink()
    loader = StoreLoader(wal, tmp_path / "s.duckdb", log_sink=sink)
    # Written straight to the log (the collector would refuse it): an epoch past year 294,000.
    wal.write_sync(_event(1) + _event(2, sentAt=2e169) + _event(3) + b"not json\n")
    sink("decisions", {"decision_id": "d1", "person_id": "a1", "status": "chosen", "context": {"channel": "web"}})
    out = loader.flush()
    assert out["loaded"] == 2 and out["quarantined"] == 2 and out["log_rows"] == 1
    con = loader.store.duck
    assert sorted(r[0] for r in con.execute("SELECT message_id FROM events").fetchall()) == ["m1", "m3"]
    reasons = [r[0] for r in con.execute("SELECT reason FROM quarantine ORDER BY reason").fetchall()]
    assert any("could not load" in r for r in reasons) and "not valid JSON" in reasons
    assert con.execute("SELECT context FROM decisions").fetchone()[0] == '{"channel":"web"}'
    assert not wal.closed_segments()
    loader.close()
    wal.close()


def test_in_process_bus_keeps_order_and_counts_drops() -> None:
    bus = InProcessBus(max_queue=10)
    seen: list[int] = []
    bus.subscribe(lambda e: seen.append(e["i"]))
    bus.publish_many([{"i": i} for i in range(5)])
    assert bus.drain(5)
    assert seen == list(range(5)) and bus.dropped == 0
    bus.close()
