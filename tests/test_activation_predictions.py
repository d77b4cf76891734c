"""Playbooks that trigger on predictions (a trained `predict` model scoring live), and decide() exposing them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from micromoments.activation.engine import Activator
from micromoments.activation.playbooks import MatchContext, Trigger
from micromoments.config import Config
from micromoments.predict.live import LiveScorer
from micromoments.predict.pipeline import train_from_store
from _predict_data import store_with_events, synthetic_events


def test_prediction_conditions_need_scores_and_thresholds() -> None:
    t = Trigger(predicted_moments={"go": 0.5}, min_buy_propensity=0.6)
    scores = {"next_moment": {"go": 0.7, "buy": 0.2}, "p_buy_session": 0.65, "p_buy_7d": 0.1}
    assert t.matches(MatchContext(scores=scores))
    assert not t.matches(MatchContext(scores={**scores, "p_buy_session": 0.59}))
    assert not t.matches(MatchContext(scores={**scores, "next_moment": {"go": 0.49}}))
    assert not t.matches(MatchContext(scores=None))  # no model: never fires
    assert Trigger().matches(MatchContext(scores=None))  # other triggers are unaffected
    with pytest.raises(ValueError, match="not a probability"):
        Trigger(predicted_moments={"go": 1.5})


@pytest.fixture(scope="module")
def scorer_and_histories(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("live-predict")
    frame = synthetic_events(people=100, days=24, seed=5)
    store = store_with_events(root / "s.duckdb", frame)
    train_from_store(store, Config(), root / "model", max_iter=30, buy_days=3.0)
    rows = store.duck.execute(
        "SELECT * EXCLUDE (properties, traits, context) FROM events ORDER BY person_id, ts, message_id").df()
    store.close()
    return root / "model", rows


def _events(rows: Any, person: str) -> list[dict[str, Any]]:
    out = []
    for r in rows[rows.person_id == person].to_dict("records"):
        r = {k: (None if v != v else v) for k, v in r.items()}  # NaN -> None
        r["ts"] = r["ts"].to_pydatetime()
        out.append(r)
    return out


def test_activator_scores_live_like_the_scorer_and_decide_exposes_it(scorer_and_histories, tmp_path: Path) -> None:
    model, rows = scorer_and_histories
    person = rows.person_id.iloc[0]
    history = _events(rows, person)
    act = Activator(Config(), scorer=LiveScorer(model), seed=1)
    try:
        for ev in history:
            act.on_event(ev)
        live = act.state(person).scores
        d = act.decide(person, {"channel": "web"})
    finally:
        act.close()
    assert live is not None and set(live) == {"next_moment", "p_buy_session", "p_buy_7d"}
    # The scorer alone, reading the moments with the same intent engine, gives the same numbers.
    reference = LiveScorer(model)
    for ev in history:
        expected = reference.update(person, ev)
    assert live["p_buy_session"] == pytest.approx(expected["p_buy_session"], abs=1e-12)
    assert live["next_moment"] == pytest.approx(expected["next_moment"], abs=1e-12)
    assert d.context["scores"] == live


def test_a_playbook_fires_on_a_predicted_buy_only_above_its_threshold(scorer_and_histories, tmp_path: Path) -> None:
    model, rows = scorer_and_histories
    people = list(dict.fromkeys(rows.person_id))[:30]
    fired: dict[float, int] = {}
    for threshold in (0.0, 1.0):
        pb = tmp_path / f"playbooks-{threshold}"
        pb.mkdir()
        (pb / "predicted.yaml").write_text(
            "playbooks:\n"
            "  - name: likely-buyer\n"
            "    priority: 50\n"
            "    when:\n"
            "      fire_on: event\n"
            f"      min_buy_propensity: {threshold}\n"
            "    action:\n"
            "      channel: web\n", encoding="utf-8")
        act = Activator(Config(), playbooks_dir=pb, scorer=LiveScorer(model), seed=1)
        try:
            for p in people:
                for ev in _events(rows, p):
                    act.on_event(ev)
            chosen = [act.decide(p, {"channel": "web"}) for p in people]
        finally:
            act.close()
        fired[threshold] = sum(d.playbook == "likely-buyer" for d in chosen)
    assert fired[0.0] == len(people)  # every scored person passes a zero threshold
    assert fired[1.0] == 0            # nobody reaches certainty
