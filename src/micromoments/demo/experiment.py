"""The demo's A/B test: a how-to article at know and do moments against no content (a holdout).

`simulate_experiment(store)` writes what the live path would have logged for it: one assignment per
person with a know or do moment in the data's last 14 days (a hash of the person picks the variant),
a decision each, an exposure and sometimes a click for the people shown the article, and, to give the
test something to find, a purchase credited to the article for a share of the shown people who did
not buy anyway (the simulated effect, `lift_share`). The experiments page and the report then show
a real verdict; `stored_experiments` reads the test back when `micromoments.toml` configures none.

>>> # simulate_experiment(Store("out/micromoments.duckdb"))["people"]
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

NAME = "howto-at-know-moments"
VARIANTS = ("control", "howto")
PURCHASE_EVENT = "Order Completed"  # what the demo's shoppers send when they buy (demo.journey)
HYPOTHESIS = ("Showing a how-to article when someone wants to know or do something makes more of them buy "
              "(control: no content).")


def simulate_experiment(store: Any, *, seed: int = 42, days: int = 14, click_rate: float = 0.18,
                        lift_share: float = 0.10) -> dict[str, int]:
    """Write the demo test's assignments, decisions, exposures and outcomes; returns counts.

    Runs again cleanly: the rows of an earlier run (ids starting `demo-exp-`) are replaced.
    """
    duck = store.duck
    people = duck.execute(f"""
        SELECT e.person_id, min(e.ts) AS ts, arg_min(m.moment, e.ts) AS moment
        FROM events e JOIN event_moments m ON e.message_id = m.message_id
        WHERE m.moment IN ('know', 'do') AND e.person_id IS NOT NULL
          AND e.ts >= (SELECT max(ts) FROM events) - INTERVAL {int(days)} DAY
        GROUP BY 1 ORDER BY 1""").df()
    for table, key in (("assignments", None), ("decisions", "decision_id"), ("exposures", "exposure_id"),
                       ("outcomes", "outcome_id")):
        where = f"experiment = '{NAME}'" if key is None else f"{key} LIKE 'demo-exp-%'"
        duck.execute(f"DELETE FROM {table} WHERE {where}")
    if people.empty:
        return {"people": 0, "exposures": 0, "clicks": 0, "credited": 0}
    rng = np.random.default_rng(seed)
    variant = [VARIANTS[int(hashlib.sha1(f"{NAME}:{p}".encode()).hexdigest()[:8], 16) % 2] for p in people.person_id]
    people = people.assign(variant=variant, decision_id=[f"demo-exp-d{i}" for i in range(len(people))])
    shown = people[people.variant == "howto"].reset_index(drop=True)
    bought = set(duck.execute("""
        SELECT DISTINCT e.person_id FROM events e JOIN (SELECT unnest(?) AS person_id, unnest(?) AS a_ts) a
          ON e.person_id = a.person_id AND e.ts >= a.a_ts
        WHERE e.event = ?""", [shown.person_id.tolist(), shown.ts.tolist(), PURCHASE_EVENT]).df().person_id)
    clicks = shown[rng.random(len(shown)) < click_rate]
    credit = shown[~shown.person_id.isin(bought) & (rng.random(len(shown)) < lift_share)]
    minute = pd.Timedelta(minutes=1)
    frames = {
        "assignments": pd.DataFrame({"experiment": NAME, "person_id": people.person_id, "variant": people.variant,
                                     "ts": people.ts}),
        "decisions": pd.DataFrame({
            "decision_id": people.decision_id, "ts": people.ts, "person_id": people.person_id,
            "playbook": "know-howto", "content_id": np.where(people.variant == "howto", "howto-article", None),
            "channel": "web", "moment": people.moment, "stage": None, "persona": None, "experiment": NAME,
            "variant": people.variant, "propensity": 0.5,
            "status": np.where(people.variant == "howto", "chosen", "holdout"), "context": "{}"}),
        "exposures": pd.DataFrame({
            "exposure_id": "demo-exp-x" + shown.index.astype(str), "decision_id": shown.decision_id,
            "ts": shown.ts, "person_id": shown.person_id, "content_id": "howto-article", "channel": "web",
            "delivery_status": "delivered"}),
        "outcomes": pd.concat([
            pd.DataFrame({"outcome_id": "demo-exp-c" + clicks.index.astype(str), "decision_id": clicks.decision_id,
                          "ts": clicks.ts + minute, "person_id": clicks.person_id, "kind": "click", "revenue": None}),
            pd.DataFrame({"outcome_id": "demo-exp-p" + credit.index.astype(str), "decision_id": credit.decision_id,
                          "ts": credit.ts + 30 * minute, "person_id": credit.person_id, "kind": "conversion",
                          "revenue": 60.0}),
        ]),
    }
    for table, frame in frames.items():
        cols = [c for c in frame.columns]
        duck.register("_demo_exp", frame)
        try:
            duck.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(cols)} FROM _demo_exp")
        finally:
            duck.unregister("_demo_exp")
    return {"people": len(people), "exposures": len(shown), "clicks": len(clicks), "credited": len(credit)}


def stored_experiments(query: Callable[[str], pd.DataFrame]) -> list[Any]:
    """An `ExperimentConfig` per experiment found in the store's `assignments` (control first), for
    stores whose `micromoments.toml` configures none; the demo's keeps its hypothesis. `query(sql)`
    runs SQL on the store (`Snapshot.query`, or `lambda q: store.duck.execute(q).df()`)."""
    from micromoments.config import ExperimentConfig

    if "assignments" not in set(query("SELECT table_name FROM duckdb_tables()").table_name):
        return []
    found = query("SELECT experiment, list(DISTINCT variant ORDER BY variant) AS variants FROM assignments "
                        "WHERE experiment IS NOT NULL GROUP BY 1 ORDER BY 1")
    out = []
    for r in found.itertuples():
        variants = sorted(map(str, r.variants), key=lambda v: (v != "control", v))
        if len(variants) < 2:
            continue
        hypothesis = HYPOTHESIS if r.experiment == NAME else "Found in the store's assignments (not configured)."
        out.append(ExperimentConfig(name=str(r.experiment), hypothesis=hypothesis, variants=variants))
    return out
