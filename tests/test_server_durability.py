"""kill -9 of `micromoments serve` under load loses no event it answered 200 to."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from _server_harness import basic, bearer, free_port, send_until_stopped, start_serve, stop, wait_up, write_config
from micromoments.store import Store

KEY = basic("wk_test")


@pytest.mark.slow
@pytest.mark.parametrize("durability", ["fsync before each 200", "fsync every 200 ms"])
def test_kill_9_during_load_loses_no_acknowledged_event(tmp_path: Path, durability: str) -> None:
    db, wal = tmp_path / "store.duckdb", tmp_path / "wal"
    # The interval mode acknowledges once the OS has the bytes: a killed process loses nothing.
    extra = "fsync_interval_ms = 200\n" if "every" in durability else "fsync_interval_ms = 0\n"
    config = write_config(tmp_path / "micromoments.toml", db=db, wal=wal, flush_ms=400, extra=extra)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    proc = start_serve(config, port, "--no-activator", log=log)
    try:
        wait_up(url, proc=proc)
        acked: list[str] = []
        sent = [0]
        stop_at = threading.Event()
        threads = [threading.Thread(target=send_until_stopped, args=(url, KEY, acked, stop_at),
                                    kwargs={"batch": i % 2 == 1, "sent": sent})
                   for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(2.5)
        assert stop(proc, signal.SIGKILL) == -signal.SIGKILL  # mid-load, no shutdown hook runs
        stop_at.set()
        for t in threads:
            t.join(timeout=30)
    finally:
        if proc.poll() is None:
            stop(proc, signal.SIGKILL)
    n_acked = len(set(acked))
    assert n_acked > 500, f"only {n_acked} events acknowledged before the kill: the load was too light"
    # Bytes of events only: a preallocated segment's tail (and a spare) is zeros.
    left_in_wal = sum(len(p.read_bytes().split(b"\0", 1)[0]) for p in wal.glob("wal-*.jsonl"))

    # Restart: the WAL left behind is loaded into the store.
    proc = start_serve(config, port, "--no-activator", log=log)
    try:
        wait_up(url, proc=proc)
        flushed = httpx.post(url + "/admin/flush", headers=bearer("adm_test"), timeout=60).json()
    finally:
        # uvicorn re-raises the SIGTERM after its clean shutdown, so -15 is a clean exit too.
        assert stop(proc) in (0, -signal.SIGTERM), log.read_text()[-2000:]
    store = Store(db)
    stored = {r[0] for r in store.duck.execute("SELECT message_id FROM events").fetchall()}
    store.close()
    lost = set(acked) - stored
    assert not lost, f"{len(lost)} of {n_acked} acknowledged events are missing (WAL had {left_in_wal} bytes)"
    assert len(stored) >= n_acked
    # Sent-but-unanswered events may or may not be there; nothing else can be.
    assert len(stored) <= sent[0]
    print(f"kill -9: {n_acked} acknowledged, {len(stored)} stored, {sent[0]} sent; "
          f"{left_in_wal} WAL bytes left at the kill; flush after restart: {flushed}")
