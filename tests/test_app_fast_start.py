"""Playbooks, experiments and live moments open while the first analytics are still computed; the
other pages say what is being computed and for how long."""

from __future__ import annotations

import threading

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from micromoments.server.pages import analytics, hash_password, mount_pages
from test_app_pages import login
from test_report import make_store

pytestmark = pytest.mark.filterwarnings("ignore:The .future.infer_string. option")


def test_pages_without_analytics_do_not_wait(tmp_path, monkeypatch) -> None:
    path = tmp_path / "s.duckdb"
    make_store(path, people=40).close()
    release = threading.Event()
    real = analytics.collect_with_journey

    def slow(*args, **kwargs):  # the first computation hangs until the test lets it go
        release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(analytics, "collect_with_journey", slow)
    app = FastAPI()
    cache = mount_pages(app, store_path=str(path), admin_users={"ada": hash_password("lovelace")},
                        session_secret="test-secret")
    c = TestClient(app)
    try:
        assert login(c).status_code == 303
        for url, marker in (("/app/playbooks", 'id="playbooks"'), ("/app/experiments", 'id="attribution"'),
                            ("/app/live", "Live")):
            r = c.get(url)
            assert r.status_code == 200, (url, r.text[:300])
            assert marker in r.text and "still being computed" in r.text
        assert "appears here once the analytics are computed" in c.get("/app/experiments").text
        assert c.get("/app/api/moments?limit=5").status_code == 200
        waiting = c.get("/app/journey")
        assert waiting.status_code == 503
        assert 'class="progress"' in waiting.text and "s so far" in waiting.text
        assert cache._snap is None  # nothing above waited for the analytics
    finally:
        release.set()
        # Let the warm-up thread finish: a DuckDB query still running at interpreter exit aborts it.
        if cache._warming is not None:
            cache._warming.join(120)
