"""Training, saving and loading models; live and batch scores agree; versions are checked."""

from __future__ import annotations

import json
from itertools import groupby
from pathlib import Path

import numpy as np
import pytest

from micromoments.config import Config
from micromoments.predict.artifact import FORMAT, ModelVersionError, load_model
from micromoments.predict.batch import events_expr
from micromoments.predict.features import FEATURES_VERSION
from micromoments.predict.live import LiveScorer
from micromoments.predict.pipeline import evaluate_from_store, latest_run, score_from_store, train_from_store
from _predict_data import store_with_events, synthetic_events


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("predict")
    store = store_with_events(root / "s.duckdb", synthetic_events(people=100, days=24, seed=5))
    model = root / "model"
    _, metrics = train_from_store(store, Config(), model, max_iter=30, buy_days=3.0)
    yield store, model, metrics
    store.close()


def _histories(store):
    rows = store.ibis.to_pyarrow(events_expr(store)).to_pylist()
    return {pid: list(evs) for pid, evs in groupby(rows, key=lambda r: r["person_id"])}


def test_trained_models_learn_and_are_logged(trained) -> None:
    store, model, metrics = trained
    t = metrics["targets"]
    assert set(t) == {"next_know", "next_go", "next_do", "next_buy", "buy_session", "buy_7d"}
    assert all(t[n]["n_iter"] > 0 for n in t)  # every target got real trees
    assert t["buy_session"]["auc"] > 0.65     # carts lead to purchases in the synthetic data
    nm = metrics["next_moment"]
    assert nm["global_frequency"] == pytest.approx(0.5) and nm["model"] > 0.55
    assert latest_run(store)["targets"]["buy_session"]["auc"] == t["buy_session"]["auc"]
    again = evaluate_from_store(store, model)  # same data, same split -> same numbers
    assert again["targets"]["buy_session"]["auc"] == pytest.approx(t["buy_session"]["auc"])


def test_live_and_batch_give_the_same_scores(trained) -> None:
    store, model, _ = trained
    batch = score_from_store(store, model).set_index("person_id")
    scorer = LiveScorer(model)
    histories = _histories(store)
    assert len(histories) == len(batch) == 100
    for pid, history in histories.items():
        live = scorer.score(history)
        b = batch.loc[pid]
        assert live["p_buy_session"] == pytest.approx(b.p_buy_session, abs=1e-12)
        assert live["p_buy_7d"] == pytest.approx(b.p_buy_7d, abs=1e-12)
        for m, p in live["next_moment"].items():
            assert p == pytest.approx(b[f"p_next_{m}"], abs=1e-12)
        for event in history:  # the incremental path ends at the same place
            inc = scorer.update(pid, event)
        assert inc == live
    assert batch.p_buy_session.std() > 0.01  # scores actually vary


def test_score_without_moments_calls_the_intent_engine(trained) -> None:
    _, model, _ = trained
    seen = []
    scorer = LiveScorer(model, moment_fn=lambda e: seen.append(e) or "buy")
    out = scorer.score([{"ts": "2026-09-02T10:00:00", "event": "Products Searched", "query": "drill"}])
    assert len(seen) == 1 and set(out) == {"next_moment", "p_buy_session", "p_buy_7d"}
    assert scorer.score([])["p_buy_7d"] >= 0.0


def _copy(model: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(model, dest)
    return dest


def _edit_manifest(path: Path, **changes) -> None:
    m = json.loads((path / "manifest.json").read_text())
    m.update(changes)
    (path / "manifest.json").write_text(json.dumps(m))


def test_an_older_format_still_loads(trained, tmp_path: Path) -> None:
    """Format 1 had no trees.npz: it loads, and the live trees are compiled from the sklearn model."""
    _, model, _ = trained
    old = _copy(model, tmp_path / "old")
    (old / "trees.npz").unlink()
    _edit_manifest(old, format=1, micromoments="0.0.9")
    loaded = load_model(old)
    assert loaded.predictor is not None and (old / "trees.npz").exists()
    assert LiveScorer(old).score([])["p_buy_7d"] == LiveScorer(model).score([])["p_buy_7d"]


@pytest.mark.parametrize("changes, words", [
    ({"format": FORMAT + 1, "micromoments": "9.0.0"}, [f"format {FORMAT + 1}", "9.0.0", f"format {FORMAT}"]),
    ({"format": 0}, ["format 0", "older than"]),
    ({"features_version": FEATURES_VERSION + 1}, [f"v{FEATURES_VERSION + 1}", f"v{FEATURES_VERSION}", "retrain"]),
])
def test_incompatible_versions_fail_with_a_clear_message(trained, tmp_path: Path, changes, words) -> None:
    _, model, _ = trained
    bad = _copy(model, tmp_path / "bad")
    _edit_manifest(bad, **changes)
    with pytest.raises(ModelVersionError) as err:
        load_model(bad)
    for w in words:
        assert w in str(err.value)


def test_an_unreadable_sklearn_pickle_names_both_versions_and_live_still_works(trained, tmp_path: Path) -> None:
    _, model, _ = trained
    bad = _copy(model, tmp_path / "pickle")
    (bad / "model.joblib").write_bytes(b"not a pickle")
    _edit_manifest(bad, scikit_learn="0.24.2")
    with pytest.raises(ModelVersionError, match="scikit-learn 0.24.2"):
        load_model(bad)
    assert 0.0 <= LiveScorer(bad).score([])["p_buy_session"] <= 1.0  # trees.npz needs no sklearn


def test_not_a_model_folder(tmp_path: Path) -> None:
    from micromoments.errors import InputError

    with pytest.raises(InputError, match="no manifest.json"):
        LiveScorer(tmp_path)


def test_report_section_draws_the_latest_run(trained, tmp_path: Path) -> None:
    from micromoments.report.predict import predict_sections
    from micromoments.store import Store

    store, _, metrics = trained
    [section] = predict_sections(store)
    assert section.id == "predict" and "predict-importance" in section.figure and "predict-calibration" in section.figure
    assert f"{metrics['targets']['buy_session']['auc']:.2f} (" in section.table  # with its bootstrap interval
    assert predict_sections(Store(tmp_path / "empty.duckdb")) == []


def test_compiled_trees_match_scikit_learn(trained) -> None:
    """Batch and live walk trees.npz; it must say exactly what the scikit-learn models say."""
    store, model, _ = trained
    from micromoments.predict.batch import load_store_events, person_features

    loaded = load_model(model)
    data = load_store_events(store, loaded.spec)
    bf, _ = person_features(data, loaded.spec, per_event=True)
    X = bf.X_events
    ours, theirs = loaded.trees.predict(X, chunk=500, threads=2), loaded.predictor.predict(X)
    for name in theirs:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=0, atol=1e-12)
        assert theirs[name].std() > 0 or name.startswith("next_")
