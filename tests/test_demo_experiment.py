"""The demo's A/B test: logged like the live path would, read back without configuration, analysable."""

from __future__ import annotations

import pytest

from micromoments.demo.experiment import NAME, simulate_experiment, stored_experiments
from micromoments.measure.experiments import analyze_store
from test_report import make_store

pytestmark = pytest.mark.filterwarnings("ignore:The .future.infer_string. option")


def test_demo_experiment_logs_a_test_the_pages_can_judge(tmp_path) -> None:
    store = make_store(tmp_path / "s.duckdb", people=200)
    first = simulate_experiment(store, days=60)
    assert first["people"] > 50 and 0 < first["exposures"] < first["people"]
    again = simulate_experiment(store, days=60)  # a second run replaces the first
    assert again == first
    q = lambda sql: store.duck.execute(sql).df()  # noqa: E731
    counts = q(f"SELECT variant, count(*) AS n FROM assignments WHERE experiment = '{NAME}' GROUP BY 1")
    assert set(counts.variant) == {"control", "howto"} and counts.n.sum() == first["people"]
    shown = q("SELECT DISTINCT d.variant FROM exposures x JOIN decisions d USING (decision_id)")
    assert shown.variant.tolist() == ["howto"]  # the control is a holdout: nothing shown
    (exp,) = stored_experiments(q)
    assert exp.name == NAME and exp.variants[0] == "control" and "how-to" in exp.hypothesis
    res = analyze_store(store, exp).results
    assert res.metric.tolist() == ["conversion"] and res.variant.tolist() == ["howto"]


def test_report_keeps_the_moments_table_once_content_was_shown(tmp_path) -> None:
    from micromoments.report.measure import measure_sections

    store = make_store(tmp_path / "s.duckdb", people=120)
    simulate_experiment(store, days=60)  # decisions exist now: the metrics switch to activation
    metrics = next(s for s in measure_sections(store) if s.id == "measure-metrics")
    table = str(metrics.table)
    assert "exposures" in table and "Micro-moments found in the events" in table
    assert "bought within 7 days" in table
    experiments = next(s for s in measure_sections(store) if s.id == "measure-experiments")
    assert NAME in str(experiments.table)
