"""A CLI that never surprises: --version, a missing store is an error, misspelt funnel steps warn
with the closest names, tables fit 80 columns with human durations and separators, and one
configured conversion window serves the CLI, the report and the app."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from micromoments import __version__
from micromoments.cli import app
from micromoments.cli.tables import cell, frame_table, human_duration

runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """40 people: view -> add (2 min later) -> buy (some, up to a day and a bit later)."""
    tmp = tmp_path_factory.mktemp("traps")
    lines = []
    for i in range(40):
        base = f"2026-03-{1 + i % 20:02d}T10:00:00Z"
        lines.append({"type": "track", "event": "Product Viewed", "userId": f"u{i}", "timestamp": base,
                      "messageId": f"v{i}"})
        lines.append({"type": "track", "event": "Product Added", "userId": f"u{i}",
                      "timestamp": base.replace("10:00", "10:02"), "messageId": f"a{i}"})
        if i % 2:
            day = 1 + i % 20 + (1 if i % 4 == 1 else 0)
            lines.append({"type": "track", "event": "Order Completed", "userId": f"u{i}", "messageId": f"o{i}",
                          "timestamp": f"2026-03-{day:02d}T16:00:00Z", "properties": {"revenue": 1234.5}})
    path = tmp / "events.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    db = str(tmp / "s.duckdb")
    out = runner.invoke(app, ["ingest", str(path), "--db", db])
    assert out.exit_code == 0, out.output
    return db


def test_version():
    out = runner.invoke(app, ["--version"])
    assert out.exit_code == 0 and out.output.strip() == f"micromoments {__version__}"


@pytest.mark.parametrize("command", [["sessions"], ["funnel", "--steps", "a,b"], ["personas", "clv"],
                                     ["attribution"], ["predict", "evaluate"], ["classify-store"]])
def test_a_missing_store_is_an_error_naming_its_path(tmp_path, command):
    missing = tmp_path / "nope.duckdb"
    out = runner.invoke(app, [*command, "--db", str(missing)])
    assert out.exit_code != 0
    assert str(missing) in out.output and "no store at this path" in out.output
    assert not missing.exists()  # nothing created behind the user's back


def test_misspelt_funnel_step_warns_with_the_closest_names(store):
    out = runner.invoke(app, ["funnel", "--steps", "Product Viewed,Product Aded,Order Completed", "--db", store])
    assert out.exit_code == 0, out.output
    assert "no event named 'Product Aded'" in out.output and "'Product Added'" in out.output
    good = runner.invoke(app, ["funnel", "--steps", "Product Viewed,Product Added,Order Completed", "--db", store])
    assert "warning" not in good.output


def test_funnel_table_fits_80_columns_with_human_numbers(store):
    out = runner.invoke(app, ["funnel", "--steps", "Product Viewed,Product Added,Order Completed", "--db", store],
                        env={"COLUMNS": "80"})
    assert out.exit_code == 0, out.output
    table = [line for line in out.output.splitlines() if not line.startswith(("note:", "warning:"))]
    assert max(len(line) for line in table) <= 80
    assert "2 min" in out.output                       # the median time from viewing to adding
    assert re.search(r"\d+ h|\d+ d", out.output)       # purchases hours to a day later
    assert not re.search(r"\bnan\b|e\+0|_s_from", out.output)
    assert "within 7 days" in out.output               # the configured default window


def test_the_configured_window_is_the_default_everywhere(store, tmp_path):
    from micromoments.config import load_config
    from micromoments.report.data import collect
    from micromoments.store import open_store

    cfg_path = tmp_path / "micromoments.toml"
    cfg_path.write_text("[journey]\nconversion_window_days = 3\n")
    out = runner.invoke(app, ["funnel", "--steps", "Product Viewed,Order Completed", "--db", store,
                              "--config", str(cfg_path)])
    assert "within 3 days" in out.output
    data = collect(open_store(store, read_only=True), load_config(cfg_path))
    assert data.conversion_window_days == 3.0


def test_cells_and_durations():
    assert [human_duration(s) for s in (0, 59, 61, 3600, 5400, 86400, 108_000, 3 * 86400 + 1)] == [
        "0 s", "59 s", "1 min 1 s", "1 h", "1 h 30 min", "1 d", "1 d 6 h", "3 d"]
    assert cell("revenue", 108_000.0) == "108,000" and cell("people", 1234) == "1,234"
    assert cell("median_s_from_start", 108_000.0) == "1 d 6 h" and cell("x", float("inf")) == "—"


def test_wide_frames_name_the_columns_left_out():
    import pandas as pd

    from rich.console import Console

    frame = pd.DataFrame({f"column_{i}": [i * 1000.5] for i in range(30)})
    console = Console(width=80, record=True)
    console.print(frame_table(frame, "wide", width=80))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "more columns" in text and "--output" in text


def test_ingest_says_how_rows_were_keyed(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("user_id,timestamp,revenue\nc1,2026-01-05,9.5\nc1,2026-01-05,9.5\n")
    out = runner.invoke(app, ["ingest", str(path), "--db", str(tmp_path / "s.duckdb")])
    assert out.exit_code == 0, out.output
    assert "2 loaded, 0 duplicates" in out.output and "keyed by content + occurrence" in out.output


def test_experiment_analyze_summary_file(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("variant,n,conversions\ncontrol,1000,100\ntreatment,1000,140\n")
    out = runner.invoke(app, ["experiment", "analyze", "--summary", str(path), "--json"])
    assert out.exit_code == 0, out.output
    r = json.loads(out.output)["results"][0]
    assert r["metric"] == "conversion" and r["lift"] == pytest.approx(0.4) and 0 < r["lift_p_value"] < 0.05
    bad = tmp_path / "bad.csv"
    bad.write_text("variant,n\ncontrol,10\n")
    out = runner.invoke(app, ["experiment", "analyze", "--summary", str(bad)])
    assert out.exit_code != 0 and "sum_squares" in out.output and str(bad) in out.output


def test_attribution_paths_delimiter(tmp_path):
    path = tmp_path / "Data.csv"
    path.write_text("path;total_conversions;total_conversion_value;total_null\na > b;2;10;1\nb;1;5;3\n")
    out = runner.invoke(app, ["attribution", "--paths", str(path), "--models", "first_touch,markov"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["attribution", "--paths", str(path), "--delimiter", ","])
    assert out.exit_code != 0 and "comma-separated" in out.output and "path;total_conversions" in out.output


def test_personas_clv_params_and_as_of(store):
    out = runner.invoke(app, ["personas", "clv", "--db", store, "--as-of", "2026-03-10"])
    assert out.exit_code in (0, 2), out.output
    if out.exit_code == 0:
        assert "to 2026-03-10" in out.output and "BG/NBD" in out.output and "log-likelihood" in out.output
    bad = runner.invoke(app, ["personas", "clv", "--db", store, "--as-of", "March"])
    assert bad.exit_code != 0 and "YYYY-MM-DD" in bad.output
