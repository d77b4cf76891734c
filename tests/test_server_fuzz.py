"""schemathesis against /openapi.json of a real server: no request makes it answer 5xx."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _server_harness import ThreadServer
from micromoments.config import Config

SCHEMATHESIS = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")


def _fuzz(url: str, header: str, paths: str, examples: int, report: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SCHEMATHESIS, "run", f"{url}/openapi.json", "--checks", "not_a_server_error", "-H", header,
         "--include-path-regex", paths, "--max-examples", str(examples), "--seed", "7",
         "--generation-database", "none", "--report", "junit", "--report-junit-path", str(report)],
        capture_output=True, text=True, timeout=300,
    )


@pytest.mark.slow
def test_schemathesis_finds_no_server_errors(tmp_path: Path) -> None:
    if not Path(SCHEMATHESIS).exists():
        pytest.skip("schemathesis is not installed")
    cfg = Config()
    cfg.server.write_keys = {"fuzz-key": "fuzz"}
    cfg.server.admin_tokens = ["fuzz-admin"]
    cfg.server.rate_limit_per_second = 0.0  # a 429 is no 5xx, but it would hide the handlers
    with ThreadServer(cfg, db_path=tmp_path / "s.duckdb", data_dir=tmp_path) as srv:
        collector = _fuzz(srv.url, "Authorization: Basic ZnV6ei1rZXk6", r"^/(v1|health)", 25,
                          tmp_path / "collector.xml")
        admin = _fuzz(srv.url, "Authorization: Bearer fuzz-admin", r"^/(admin|health)", 10, tmp_path / "admin.xml")
    for run in (collector, admin):
        summary = run.stdout[-3000:]
        assert run.returncode == 0, summary
        assert "not_a_server_error" not in summary and "Server error" not in summary, summary
        assert " generated, " in summary and " passed" in summary, summary
    # It really exercised the collector: thousands of generated requests, every operation
    # (the six calls, batch, decide, health and Analytics Next's settings).
    assert "Tested: 10" in collector.stdout, collector.stdout[-2000:]
