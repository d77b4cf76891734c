"""Greenhaven's 25 physical stores in three countries and five time zones, and `stores.csv`.

>>> len(STORES), STORES[0].city
(25, 'London')
>>> nearest_store(53.8, -1.55).city
'Leeds'
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Store:
    store_id: str
    name: str
    city: str
    region: str
    country: str      # ISO 3166-1 alpha-2
    lat: float
    lon: float
    timezone: str     # IANA
    weekday_open: str  # Mon-Sat
    weekday_close: str
    sunday_open: str
    sunday_close: str

    @property
    def slug(self) -> str:
        return self.city.lower().replace(" ", "-")

    @property
    def opening_hours(self) -> str:
        """OpenStreetMap `opening_hours` syntax."""
        return f"Mo-Sa {self.weekday_open}-{self.weekday_close}; Su {self.sunday_open}-{self.sunday_close}"

    @property
    def currency(self) -> str:
        return {"GB": "GBP", "IE": "EUR", "US": "USD"}[self.country]

    @property
    def locale(self) -> str:
        return {"GB": "en-GB", "IE": "en-IE", "US": "en-US"}[self.country]


# city | region | country | lat | lon | timezone
_STORES = """
London|Greater London|GB|51.5072|-0.1276|Europe/London
Leeds|West Yorkshire|GB|53.8008|-1.5491|Europe/London
Manchester|Greater Manchester|GB|53.4808|-2.2426|Europe/London
Birmingham|West Midlands|GB|52.4862|-1.8904|Europe/London
Bristol|Bristol|GB|51.4545|-2.5879|Europe/London
Glasgow|Scotland|GB|55.8642|-4.2518|Europe/London
Edinburgh|Scotland|GB|55.9533|-3.1883|Europe/London
Cardiff|Wales|GB|51.4816|-3.1791|Europe/London
Norwich|Norfolk|GB|52.6309|1.2974|Europe/London
Brighton|East Sussex|GB|50.8225|-0.1372|Europe/London
Nottingham|Nottinghamshire|GB|52.9548|-1.1581|Europe/London
Exeter|Devon|GB|50.7184|-3.5339|Europe/London
Newcastle|Tyne and Wear|GB|54.9783|-1.6178|Europe/London
Dublin|Leinster|IE|53.3498|-6.2603|Europe/Dublin
Cork|Munster|IE|51.8985|-8.4756|Europe/Dublin
Galway|Connacht|IE|53.2707|-9.0568|Europe/Dublin
Boston|Massachusetts|US|42.3601|-71.0589|America/New_York
Philadelphia|Pennsylvania|US|39.9526|-75.1652|America/New_York
Atlanta|Georgia|US|33.7490|-84.3880|America/New_York
Charlotte|North Carolina|US|35.2271|-80.8431|America/New_York
Chicago|Illinois|US|41.8781|-87.6298|America/Chicago
Minneapolis|Minnesota|US|44.9778|-93.2650|America/Chicago
Austin|Texas|US|30.2672|-97.7431|America/Chicago
Denver|Colorado|US|39.7392|-104.9903|America/Denver
Portland|Oregon|US|45.5152|-122.6784|America/Los_Angeles
"""


def _build() -> tuple[Store, ...]:
    out = []
    for i, line in enumerate(_STORES.strip().splitlines(), start=1):
        city, region, country, lat, lon, tz = line.split("|")
        if country == "US":
            hours = ("07:00", "21:00", "08:00", "20:00")
        elif country == "IE":
            hours = ("08:00", "20:00", "10:00", "18:00")
        else:  # English Sunday trading law: six hours on Sunday
            hours = ("08:00", "20:00", "10:00", "16:00")
        out.append(Store(f"S{i:03d}", f"Greenhaven {city}", city, region, country, float(lat), float(lon), tz, *hours))
    return tuple(out)


STORES: tuple[Store, ...] = _build()
STORES_BY_COUNTRY: dict[str, tuple[Store, ...]] = {
    c: tuple(s for s in STORES if s.country == c) for c in ("GB", "IE", "US")
}


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 12742.0 * math.asin(math.sqrt(a))


def nearest_store(lat: float, lon: float) -> Store:
    """The store closest to a point."""
    return min(STORES, key=lambda s: distance_km(lat, lon, s.lat, s.lon))


STORE_COLUMNS = ("store_id", "name", "city", "region", "country", "lat", "lon", "timezone", "opening_hours",
                 "weekday_open", "weekday_close", "sunday_open", "sunday_close", "currency", "locale")


def write_stores_csv(path: Path) -> int:
    """Write the store list; returns the number of stores."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(STORE_COLUMNS)
        for s in STORES:
            w.writerow([getattr(s, c) for c in STORE_COLUMNS])
    return len(STORES)
