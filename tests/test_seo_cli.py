"""`micromoments seo`: a summary readable at 80 columns, CSV tables, and the store."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from micromoments.cli import app

FIXTURES = Path(__file__).parent / "fixtures" / "search"


def test_seo_command_prints_a_narrow_summary_and_writes_csvs(tmp_path: Path) -> None:
    out = tmp_path / "seo"
    res = CliRunner().invoke(app, ["seo", "--input", str(FIXTURES / "searchdata_url_impression.csv"),
                                   str(FIXTURES / "bing_keywords.csv"), "--out", str(out), "--min-impressions", "50"],
                             env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert "read 2 files: 14 loaded, 7 quarantined from 2 tables" in res.output
    assert "By moment" in res.output and "(anonymized)" in res.output
    assert max(len(line) for line in res.output.splitlines()) <= 80, res.output
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.csv" for n in (
        "by_moment", "weekly", "by_device", "by_country", "curve", "below_curve", "themes", "styles",
        "style_trend", "content_gaps", "gap_summary", "cannibalisation"))
    assert "how to build a raised bed" in (out / "cannibalisation.csv").read_text()


def test_seo_command_loads_into_a_store_and_reanalyses_it(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    runner = CliRunner()
    first = runner.invoke(app, ["seo", "-i", str(FIXTURES / "searchdata_site_impression.csv"), "--db", str(db),
                                "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["seo", "--db", str(db), "--out", str(tmp_path / "b")])
    assert again.exit_code == 0, again.output
    assert "0 classified" in again.output  # every query came from the store's cache
    bad = runner.invoke(app, ["seo", "--input", str(tmp_path / "missing.csv")])
    assert bad.exit_code == 2 and "file not found" in bad.output
