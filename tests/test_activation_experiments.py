"""/v1/decide and experiments: the live path assigns with the batch hash and honours a holdout."""

from __future__ import annotations

from _activation_fixtures import Sink
from micromoments.activation.engine import Activator
from micromoments.config import Config, ExperimentConfig
from micromoments.measure.experiments import assign


def test_decide_assigns_like_the_batch_analysis_and_holds_out_control() -> None:
    cfg = Config()
    exp = ExperimentConfig(name="answer-the-moment", variants=["control", "treatment"], weights=[0.3, 0.7])
    cfg.experiments = [exp]
    sink = Sink()
    act = Activator(cfg, log_sink=sink, seed=1)
    try:
        people = [f"p{i}" for i in range(400)]
        decisions = {p: act.decide(p, {"channel": "web"}) for p in people}
        act.decide("p1", {"channel": "web"})  # a second visit: assigned once only
    finally:
        act.close()
    for p, d in decisions.items():
        assert d.experiment == "answer-the-moment"
        assert d.variant == assign(p, exp)  # the same hash the analysis uses
        if d.variant == "control":
            assert d.status == "holdout" and d.content is None and d.content_id is None
        else:
            assert d.status == "chosen" and d.content_id
    control = sum(d.variant == "control" for d in decisions.values())
    assert 0.22 < control / len(people) < 0.38  # weights 30/70
    assigned = sink.rows["assignments"]
    assert len(assigned) == len(people)
    assert {(r["experiment"], r["person_id"], r["variant"]) for r in assigned} == {
        ("answer-the-moment", p, d.variant) for p, d in decisions.items()}
    # Every decision is logged with its variant, so `experiment analyze` can read them.
    logged = sink.rows["decisions"]
    assert len(logged) == len(people) + 1
    assert {r["variant"] for r in logged} == {"control", "treatment"}
    assert not any(r["content_id"] for r in logged if r["variant"] == "control")


def test_no_experiments_no_assignment() -> None:
    sink = Sink()
    act = Activator(Config(), log_sink=sink, seed=1)
    try:
        d = act.decide("someone", {"channel": "web"})
    finally:
        act.close()
    assert d.experiment is None and d.status == "chosen"
    assert "assignments" not in sink.rows
