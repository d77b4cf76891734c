"""The measure commands end to end on a small store: metrics, experiment, attribution, monitor, report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from micromoments.cli import app
from micromoments.config import ExperimentConfig
from micromoments.measure.experiments import assign_many
from test_report import make_store

pytestmark = pytest.mark.filterwarnings("ignore:The .future.infer_string. option")
runner = CliRunner()

CONFIG = """
[[experiments]]
name = "hero-banner"
hypothesis = "A bigger hero banner on buy moments lifts conversion"
variants = ["control", "big"]
weights = [1, 1]
primary_metric = "conversion"
guardrails = ["revenue"]

[monitoring]
alpha = 0.01
"""


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("cli")
    path = tmp / "s.duckdb"
    store = make_store(path)
    people = store.ibis.execute(store.table("events").select("person_id").distinct()).person_id.dropna().tolist()
    exp = ExperimentConfig(name="hero-banner", variants=["control", "big"])
    first = store.ibis.execute(store.table("events").group_by("person_id").aggregate(ts=lambda t: t.ts.min()))
    a = pd.DataFrame({"experiment": "hero-banner", "person_id": people, "variant": assign_many(people, exp)})
    a = a.merge(first, on="person_id")
    store.duck.register("a_df", a)
    store.duck.execute("INSERT INTO assignments SELECT experiment, person_id, variant, ts FROM a_df")
    store.close()
    cfg = tmp / "micromoments.toml"
    cfg.write_text(CONFIG)
    return path, cfg


def test_metrics_command(db, tmp_path):
    path, _ = db
    out = tmp_path / "m.csv"
    r = runner.invoke(app, ["metrics", "--by", "moment,channel", "--db", str(path), "-o", str(out)])
    assert r.exit_code == 0, r.output
    frame = pd.read_csv(out)
    assert {"moment", "channel", "conversion_rate", "conversion_rate_low", "conversion_rate_high"} <= set(frame.columns)
    assert "no activation logs yet" in r.output
    r = runner.invoke(app, ["metrics", "--by", "channel", "--engagement", "--db", str(path), "-o", str(out)])
    assert r.exit_code == 0, r.output
    eng = pd.read_csv(out)
    assert {"events_per_session", "dwell_seconds_per_session", "return_rate"} <= set(eng.columns)
    r = runner.invoke(app, ["metrics", "--by", "colour", "--db", str(path)])
    assert r.exit_code == 2 and "cannot break down by colour" in r.output


def test_experiment_commands(db):
    path, cfg = db
    r = runner.invoke(app, ["experiment", "analyze", "hero-banner", "--db", str(path), "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    assert "hypothesis" in r.output and "conversion" in r.output and "SRM p" in r.output
    r = runner.invoke(app, ["experiment", "analyze", "nope", "--db", str(path), "--config", str(cfg)])
    assert r.exit_code == 2 and "no experiment named 'nope'" in r.output
    r = runner.invoke(app, ["experiment", "power", "--baseline", "0.1", "--mde", "0.1", "--daily", "1000"])
    assert r.exit_code == 0 and "14,745" in r.output
    r = runner.invoke(app, ["experiment", "assign", "hero-banner", "u7", "--config", str(cfg)])
    assert r.output.strip() in ("control", "big")


def test_attribution_command(db, tmp_path):
    path, _ = db
    f = tmp_path / "paths.csv"
    f.write_text("path,total_conversions,total_conversion_value,total_null\n"
                 "email > search,3,300,5\nsearch,1,50,10\nsocial > email > search,2,120,4\n")
    out = tmp_path / "a.csv"
    r = runner.invoke(app, ["attribution", "--paths", str(f), "-o", str(out)])
    assert r.exit_code == 0, r.output
    t = pd.read_csv(out)
    assert np.allclose(t.groupby("model").conversions.sum(), 6) and np.allclose(t.groupby("model").value.sum(), 470)
    r = runner.invoke(app, ["attribution", "--db", str(path)])
    assert r.exit_code == 0 and "conversions credited" in r.output
    r = runner.invoke(app, ["attribution", "--paths", str(tmp_path / "missing.csv")])
    assert r.exit_code == 2 and "not found" in r.output


@pytest.mark.slow
def test_monitor_and_report(db, tmp_path):
    path, cfg = db
    r = runner.invoke(app, ["monitor", "--backtest", "--db", str(path), "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    assert "checked" in r.output
    r = runner.invoke(app, ["report", "--db", str(path), "--config", str(cfg), "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    html = (tmp_path / "r.html").read_text()
    for sid in ("measure-metrics", "measure-attribution", "measure-experiments", "measure-monitoring"):
        assert f'id="{sid}"' in html
