"""Features: no future leakage, one definition for batch and live, labels and the time split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from micromoments.predict.batch import from_table
from micromoments.predict.features import FeatureSpec, PersonState, batch_features, encode_frame
from micromoments.predict.labels import make_labels, next_within
from micromoments.predict.split import TimeSplit
from _predict_data import synthetic_events

SPEC = FeatureSpec()


def _features_per_event(frame: pd.DataFrame) -> np.ndarray:
    data = from_table(pa.Table.from_pandas(frame, preserve_index=False), SPEC)
    return batch_features(SPEC, data.events, data.person_codes, per_event=True).X_events


def test_future_events_do_not_change_features() -> None:
    """Shuffle, perturb, drop and add events after each person's cutoff: features up to it stay the same."""
    frame = synthetic_events(people=40, days=10, seed=1)
    rng = np.random.default_rng(7)
    X = _features_per_event(frame)
    cut = {p: g.ts.iloc[len(g) // 2] for p, g in frame.groupby("person_id")}
    past = frame.ts <= frame.person_id.map(cut)
    future = frame[~past].copy()
    # Shuffle the future's contents among its rows, move its times around (still after the
    # cutoff), drop a third of it and add made-up purchases.
    for col in ("event", "moment", "channel", "device_type", "query", "revenue", "lat", "page_path"):
        future[col] = future[col].to_numpy()[rng.permutation(len(future))]
    future["ts"] = (future.person_id.map(cut) + pd.to_timedelta(rng.uniform(1, 5e5, len(future)), unit="s")).dt.floor("ms")
    future = future.sample(frac=0.66, random_state=3)
    extra = future.head(20).assign(event="Order Completed", moment="buy", revenue=999.0,
                                   message_id=lambda d: d.message_id + "x")
    changed = pd.concat([frame[past], future, extra]).sort_values(["person_id", "ts", "message_id"], kind="stable")
    X2 = _features_per_event(changed.reset_index(drop=True))
    mask2 = (changed.ts <= changed.person_id.map(cut)).to_numpy()
    assert past.sum() > 100 and (~past).sum() > 100
    np.testing.assert_array_equal(X[past.to_numpy()], X2[mask2])
    # ... and the labels DO see the future (the check above is not vacuous).
    d1 = from_table(pa.Table.from_pandas(frame, preserve_index=False), SPEC)
    d2 = from_table(pa.Table.from_pandas(changed.reset_index(drop=True), preserve_index=False), SPEC)
    y1 = make_labels(SPEC, d1.events, d1.person_codes).y["buy_7d"][past.to_numpy()]
    y2 = make_labels(SPEC, d2.events, d2.person_codes).y["buy_7d"][mask2]
    assert (y1 != y2).any()


def test_truncated_history_equals_the_cutoff_row() -> None:
    """Scoring at a cutoff (only the past loaded) = the per-event row right after that event."""
    frame = synthetic_events(people=15, days=6, seed=2)
    X = _features_per_event(frame)
    idx = frame.groupby("person_id").cumcount()
    past = (idx < 7).to_numpy()
    data = from_table(pa.Table.from_pandas(frame[past], preserve_index=False), SPEC)
    bf = batch_features(SPEC, data.events, data.person_codes)
    last_rows = frame[past].groupby("person_id").tail(1).index.to_numpy()
    np.testing.assert_array_equal(bf.X_last, X[last_rows])


def test_live_state_matches_batch_features_exactly() -> None:
    frame = synthetic_events(people=25, days=8, seed=3)
    X = _features_per_event(frame)
    row = 0
    for _, group in frame.groupby("person_id", sort=True):
        state = PersonState(SPEC)
        for rec in group.to_dict("records"):
            rec = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in rec.items()}
            state.add(rec)
            np.testing.assert_array_equal(state.features()[0], X[row])
            row += 1
    assert row == len(frame)


def test_feature_values_on_a_hand_built_history() -> None:
    rows = pd.DataFrame({
        "person_id": ["a"] * 4, "message_id": ["1", "2", "3", "4"],
        "ts": pd.to_datetime(["2026-09-01 10:00", "2026-09-01 10:10", "2026-09-01 12:00", "2026-09-01 12:01"]),
        "event": ["Products Searched", "Product Added", "Order Completed", None],
        "query": ["drill", None, None, None], "moment": ["know", "buy", "buy", None],
        "revenue": [None, None, 50.0, None], "channel": ["email", "email", "app", "app"],
    })
    X = _features_per_event(rows)
    f = dict(zip(SPEC.feature_names, X[-1].tolist()))
    assert f["events"] == 4 and f["sessions"] == 2 and f["session_events"] == 2
    assert f["count_buy"] == 2 and f["count_know"] == 1 and f["count_conversion"] == 1
    assert f["session_count_cart"] == 0 and f["count_cart"] == 1 and f["revenue_total"] == 50.0
    assert f["last_moment_buy"] == 1 and f["prev_moment_know"] == 1
    assert f["prev_session_gap_s"] == pytest.approx(110 * 60)
    assert f["since_search_s"] == pytest.approx(2 * 3600 + 60)
    assert f["session_channel_app"] == 1 and f["decayed_buy_1h"] == pytest.approx(np.exp(-1 / 60) + np.exp(-111 / 60))


def test_labels_look_only_forward_and_within_person() -> None:
    secs = np.array([0.0, 100.0, 200.0, 0.0, 50.0])
    persons = np.array([0, 0, 0, 1, 1])
    hit = np.array([True, False, True, False, True])
    assert next_within(secs, persons, hit, 150.0).tolist() == [False, True, False, True, False]


def test_split_is_by_time_with_an_embargo() -> None:
    cutoffs = np.sort(np.random.default_rng(0).uniform(0, 1000, 5000))
    split = TimeSplit.from_range(0, 1000)
    train, val, test = split.masks(cutoffs, horizon_s=50.0)
    assert cutoffs[train].max() < cutoffs[val].min() and cutoffs[val].max() + 50 <= cutoffs[test].min()
    assert (cutoffs[test] + 50 <= 1000).all()
    assert train.sum() > val.sum() > 0 and test.sum() > 0


def test_encode_frame_agrees_with_the_live_encoder() -> None:
    frame = synthetic_events(people=10, days=4, seed=4)
    batch = encode_frame(SPEC, frame)
    from micromoments.predict.features import encode_event

    for i, rec in enumerate(frame.to_dict("records")):
        rec = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in rec.items()}
        one = encode_event(SPEC, rec)
        np.testing.assert_array_equal(one.onehot[0], batch.onehot[i])
        assert one.secs[0] == batch.secs[i] and one.channel[0] == batch.channel[i]
