"""Honest when data is thin: every AUC has a bootstrap interval, and a target trained on too little
data, or no better than chance, says so (CLI, metrics JSON, report) instead of a plain number."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from micromoments.cli import app
from micromoments.predict.honesty import auc_interval, verdict
from micromoments.predict.rees46 import write_rees46_csv


def test_random_scores_are_flagged_as_chance():
    rng = np.random.default_rng(1)
    y = rng.random(3000) < 0.2
    p = rng.random(3000)
    lo, hi = auc_interval(y, p)
    assert lo < 0.5 < hi
    status, note = verdict(auc=0.5, low=lo, high=hi, positives_test=int(y.sum()), positives_train=900,
                           span_s=30 * 86400, horizon_s=3600)
    assert status == "chance" and "no better than chance" in note


def test_a_real_signal_is_ok_and_its_interval_is_tight():
    rng = np.random.default_rng(2)
    y = rng.random(3000) < 0.3
    p = y + rng.normal(0, 0.7, 3000)
    lo, hi = auc_interval(y, p)
    assert 0.7 < lo < hi < 0.95 and hi - lo < 0.08
    assert verdict(auc=0.8, low=lo, high=hi, positives_test=900, positives_train=900,
                   span_s=30 * 86400, horizon_s=3600) == ("ok", "")


@pytest.mark.parametrize("kwargs, status, words", [
    (dict(span_s=3 * 3600, horizon_s=7 * 86400), "thin", "shorter than its 7 days horizon"),
    (dict(positives_test=4), "thin", "too few positives"),
    (dict(auc=None), "untestable", "one class only"),
])
def test_thin_data_verdicts(kwargs, status, words):
    base = dict(auc=0.8, low=0.7, high=0.9, positives_test=500, positives_train=500, span_s=30 * 86400, horizon_s=3600)
    got, note = verdict(**{**base, **kwargs})
    assert got == status and words in note


@pytest.mark.slow
def test_predict_train_on_a_short_clickstream_warns_per_target(tmp_path):
    """A day of clicks cannot support a 7-day purchase target: the CLI says so for that target."""
    path = write_rees46_csv(tmp_path / "r.csv", users=150, days=1, seed=4)
    db, model = str(tmp_path / "s.duckdb"), str(tmp_path / "m")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(path), "--format", "rees46", "--db", db]).exit_code == 0
    out = runner.invoke(app, ["predict", "train", "--db", db, "--model", model, "--buy-days", "7",
                              "--metrics-json", str(tmp_path / "m.json")])
    assert out.exit_code == 0, out.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    buy_7d = metrics["targets"]["buy_7d"]
    assert buy_7d["status"] == "thin" and "horizon" in buy_7d["note"]
    assert "warning:" in out.output and "buy_7d" in out.output
    for t in metrics["targets"].values():  # every measured AUC carries its interval
        assert t["auc"] is None or t["auc_low"] <= t["auc"] <= t["auc_high"]
