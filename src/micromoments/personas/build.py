"""`build_personas(store)`: features -> CLV -> clusters -> names -> the `person_features`,
`personas` and `persona_descriptions` tables, plus the saved model for incremental assignment.

>>> # result = build_personas(open_store("out/micromoments.duckdb"), stores_path="out/data/stores.csv")
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa

from micromoments.journey.people import counts_as_person
from micromoments.journey.pipeline import Journey
from micromoments.personas.clustering import PersonaModel
from micromoments.personas.clv import add_clv
from micromoments.personas.describe import describe_personas
from micromoments.personas.features import FeatureSettings, person_features


@dataclass
class PersonaBuild:
    features: pd.DataFrame          # person_features + persona_id + persona
    descriptions: pd.DataFrame
    model: PersonaModel
    model_path: Path | None
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """People (signed in, as every headline counts them: `journey.people`) and the anonymous ids
        not linked to anyone yet, in how many personas."""
        d = self.descriptions
        people = int(d.people.sum()) if "people" in d else len(self.features)
        anonymous = int(d.anonymous.sum()) if "anonymous" in d else 0
        extra = f" and {anonymous:,} anonymous ids not linked to anyone yet" if anonymous else ""
        return (f"{people:,} people{extra} in {self.model.k_} personas "
                f"(fitted on {self.model.fitted_on_:,} ids with enough sessions)")


def model_path_for(store: Any, config: Any | None = None) -> Path:
    """Where the persona model lives: `[personas] model_path`, or next to the store file."""
    configured = getattr(getattr(config, "personas", None), "model_path", "") or ""
    if configured:
        return Path(configured)
    if store.path in (":memory:", ""):
        return Path("personas_model.joblib")
    return Path(f"{store.path}.personas.joblib")


def compute_features(store: Any, config: Any | None = None, *, stores_path: str | Path | None = None,
                     person_ids: list[str] | None = None, journey: Journey | None = None,
                     seconds: dict[str, float] | None = None) -> pd.DataFrame:
    """Behavioural features + CLV for everyone (or only `person_ids`) as pandas.

    `journey`: the tables `build_journey` already made for these events (e.g. by the report), so
    they are not rebuilt. `seconds` receives the time of each step.

    >>> # feats = compute_features(open_store("out/micromoments.duckdb"), stores_path="out/data/stores.csv")
    """
    return features_and_journey(store, config, stores_path=stores_path, person_ids=person_ids, journey=journey,
                                seconds=seconds)[0]


def features_and_journey(store: Any, config: Any | None = None, *, stores_path: str | Path | None = None,
                         person_ids: list[str] | None = None, journey: Journey | None = None,
                         seconds: dict[str, float] | None = None) -> tuple[pd.DataFrame, Journey]:
    """`compute_features`, also returning the journey it built (or was given) for later steps."""
    from micromoments.journey.pipeline import JourneySettings, build_journey, load_events

    seconds = seconds if seconds is not None else {}
    t0 = time.perf_counter()
    if journey is None:
        events, _ = load_events(store)
        if person_ids is not None:
            events = events.filter(events.person_id.isin(list(person_ids)))
        journey = build_journey(events, JourneySettings.from_config(config), con=store.ibis)
    t1 = time.perf_counter()
    seconds["journey"] = t1 - t0
    settings = FeatureSettings.from_config(config, stores_path=stores_path)
    raw = store.table("events")  # the features need no moment columns (they come from the episodes)
    if person_ids is not None:
        raw = raw.filter(raw.person_id.isin(list(person_ids)))
    # Sorted: k-means (its k-means++ start, the subsamples of `choose_k`) depends on the row order,
    # and a parallel GROUP BY returns rows in a different order on every run (the demo's ARI moved
    # between 0.695 and 0.706 with it).
    feats = store.ibis.execute(person_features(raw, journey, settings).order_by("person_id"))
    t2 = time.perf_counter()
    seconds["person_features"] = t2 - t1
    pcfg = getattr(config, "personas", None)
    feats = add_clv(feats, horizon_days=float(getattr(pcfg, "clv_horizon_days", 365.0)),
                    discount_rate=float(getattr(pcfg, "clv_discount_rate", 0.01)))
    seconds["clv"] = time.perf_counter() - t2
    return feats, journey


def typical_paths(store: Any, labels: pd.DataFrame, config: Any | None = None, max_steps: int = 4,
                  journey: Journey | None = None) -> dict[int, str]:
    """The most common moment path of each persona (journey.maps.top_paths on its people).
    `journey`: reuse already built journey tables instead of building them again."""
    from micromoments.journey.maps import top_paths

    episodes = _persona_episodes(store, labels, config, journey)
    out: dict[int, str] = {}
    for pid in sorted(labels.persona_id.unique()):
        ep = episodes.filter(episodes.persona_id == int(pid))
        top = store.ibis.execute(top_paths(ep, by="moment", max_steps=max_steps).limit(1))
        if len(top):
            out[int(pid)] = f"{top.path.iloc[0]} ({top.people.iloc[0]:,} people)"
    return out


def _persona_episodes(store: Any, labels: pd.DataFrame, config: Any | None = None,
                      journey: Journey | None = None) -> ibis.Table:
    """Staged episodes with the person's `persona_id` and `persona` (for maps and funnels by persona)."""
    from micromoments.journey.pipeline import JourneySettings, build_journey, load_events, temp_table

    if journey is None:
        events, _ = load_events(store)
        journey = build_journey(events, JourneySettings.from_config(config), con=store.ibis)
    lab = temp_table(store.ibis, "_mm_persona_labels",
                     labels[["person_id", "persona_id", "persona"]]).rename(_lp="person_id")
    ep = journey.episodes.join(lab, journey.episodes.person_id == lab._lp).drop("_lp")
    return ep


