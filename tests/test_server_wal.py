"""The write-ahead log and its loader: group commit, crash recovery, poison rows, the bus."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import orjson
import pytest

from micromoments.activation.bus import InProcessBus
from micromoments.activation.wal import WriteAheadLog, segment_seq
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
    wal = WriteAheadLog(d)  # a plain, growing segment (preallocated ones: see below)
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


def _wait_for_spare(wal: WriteAheadLog, count: int = 1) -> None:
    deadline = time.monotonic() + 10
    while wal._spares.ready_count() < count:
        assert time.monotonic() < deadline, f"no spare segment made: {wal._spares.error}"
        time.sleep(0.005)


def _log_writing_into_a_spare(d: Path) -> WriteAheadLog:
    """A log whose first segment holds event 1 and whose open segment was preallocated."""
    wal = WriteAheadLog(d, preallocate=True)
    wal.write_sync(_event(1))
    _wait_for_spare(wal)
    wal.rotate()
    return wal


def test_preallocated_segments_are_overwritten_in_place_and_cut_when_closed(tmp_path: Path) -> None:
    d = tmp_path / "wal"
    wal = _log_writing_into_a_spare(d)
    first = d / "wal-000000000001.jsonl"
    assert first.read_bytes() == _event(1)
    data = _event(2) + _event(3)
    wal.write_sync(data)
    assert wal.spares_used == 1
    seg = d / f"wal-{wal.current_seq:012d}.jsonl"
    assert seg.stat().st_size > len(data) and seg.read_bytes()[len(data):].count(0) == seg.stat().st_size - len(data)
    _wait_for_spare(wal)
    wal.rotate()
    # Closed: exactly its lines, so the loader and the shipper read plain JSON lines.
    assert seg.read_bytes() == data
    assert [p.name for p in wal.closed_segments()] == [first.name, seg.name]
    wal.close()
    assert sorted(p.name for p in d.iterdir()) == [first.name, seg.name]  # the unused spares are gone


def test_recovery_after_a_crash_cuts_the_zeros_and_the_torn_line_of_a_preallocated_segment(tmp_path: Path) -> None:
    d = tmp_path / "wal"
    wal = _log_writing_into_a_spare(d)
    wal.write_sync(_event(2) + _event(3))
    _wait_for_spare(wal, count=2)  # ready spares (all zeros) are on disk too, and the pool rests
    seg = d / f"wal-{wal.current_seq:012d}.jsonl"
    # What a kill -9 in the middle of a write leaves: half a line written over the zeros.
    with open(seg, "r+b") as fh:
        fh.seek(len(_event(2) + _event(3)))
        fh.write(_event(4)[:25])
    crash = tmp_path / "crash"
    shutil.copytree(d, crash)  # the disk as the crash left it, taken while the log runs
    wal.close()
    names = sorted(p.name for p in crash.iterdir())
    assert len(names) >= 3  # two segments and at least one spare
    wal2 = WriteAheadLog(crash, preallocate=True)
    assert wal2.recovered_bytes_dropped == 25  # zeros are not counted as lost data
    closed = wal2.closed_segments()
    assert b"".join(p.read_bytes() for p in closed) == _event(1) + _event(2) + _event(3)
    assert all(p.stat().st_size > 0 for p in closed)  # the all-zero spare was removed
    assert wal2.current_seq == segment_seq(closed[-1]) + 1
    wal2.write_sync(_event(5))
    wal2.close()


def test_an_append_with_a_nul_byte_is_refused(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    with pytest.raises(ValueError, match="NUL"):
        wal.write_sync(b'{"type":"track","event":"a\x00b"}\n')
    wal.close()


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


def test_shipper_joins_whole_groups_in_order_into_bounded_entries() -> None:
    from micromoments.activation.bus import _joined

    groups = [_event(i) * (1 + i % 3) for i in range(40)]
    size = len(groups[0]) * 5
    entries = _joined(groups, size)
    assert b"".join(entries) == b"".join(groups)  # nothing lost, order kept
    assert len(entries) > 1
    # Each entry is whole groups and stays within the limit unless one group alone is bigger.
    assert all(e.endswith(b"\n") and (len(e) <= size) for e in entries)
    assert _joined([b"x" * 10], 4) == [b"x" * 10]
    assert _joined([], 4) == []


def _thread_write_bytes(native_id: int) -> int | None:
    try:
        with open(f"/proc/self/task/{native_id}/io") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("write_bytes"))
    except OSError:
        return None


def test_an_acknowledgement_into_a_preallocated_segment_writes_a_page_not_the_segment(tmp_path: Path) -> None:
    # A spare written with big writes gets big page-cache folios; then every small group's
    # fsync wrote back a whole MiB. The disk writes per acknowledgement show it.
    wal = _log_writing_into_a_spare(tmp_path / "wal")
    before = _thread_write_bytes(wal._thread.native_id)
    if before is None:
        wal.close()
        pytest.skip("no per-thread I/O accounting here (/proc/self/task/*/io)")
    for i in range(1, 301):
        wal.write_sync(_event(i))
    written = _thread_write_bytes(wal._thread.native_id) - before
    assert wal.spares_used == 1
    wal.close()
    assert written / 300 < 32 * 1024, f"{written / 300:,.0f} bytes written per acknowledgement"


def test_interval_mode_acknowledges_before_the_fsync_and_the_syncer_catches_up(tmp_path: Path, monkeypatch) -> None:
    import threading

    import micromoments.activation.wal as wal_module

    synced_by: list[str] = []
    real = os.fdatasync

    def recording(fd: int) -> None:
        synced_by.append(threading.current_thread().name)
        real(fd)

    monkeypatch.setattr(wal_module.os, "fdatasync", recording)
    wal = WriteAheadLog(tmp_path / "wal", sync_interval_ms=20)
    open_fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    for i in range(50):
        wal.write_sync(_event(i))  # answered once written: no fsync on the writer thread
        if i % 10 == 9:
            wal.rotate()  # closed segments go to the syncer, which syncs and closes them
    deadline = time.monotonic() + 10
    while wal.syncs < 3:
        assert time.monotonic() < deadline, "the syncer never ran"
        time.sleep(0.01)
    wal.close()
    # The acknowledging thread never waited for a sync: the syncer (and close) did them all.
    assert "wal-writer" not in synced_by and "wal-syncer" in synced_by
    lines = b"".join(p.read_bytes() for p in sorted((tmp_path / "wal").glob("wal-*.jsonl"))).splitlines()
    assert [orjson.loads(line)["messageId"] for line in lines] == [f"m{i}" for i in range(50)]
    if open_fds is not None:  # every retired segment's descriptor was closed
        assert len(os.listdir("/proc/self/fd")) <= open_fds


def test_interval_mode_stops_acknowledging_after_a_failed_fsync(tmp_path: Path, monkeypatch) -> None:
    import micromoments.activation.wal as wal_module

    wal = WriteAheadLog(tmp_path / "wal", sync_interval_ms=10)
    wal.write_sync(_event(1))

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(wal_module.os, "fdatasync", broken)
    deadline = time.monotonic() + 10
    while wal._error is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with pytest.raises(OSError, match="write-ahead log failed"):
        wal.write_sync(_event(2))
    monkeypatch.undo()
    wal.close()


def test_a_negative_fsync_interval_is_refused_with_the_setting_named(tmp_path: Path) -> None:
    from micromoments.errors import ConfigError

    with pytest.raises(ConfigError, match="fsync interval") as info:
        WriteAheadLog(tmp_path / "wal", sync_interval_ms=-5)
    assert info.value.where == "[server] fsync_interval_ms"
    assert not (tmp_path / "wal").exists() or not list((tmp_path / "wal").iterdir())
