"""The REES46 e-commerce clickstream shape: an ingest preset, and a generator for tests and demos.

The public REES46 files (Kaggle: "eCommerce behavior data from multi category store",
`2019-Oct.csv.gz`, ...) have the columns
`event_time, event_type, product_id, category_id, category_code, brand, price, user_id, user_session`
with `event_type` in view / cart / remove_from_cart / purchase, and no search queries.

    micromoments ingest 2019-Oct.csv.gz --format rees46      # = --format csv --map REES46_MAPPING
    micromoments predict train && micromoments predict score -o scores.parquet

No real REES46 data ships with micromoments (nothing is downloaded); `write_rees46_csv` writes a
file of the same shape whose shoppers behave plausibly (views, carts, removals, purchases, return
visits), so the whole path runs offline in tests.

>>> import tempfile, pathlib
>>> p = write_rees46_csv(pathlib.Path(tempfile.mkdtemp()) / "r.csv", users=5, days=3, seed=1)
>>> p.read_text().splitlines()[0]
'event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session'
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import math
import random
import uuid
from pathlib import Path

# Canonical field=column: the event time, its type and the user; `price` is revenue on purchase
# events only (every view carries a price too, and keeps it in `properties`).
REES46_MAPPING = "timestamp=event_time,event=event_type,user_id=user_id,revenue=price,revenue_on=purchase"
REES46_COLUMNS = ("event_time", "event_type", "product_id", "category_id", "category_code", "brand", "price",
                  "user_id", "user_session")

_CATEGORIES = [
    ("electronics.smartphone", ["apple", "samsung", "xiaomi", "huawei"], 120.0, 900.0),
    ("electronics.audio.headphone", ["sony", "jbl", "apple"], 20.0, 300.0),
    ("appliances.kitchen.washer", ["lg", "bosch", "samsung"], 200.0, 700.0),
    ("computers.notebook", ["lenovo", "hp", "asus", "acer"], 300.0, 1500.0),
    ("apparel.shoes", ["nike", "adidas", "puma"], 30.0, 150.0),
    ("furniture.living_room.sofa", ["ikea", "divan"], 150.0, 900.0),
]


def write_rees46_csv(path: str | Path, *, users: int = 500, days: int = 21, seed: int = 0,
                     start: dt.date = dt.date(2019, 10, 1)) -> Path:
    """Write a REES46-shaped CSV (gzipped if the name ends in .gz) and return its path.

    Each shopper has a latent purchase propensity; within a session they view products of one
    category, may add to cart, remove, and buy. Carting, repeated views of one product and a
    recent visit raise the chance of buying, as in real clickstreams.
    """
    path = Path(path)
    rng = random.Random(seed)
    products = {}
    for ci, (code, brands, lo, hi) in enumerate(_CATEGORIES):
        for j in range(25):
            pid = 1_000_000 + ci * 1000 + j
            products[pid] = (2053013555631882655 + ci, code, rng.choice(brands),
                             round(math.exp(rng.uniform(math.log(lo), math.log(hi))), 2))
    by_cat: dict[int, list[int]] = {}
    for pid, (cat, *_rest) in products.items():
        by_cat.setdefault(cat, []).append(pid)
    rows: list[tuple] = []
    t0 = dt.datetime.combine(start, dt.time())
    for u in range(users):
        user_id = 500_000_000 + u
        propensity = rng.betavariate(1.2, 6.0)
        rate = rng.uniform(0.1, 1.2)  # sessions per day
        t = t0 + dt.timedelta(hours=rng.uniform(0, 48))
        warm = 0.0  # interest carried over from recent sessions
        while t < t0 + dt.timedelta(days=days):
            cat = rng.choice(list(by_cat))
            session = str(uuid.UUID(int=rng.getrandbits(128)))
            carted: list[int] = []
            n_views = 1 + int(rng.expovariate(1 / (2 + 4 * propensity + 3 * warm)))
            focus = rng.choice(by_cat[cat])
            for _ in range(n_views):
                pid = focus if rng.random() < 0.4 else rng.choice(by_cat[cat])
                rows.append((t, "view", pid, user_id, session))
                t += dt.timedelta(seconds=rng.uniform(10, 240))
                if rng.random() < 0.08 + 0.5 * propensity + 0.2 * warm:
                    carted.append(pid)
                    rows.append((t, "cart", pid, user_id, session))
                    t += dt.timedelta(seconds=rng.uniform(5, 90))
            if carted and rng.random() < 0.15:
                rows.append((t, "remove_from_cart", carted.pop(), user_id, session))
                t += dt.timedelta(seconds=rng.uniform(5, 60))
            bought = bool(carted) and rng.random() < min(0.95, 0.25 + 0.9 * propensity + 0.3 * warm)
            if bought:
                for pid in carted:
                    t += dt.timedelta(seconds=rng.uniform(20, 200))
                    rows.append((t, "purchase", pid, user_id, session))
            warm = 0.0 if bought else min(1.0, 0.6 * warm + (0.5 if carted else 0.15))
            t += dt.timedelta(hours=rng.expovariate(rate / 24.0) + 0.6)
    rows.sort(key=lambda r: r[0])
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", newline="", encoding="utf-8") as f:  # type: ignore[operator]
        w = csv.writer(f)
        w.writerow(REES46_COLUMNS)
        for t, kind, pid, user_id, session in rows:
            cat, code, brand, price = products[pid]
            w.writerow([t.strftime("%Y-%m-%d %H:%M:%S UTC"), kind, pid, cat, code, brand, price, user_id, session])
    return path