def write_table(store: Any, name: str, frame: pd.DataFrame) -> None:
    """Replace a store table with `frame` (its columns may be wider than the schema's core)."""
    if getattr(store, "engine", "duckdb") == "spark":  # a lake table: Parquet written by Spark
        store.write_table(name, frame)
        return
    duck = store.duck
    # Through Arrow: DuckDB scans it in parallel (pandas it scans on one thread), same column types.
    duck.register("_mm_frame", pa.Table.from_pandas(frame, preserve_index=False))
    try:
        duck.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _mm_frame')
    finally:
        duck.unregister("_mm_frame")


def build_personas(store: Any, config: Any | None = None, *, stores_path: str | Path | None = None,
                   n_clusters: int | str | None = None, model_path: str | Path | None = None,
                   with_paths: bool = True, save: bool = True, journey: Journey | None = None) -> PersonaBuild:
    """Compute features, fit the persona model, name the personas and write the tables.

    The journey is built once (or `journey`, already built by the caller, is reused) and serves
    both the features and the personas' typical paths. `PersonaBuild.seconds` times each step.
    """
    pcfg = getattr(config, "personas", None)
    seconds: dict[str, float] = {}
    feats, journey = features_and_journey(store, config, stores_path=stores_path, journey=journey, seconds=seconds)
    if n_clusters is None:
        k = int(getattr(pcfg, "n_clusters", 0) or 0)
        n_clusters = k if k > 0 else "auto"
    t1 = time.perf_counter()
    model = PersonaModel(n_clusters, min_sessions=int(getattr(pcfg, "min_sessions", 3))).fit(feats)
    t_fit = time.perf_counter()
    seconds["model_fit"] = t_fit - t1
    feats["persona_id"] = model.predict(feats)
    dist = model.distances(feats)
    feats["distance"] = dist[np.arange(len(feats)), feats.persona_id.to_numpy()]
    seconds["assign"] = time.perf_counter() - t_fit
    t2 = time.perf_counter()
    events = store.table("events")
    desc = describe_personas(feats.drop(columns=["distance"]), is_person=counts_as_person(events, store.ibis))
    names = dict(zip(desc.persona_id, desc.persona))
    feats["persona"] = feats.persona_id.map(names)
    version = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    seconds["describe"] = time.perf_counter() - t2
    if with_paths:
        t3 = time.perf_counter()
        paths = typical_paths(store, feats, config, journey=journey)
        desc["typical_path"] = desc.persona_id.map(paths).fillna("")
        seconds["typical_paths"] = time.perf_counter() - t3
    desc["model_version"] = version
    t4 = time.perf_counter()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    feats["built_at"] = now
    write_table(store, "person_features", feats.drop(columns=["persona_id", "persona", "distance"]))
    write_table(store, "personas", pd.DataFrame({
        "person_id": feats.person_id, "persona_id": feats.persona_id.astype("int64"), "persona": feats.persona,
        "distance": feats.distance.astype("float64"), "method": "cluster", "model_version": version,
        "assigned_at": now}))
    write_table(store, "persona_descriptions", desc)
    path = None
    if save:
        model.version = version  # type: ignore[attr-defined]
        model.names = names  # type: ignore[attr-defined]
        model.built_at = now  # type: ignore[attr-defined]
        path = model.save(model_path or model_path_for(store, config))
    seconds["write"] = time.perf_counter() - t4
    return PersonaBuild(feats, desc, model, path, seconds)
