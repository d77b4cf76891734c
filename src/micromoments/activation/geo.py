"""Stores and the distance to the nearest one, for `near_store_km` triggers and `{{ nearest_store }}`.

Stores come from a CSV with at least `store_id`, `name`, `lat`, `lon` (the demo's `stores.csv`
has more columns, all passed to templates). Without a CSV the demo's 25 stores are used.

>>> idx = StoreIndex.demo()
>>> store, km = idx.nearest(53.80, -1.55)
>>> store["name"], round(km, 1)
('Greenhaven Leeds', 0.1)
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from micromoments.errors import ConfigError

EARTH_DIAMETER_KM = 12742.0
REQUIRED_COLUMNS = ("store_id", "name", "lat", "lon")


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in km.

    >>> round(distance_km(51.5072, -0.1276, 53.8008, -1.5491))
    272
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return EARTH_DIAMETER_KM * math.asin(math.sqrt(min(1.0, a)))


class StoreIndex:
    """The stores, with a vectorised nearest-store lookup (fine up to tens of thousands of stores)."""

    def __init__(self, stores: list[dict[str, Any]]):
        self.stores = stores
        lat = np.radians([float(s["lat"]) for s in stores]) if stores else np.zeros(0)
        lon = np.radians([float(s["lon"]) for s in stores]) if stores else np.zeros(0)
        self._lat, self._lon, self._cos = lat, lon, np.cos(lat)
        self._cache: dict[tuple[float, float], tuple[dict[str, Any], float]] = {}

    def __len__(self) -> int:
        return len(self.stores)

    @classmethod
    def from_csv(cls, path: str | Path) -> StoreIndex:
        """Read a stores CSV; errors name the file, row and column."""
        path = Path(path)
        if not path.exists():
            raise ConfigError("stores CSV not found", where=str(path),
                              hint="set [activation] stores_csv to a file with store_id,name,lat,lon")
        stores: list[dict[str, Any]] = []
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ConfigError(f"missing column(s) {missing}", where=f"{path}:1",
                                  hint="the header needs store_id,name,lat,lon")
            for row_no, row in enumerate(reader, start=2):
                try:
                    row["lat"], row["lon"] = float(row["lat"]), float(row["lon"])
                except (TypeError, ValueError):
                    raise ConfigError(f"lat/lon not numbers: {row.get('lat')!r}, {row.get('lon')!r}",
                                      where=f"{path}:{row_no}") from None
                stores.append(dict(row))
        return cls(stores)

    @classmethod
    def demo(cls) -> StoreIndex:
        """The demo's stores (what `micromoments demo` writes to stores.csv)."""
        from micromoments.demo.stores import STORE_COLUMNS, STORES

        return cls([{c: getattr(s, c) for c in STORE_COLUMNS} for s in STORES])

    def nearest(self, lat: float | None, lon: float | None) -> tuple[dict[str, Any] | None, float | None]:
        """(store, km) of the closest store, or (None, None) without a location or stores."""
        if lat is None or lon is None or not self.stores:
            return None, None
        key = (float(lat), float(lon))
        hit = self._cache.get(key)
        if hit is None:
            # People send the same coarse location again and again: remember the last 10k answers.
            if len(self._cache) >= 10_000:
                self._cache.clear()
            hit = self._cache[key] = self._nearest(*key)
        return hit

    def _nearest(self, lat: float, lon: float) -> tuple[dict[str, Any], float]:
        la, lo = math.radians(lat), math.radians(lon)
        a = np.sin((self._lat - la) / 2) ** 2 + math.cos(la) * self._cos * np.sin((self._lon - lo) / 2) ** 2
        i = int(np.argmin(a))
        return self.stores[i], float(EARTH_DIAMETER_KM * math.asin(math.sqrt(min(1.0, float(a[i])))))
