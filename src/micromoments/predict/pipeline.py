"""Glue for the edges (CLI, report, benchmark): train, evaluate and score from a store.

>>> # micromoments predict train / evaluate / score; see tests/test_predict_cli.py
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from micromoments.errors import InputError
from micromoments.predict.artifact import load_model, save_model
from micromoments.predict.batch import StoreEvents, load_store_events, person_features, score_people
from micromoments.predict.evaluate import evaluate
from micromoments.predict.features import FeatureSpec
from micromoments.predict.labels import Labels, make_labels
from micromoments.predict.models import Predictor, TrainSettings, limited_threads, train_predictor
from micromoments.predict.split import TimeSplit

RUNS_TABLE = "predict_runs"
RUNS_COLUMNS = {"ts": "TIMESTAMP", "kind": "VARCHAR", "model_path": "VARCHAR", "metrics": "VARCHAR"}


@dataclass
class TrainingData:
    data: StoreEvents
    X: np.ndarray          # features after every event
    labels: Labels

    @property
    def cutoffs(self) -> np.ndarray:
        return self.data.events.secs


def training_data(store: Any, spec: FeatureSpec, settings: TrainSettings) -> TrainingData:
    """Every event of the store as a cutoff: its features, and what followed it."""
    data = load_store_events(store, spec)
    if data.n_events == 0:
        raise InputError("the store holds no events with a person and a time", where=str(store.path),
                         hint="run `micromoments ingest FILE` (and `micromoments classify-store`) first")
    bf, _ = person_features(data, spec, per_event=True)
    labels = make_labels(spec, data.events, data.person_codes, next_hours=settings.next_hours,
                         buy_days=settings.buy_days)
    return TrainingData(data, bf.X_events, labels)


def train_from_store(store: Any, config: Any, model_path: str | Path, *,
                     progress: Callable[[str], None] | None = None, **overrides: Any) -> tuple[Predictor, dict[str, Any]]:
    """Train every target on the store's events with a time-based split, evaluate, save, log the run."""
    spec = FeatureSpec.from_config(config)
    settings = TrainSettings.from_config(config, **overrides)
    say = progress or (lambda _msg: None)
    say("reading events and building features")
    td = training_data(store, spec, settings)
    if td.data.n_events < 200:
        raise InputError(f"only {td.data.n_events} events: too few to train on", where=str(store.path),
                         hint="ingest more history (a few thousand events at least)")
    predictor = train_predictor(spec, td.X, td.labels, td.cutoffs, settings,
                                on_target=lambda name: say(f"training {name}"))
    say("evaluating on the test period")
    with limited_threads(settings.threads):
        metrics = evaluate(predictor, td.X, td.labels, td.cutoffs)
    metrics["events"], metrics["people"] = int(td.data.n_events), int(len(td.data.person_ids))
    predictor.metrics = metrics
    save_model(predictor, model_path, metrics=metrics)
    log_run(store, "train", model_path, metrics)
    return predictor, metrics


def evaluate_from_store(store: Any, model_path: str | Path) -> dict[str, Any]:
    """Re-evaluate a saved model on the store, on the test period of the split it was trained with."""
    model = load_model(model_path)
    predictor: Predictor = model.predictor
    td = training_data(store, predictor.spec, predictor.settings)
    with limited_threads(predictor.settings.threads):
        metrics = evaluate(predictor, td.X, td.labels, td.cutoffs)
    metrics["events"], metrics["people"] = int(td.data.n_events), int(len(td.data.person_ids))
    log_run(store, "evaluate", model_path, metrics)
    return metrics


def score_from_store(store: Any, model_path: str | Path, *, threads: int = 1) -> Any:
    """Everyone's scores (pandas, one row per person) as of their last event.

    Scored through the model's compiled trees (`trees.npz`), the live path's own code.
    """
    model = load_model(model_path, need_predictor=False)
    data = load_store_events(store, model.spec)
    return score_people(model, data, threads=threads)


def log_run(store: Any, kind: str, model_path: str | Path, metrics: dict[str, Any]) -> None:
    """Append the run's metrics to the store table `predict_runs` (the report reads the latest)."""
    if getattr(store, "engine", "duckdb") == "spark":  # a lake table: one Parquet file per run
        import pandas as pd

        store.write_table(RUNS_TABLE, pd.DataFrame([{
            "ts": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), "kind": kind,
            "model_path": str(model_path), "metrics": json.dumps(metrics, default=float)}])[list(RUNS_COLUMNS)],
            mode="append")
        return
    cols = ", ".join(f'"{c}" {t}' for c, t in RUNS_COLUMNS.items())
    store.duck.execute(f'CREATE TABLE IF NOT EXISTS "{RUNS_TABLE}" ({cols})')
    store.duck.execute(f'INSERT INTO "{RUNS_TABLE}" VALUES (?, ?, ?, ?)',
                       [dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), kind, str(model_path),
                        json.dumps(metrics, default=float)])


def latest_run(store: Any) -> dict[str, Any] | None:
    """The metrics of the latest train/evaluate run logged in the store, or None."""
    if not store.has_table(RUNS_TABLE):
        return None
    if getattr(store, "engine", "duckdb") == "spark":
        runs = store.table(RUNS_TABLE)
        last = store.ibis.execute(runs.order_by(runs.ts.desc()).limit(1).select("metrics", "model_path", "ts"))
        row = tuple(last.iloc[0]) if len(last) else None
    else:
        row = store.duck.execute(f'SELECT metrics, model_path, ts FROM "{RUNS_TABLE}" ORDER BY ts DESC LIMIT 1').fetchone()
    if row is None:
        return None
    metrics = json.loads(row[0])
    metrics["model_path"], metrics["logged_at"] = row[1], str(row[2])
    return metrics


def split_of(manifest: dict[str, Any]) -> TimeSplit:
    return TimeSplit(**manifest["split"])
