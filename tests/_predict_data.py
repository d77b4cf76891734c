"""Synthetic shopper histories in the canonical event shape, for the predict tests.

People move between know/go/do/buy moments with some persistence, search, view, add to cart and
sometimes buy; channels, devices and locations vary. Small and fast, but with the signal the
models are supposed to find (carts lead to purchases, buy moments lead to buy moments).
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pandas as pd

MOMENTS = ("know", "go", "do", "buy")
CHANNELS = ("web", "app", "email", "organic-search", "direct", None)
DEVICES = ("mobile", "desktop", "tablet", None)


def synthetic_events(people: int = 60, days: int = 20, seed: int = 0) -> pd.DataFrame:
    """Events sorted by person, ts, message_id, with a `moment` column (None for some events)."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    t0 = dt.datetime(2026, 9, 1)
    for p in range(people):
        pid = f"p{p:04d}"
        t = t0 + dt.timedelta(hours=rng.uniform(0, 36))
        moment = rng.choice(MOMENTS)
        propensity = rng.random()
        lat, lon = (rng.uniform(40, 55), rng.uniform(-5, 15)) if rng.random() < 0.5 else (None, None)
        while t < t0 + dt.timedelta(days=days):
            channel, device = rng.choice(CHANNELS), rng.choice(DEVICES)
            for _ in range(1 + int(rng.expovariate(0.25))):
                if rng.random() < 0.3:
                    moment = rng.choice(MOMENTS)
                event, query, revenue, path = "Page Viewed", None, None, "/"
                r = rng.random()
                if moment == "buy" and r < 0.35:
                    event = "Product Viewed"
                elif moment == "buy" and r < 0.55:
                    event = "Product Added"
                elif r < 0.75:
                    event, query = "Products Searched", f"{moment} query {rng.randrange(30)}"
                elif moment == "do" and r < 0.85:
                    path = "/how-to/paint"
                elif r < 0.9:
                    path = "/help/returns"
                if event == "Product Added" and rng.random() < 0.3 + 0.5 * propensity:
                    rows.append(_row(pid, t, event, None, channel, device, lat, lon, moment, None, path))
                    t += dt.timedelta(seconds=rng.uniform(20, 300))
                    event, revenue = "Order Completed", round(rng.uniform(5, 300), 2)
                rows.append(_row(pid, t, event, query, channel, device, lat, lon,
                                 None if rng.random() < 0.05 else moment, revenue, path))
                t += dt.timedelta(seconds=rng.uniform(10, 600))
            t += dt.timedelta(hours=rng.expovariate(1 / 20) + 0.6)
    frame = pd.DataFrame(rows)
    frame["message_id"] = [f"m{i:07d}" for i in range(len(frame))]
    return frame.sort_values(["person_id", "ts", "message_id"], kind="stable").reset_index(drop=True)


def _row(pid: str, t: dt.datetime, event: str, query: Any, channel: Any, device: Any, lat: Any, lon: Any,
         moment: Any, revenue: Any, path: str) -> dict[str, Any]:
    return {"person_id": pid, "ts": t.replace(microsecond=(t.microsecond // 1000) * 1000), "event": event,
            "query": query, "channel": channel, "device_type": device, "lat": lat, "lon": lon,
            "moment": moment, "revenue": revenue, "page_path": path, "type": "track"}


def store_with_events(path: Path, frame: pd.DataFrame) -> Any:
    """A store file holding `frame` in `events` and its moments in `event_moments`."""
    from micromoments.store import Store

    store = Store(path)
    ev = frame.drop(columns=["moment"])
    cols = ", ".join(ev.columns)
    store.duck.register("_ev", ev)
    store.duck.execute(f"INSERT INTO events ({cols}) SELECT {cols} FROM _ev")
    em = frame.loc[frame.moment.notna(), ["message_id", "moment"]].assign(go_type=None, confidence=0.9)
    store.duck.register("_em", em)
    store.duck.execute("CREATE TABLE event_moments AS SELECT message_id, moment, CAST(go_type AS VARCHAR) AS go_type, "
                       "confidence FROM _em")
    return store
