"""`micromoments demo`: the README's main job, end to end on a small demo."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from micromoments.cli import app


@pytest.mark.slow
def test_demo_ends_with_a_report_and_a_store_of_the_demo_events(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--users", "200", "--days", "10", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for step in ("1/6", "2/6", "3/6", "4/6", "5/6", "6/6"):
        assert step in result.output
    report = tmp_path / "report.html"
    assert report.stat().st_size > 100_000
    html = report.read_text(encoding="utf-8")
    for section in ("Moment mix", "Journey map", "Funnel", "Personas"):
        assert section in html
    events_written = sum(1 for _ in (tmp_path / "data" / "events.jsonl").open(encoding="utf-8"))
    con = duckdb.connect(str(tmp_path / "micromoments.duckdb"), read_only=True)
    try:
        stored, = con.execute("SELECT count(*) FROM events").fetchone()
        quarantined, = con.execute("SELECT count(*) FROM quarantine").fetchone()
        moments, = con.execute("SELECT count(*) FROM event_moments").fetchone()
    finally:
        con.close()
    assert stored + quarantined == events_written and stored > 1000
    assert moments > stored / 2
