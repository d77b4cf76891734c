"""The batch path: events from the store -> features (+ labels) -> everyone's scores.

Reading is one Ibis expression (events with their moments, sorted by person and time), so it
runs on whatever backend holds the store; the fold itself is numpy (`features.batch_features`).

>>> # see tests/test_predict_batch.py and `micromoments predict train/score`
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from micromoments.predict.features import BatchFeatures, EventBatch, FeatureSpec, batch_features, encode_frame

EVENT_COLUMNS = ("message_id", "person_id", "ts", "event", "page_path", "query", "channel", "device_type",
                 "lat", "lon", "revenue", "moment")


@dataclass
class StoreEvents:
    """Events sorted by person then time, encoded, with each person's id."""

    table: pa.Table
    events: EventBatch
    person_codes: np.ndarray     # int per event, equal within a person's run
    person_ids: np.ndarray       # id per person (in order of first appearance)

    @property
    def n_events(self) -> int:
        return self.table.num_rows


def events_expr(store: Any) -> Any:
    """The Ibis expression the batch path reads: canonical events with `moment`, sorted."""
    from micromoments.journey.pipeline import load_events

    events, _ = load_events(store)  # the stamped moments, or the join on a store classified before them
    events = events.filter(events.person_id.notnull() & events.ts.notnull())
    return events.select(*[c for c in EVENT_COLUMNS if c in events.columns]).order_by(
        ["person_id", "ts", "message_id"])


def load_store_events(store: Any, spec: FeatureSpec, *, until: Any = None) -> StoreEvents:
    """Read and encode the store's events (optionally only those at or before `until`)."""
    expr = events_expr(store)
    if until is not None:
        expr = expr.filter(expr.ts <= until)
    table = store.ibis.to_pyarrow(expr)
    return from_table(table, spec)


def from_table(table: pa.Table, spec: FeatureSpec) -> StoreEvents:
    """Encode an Arrow table of events already sorted by person_id, ts, message_id."""
    encoded = pc.dictionary_encode(table.column("person_id")).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    ids = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    return StoreEvents(table, encode_frame(spec, table), codes, ids)


def person_features(data: StoreEvents, spec: FeatureSpec, *, per_event: bool = False) -> tuple[BatchFeatures, np.ndarray]:
    """Features as of each person's last event (and after every event with `per_event`).

    Returns the features and the person id of each `X_last` row.
    """
    bf = batch_features(spec, data.events, data.person_codes, per_event=per_event)
    from micromoments.predict.features import person_offsets

    starts, _ = person_offsets(data.person_codes)
    return bf, data.person_ids[data.person_codes[starts]] if len(starts) else np.array([], dtype=object)


def score_people(model: Any, data: StoreEvents, *, threads: int = 1) -> "Any":
    """One row per person: last_seen, then `p_next_<moment>`, `p_buy_session`, `p_buy_7d`.

    `model` is an `artifact.LoadedModel` (scored through its compiled trees, like the live path)
    or a `models.Predictor` (scored through scikit-learn). Scores are as of each person's last
    event (what the live path would have said then).
    """
    import pandas as pd

    spec = model.spec
    bf, ids = person_features(data, spec)
    if not len(ids):
        probs = {t: np.array([]) for t in (model.trees.targets if hasattr(model, "trees") else model.targets)}
    elif hasattr(model, "trees"):
        probs = model.trees.predict(bf.X_last, threads=threads)
    else:
        probs = model.predict(bf.X_last)
    frame = pd.DataFrame({"person_id": ids,
                          "last_seen": pd.to_datetime(np.round(bf.last_secs * 1e6).astype("int64"), unit="us")})
    for m in spec.moments:
        frame[f"p_next_{m}"] = probs[f"next_{m}"]
    moment_cols = [f"p_next_{m}" for m in spec.moments]
    frame["likely_next_moment"] = (frame[moment_cols].idxmax(axis=1).str.removeprefix("p_next_")
                                   if len(frame) else pd.Series(dtype=object))
    frame["p_buy_session"] = probs["buy_session"]
    frame["p_buy_7d"] = probs["buy_7d"]
    return frame
