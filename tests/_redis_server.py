"""A throwaway redis-server per test, for the Redis bus and the multi-process serve tests.

Importing this module skips the importing test module when `redis` (the client) or `redis-server`
is missing; `.ci/run` installs both.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from _server_harness import free_port

redis = pytest.importorskip("redis")
REDIS_SERVER = shutil.which("redis-server")
needs_redis_server = pytest.mark.skipif(REDIS_SERVER is None,
                                        reason="redis-server is not installed (apt-get install redis-server)")


@pytest.fixture
def redis_url(tmp_path: Path):
    """Start redis-server on a free port (no persistence), yield its URL, stop it afterwards."""
    port = free_port()
    proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    yield url
    client.close()
    proc.terminate()
    proc.wait(timeout=10)
