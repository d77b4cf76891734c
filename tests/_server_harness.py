"""A real uvicorn server for the server tests: in a thread (fast tests) or as `micromoments serve`."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from micromoments.config import Config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# Generous: a cold start on a busy 2-core CI machine (imports, the pages warm-up) can take 30 s or more.
def wait_up(url: str, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up")


class ThreadServer:
    """`create_app(config)` served by uvicorn on a free port, in a background thread."""

    def __init__(self, config: Config, *, db_path: Path, data_dir: Path, activator=None, log_sink=None, bus=None):
        from micromoments.server.app import create_app

        self.app = create_app(config, db_path=db_path, data_dir=data_dir, activator=activator, log_sink=log_sink,
                              bus=bus)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "ThreadServer":
        self.thread.start()
        wait_up(self.url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def write_config(path: Path, *, db: Path, wal: Path, rate: float = 0, flush_ms: int = 300,
                 extra: str = "") -> Path:
    path.write_text(
        f'[store]\npath = "{db}"\n\n[server]\nwrite_keys = {{"wk_test" = "test", "wk_slow" = "slow"}}\n'
        f'admin_tokens = ["adm_test"]\nrate_limit_per_second = {float(rate)}\nwal_dir = "{wal}"\n'
        f"flush_interval_ms = {flush_ms}\n{extra}"
    )
    return path


def start_serve(config_path: Path, port: int, *args: str, log: Path | None = None) -> subprocess.Popen:
    """`micromoments serve` as its own process (so it can be killed with -9)."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "micromoments"), "serve", "--config", str(config_path), "--port", str(port), *args],
        stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
    )


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
    return proc.wait(timeout=timeout)


def send_until_stopped(url: str, key: dict[str, str], acked: list[str], stop_at: threading.Event, *,
                       batch: bool, sent: list[int] | None = None) -> None:
    """Post search events (20 per `/v1/batch`, or one per `/v1/track`) until `stop_at` is set; the
    ids answered 200 go to `acked`, the count posted to `sent[0]`. A failed request (the server
    killed mid-request) counts as not acknowledged."""
    import datetime as dt
    import uuid

    now = dt.datetime.now(dt.UTC).isoformat()
    with httpx.Client(base_url=url, timeout=5, headers=key) as client:
        while not stop_at.is_set():
            ids = [uuid.uuid4().hex for _ in range(20 if batch else 1)]
            events = [{"type": "track", "messageId": i, "anonymousId": "a-" + i[:4], "event": "Products Searched",
                       "timestamp": now, "properties": {"query": "garden shed near me"}} for i in ids]
            if sent is not None:
                sent[0] += len(ids)
            try:
                resp = (client.post("/v1/batch", json={"batch": events}) if batch
                        else client.post("/v1/track", json=events[0]))
            except httpx.HTTPError:
                time.sleep(0.05)  # the server is down: do not spin
                continue
            if resp.status_code == 200:
                acked.extend(ids)


# Debian's Chromium for the browser tests, started as a root CI machine needs it (no downloads).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@contextlib.contextmanager
def pages_served(app: Any, timeout: float = 240.0) -> Iterator[str]:
    """Serve `app` (with the /app pages mounted) on a loopback port in a thread, once its first
    analytics are computed; yields the base URL and stops the server afterwards."""
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    cache = app.state.pages_cache
    deadline = time.time() + timeout
    while (cache._snap is None or not srv.started) and time.time() < deadline:
        assert cache.last_error is None, cache.last_error
        time.sleep(0.2)
    assert cache._snap is not None, "the analytics were not ready in time"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=20)


@contextlib.contextmanager
def chromium_browser() -> Iterator[Any]:
    """A headless Debian Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
