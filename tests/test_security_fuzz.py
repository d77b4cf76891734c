"""schemathesis over the operations `test_server_fuzz.py` does not cover: the pages' JSON API
(`/app/api/*`, with a signed-in session) and the website routes (`/js/*`, the settings of a
write key). Together the two files fuzz every operation of `/openapi.json`: zero 5xx."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from _server_harness import ThreadServer
from micromoments.config import Config
from micromoments.server.pages import hash_password
from test_report import make_store
from test_server_fuzz import SCHEMATHESIS, _fuzz

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:The .future.infer_string. option")]


def _session_cookie(url: str) -> str:
    with httpx.Client(base_url=url, timeout=30) as c:
        token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/app/login").text).group(1)
        r = c.post("/app/login", data={"csrf_token": token, "username": "fuzz", "password": "fuzz-password"})
        assert r.status_code in (200, 303), r.text
        return c.cookies["mm_session"]


def test_schemathesis_over_the_pages_api_and_website_routes(tmp_path: Path) -> None:
    if not Path(SCHEMATHESIS).exists():
        pytest.skip("schemathesis is not installed")
    make_store(tmp_path / "s.duckdb", people=60).close()  # real journeys for the funnel API
    cfg = Config()
    cfg.server.write_keys = {"fuzz-key": "fuzz"}
    cfg.server.admin_tokens = ["fuzz-admin"]
    cfg.server.admin_users = {"fuzz": hash_password("fuzz-password")}
    cfg.server.rate_limit_per_second = 0.0
    with ThreadServer(cfg, db_path=tmp_path / "s.duckdb", data_dir=tmp_path) as srv:
        cache = srv.app.state.pages_cache
        deadline = time.time() + 120
        while cache._snap is None and time.time() < deadline:  # a 503 while computing is not what we test
            assert cache.last_error is None, cache.last_error
            time.sleep(0.2)
        operations = {f"{m.upper()} {p}" for p, ops in srv.app.openapi()["paths"].items() for m in ops}
        pages = _fuzz(srv.url, f"Cookie: mm_session={_session_cookie(srv.url)}", r"^/app/api/", 40,
                      tmp_path / "pages.xml")
        web = _fuzz(srv.url, "Authorization: Basic ZnV6ei1rZXk6", r"^/(js/|v1/projects/)", 15, tmp_path / "web.xml")
    for run in (pages, web):
        summary = run.stdout[-3000:]
        assert run.returncode == 0, summary
        assert "not_a_server_error" not in summary and "Server error" not in summary, summary
        assert " generated, " in summary and " passed" in summary, summary
    assert "Tested: 3" in pages.stdout, pages.stdout[-2000:]  # status, moments, funnel
    # Every operation is fuzzed here or in test_server_fuzz.py (/v1, /health, /admin).
    covered = re.compile(r"^(GET|POST) /(app/api/|js/|v1/|health|admin/)")
    assert all(covered.match(op) for op in operations), sorted(operations)
