"""Behavioural features per person, as one Ibis expression over the store (DuckDB or Spark).

One row per person with:

* **moment mix**: share of the person's moment episodes that are know / go / do / buy, plus any
  custom moment types (`moment_<type>` columns) and the number of episodes;
* **furthest stage** reached in the journey (`furthest_stage`, from `micromoments.journey`);
* **channels** (share of sessions entered from each) and **devices** (share of events per device);
* **active hours and days**: share of sessions starting in each part of the local day, weekend share;
* **RFM**: orders, revenue, mean order value, and the BG/NBD summary (`frequency`, `recency`, `T`,
  `monetary`, in days) that `clv.py` turns into P(alive) and lifetime value;
* **query themes**: share of searches that are questions, how-tos, price hunting, local or trade;
* **location**: distance from the person's usual location to the nearest store, urban/suburban/rural.

>>> # feats = person_features(events_with_moments, build_journey(events_with_moments))
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from micromoments.errors import InputError
from micromoments.journey.heatmap import local_hour_weekday, utc_offsets
from micromoments.journey.pipeline import Journey
from micromoments.journey.stages import STAGES
from micromoments.journey.vocab import EventVocabulary

BASE_MOMENTS = ("know", "go", "do", "buy")
CHANNELS = ("organic-search", "paid-search", "email", "social", "direct", "app", "referral")
DEVICES = ("mobile", "desktop", "tablet")
# Parts of the local day a session starts in (hour ranges, end exclusive).
DAYPARTS = {"early": (5, 9), "morning": (9, 12), "midday": (12, 14), "afternoon": (14, 17),
            "evening": (17, 21), "late": (21, 24), "night": (0, 5)}
# Query themes as regular expressions over the lower-cased query (same syntax on DuckDB and Spark).
QUERY_THEMES = {
    "question": r"^(how|what|why|when|which|where|who|can|do|does|is|are|should|will)\b|\?",
    "howto": r"\b(how to|diy|guide|tutorial|ideas|step by step|video)\b",
    "price": r"\b(cheap|cheapest|deal|deals|sale|discount|offer|offers|price|prices|voucher|coupon|bargain|"
             r"clearance|black friday|under [0-9]+)\b",
    "local": r"\b(near me|nearby|open now|opening hours|open today|directions|in stock|store|stores)\b",
    "trade": r"\b(trade|bulk|wholesale|pallet|pallets|contractor|merchant|merchants|account|x [0-9]+|[0-9]+ x)\b",
}
COLLECT_PATTERN = r'"fulfillment"\s*:\s*"(click_and_collect|collect|in_store|pickup|store_pickup)"'
WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
URBAN_KM, SUBURBAN_KM = 8.0, 25.0


@dataclass
class FeatureSettings:
    """What the features look at. `from_config` reads custom moments and the stores file."""

    moments: tuple[str, ...] = BASE_MOMENTS
    channels: tuple[str, ...] = CHANNELS
    devices: tuple[str, ...] = DEVICES
    query_themes: dict[str, str] = field(default_factory=lambda: dict(QUERY_THEMES))
    stores: pd.DataFrame | None = None  # columns store_id, lat, lon
    urban_km: float = URBAN_KM
    suburban_km: float = SUBURBAN_KM
    vocab: EventVocabulary = field(default_factory=EventVocabulary)

    @classmethod
    def from_config(cls, config: Any | None, *, stores_path: str | Path | None = None) -> "FeatureSettings":
        from micromoments.journey.vocab import vocabulary_from_config

        custom = [m.name for m in getattr(getattr(config, "intent", None), "custom_moments", []) or []]
        pcfg = getattr(config, "personas", None)
        path = stores_path or getattr(pcfg, "stores_path", None) or None
        settings = cls(moments=BASE_MOMENTS + tuple(c for c in custom if c not in BASE_MOMENTS),
                       vocab=vocabulary_from_config(config))
        if pcfg is not None:
            settings.urban_km = float(getattr(pcfg, "urban_km", URBAN_KM))
            settings.suburban_km = float(getattr(pcfg, "suburban_km", SUBURBAN_KM))
        if path:
            settings.stores = read_stores(path)
        return settings


def read_stores(path: str | Path) -> pd.DataFrame:
    """Store locations from a CSV with `store_id`, `lat`, `lon` columns (the demo's stores.csv).

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "s.csv")
    >>> _ = open(p, "w").write("store_id,lat,lon\\nS1,51.5,-0.12\\n")
    >>> read_stores(p).store_id.tolist()
    ['S1']
    """
    path = Path(path)
    if not path.exists():
        raise InputError("stores file not found", where=str(path), hint="set [personas] stores_path to a CSV of stores")
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"store_id", "lat", "lon"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(f"missing column(s) {sorted(missing)}", where=f"{path}:1",
                             hint="the header needs store_id, lat and lon")
        for line, row in enumerate(reader, start=2):
            try:
                rows.append((row["store_id"], float(row["lat"]), float(row["lon"])))
            except (TypeError, ValueError):
                raise InputError(f"lat/lon are not numbers: {row.get('lat')!r}, {row.get('lon')!r}",
                                 where=f"{path}:{line}", hint="use decimal degrees") from None
    return pd.DataFrame(rows, columns=["store_id", "lat", "lon"])


def _share(cond: ir.BooleanValue, total: ir.IntegerValue) -> ir.FloatingValue:
    return cond.cast("int64").sum().cast("float64") / total.cast("float64")


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")


def _left(a: ir.Table, b: ir.Table, key: str = "person_id") -> ir.Table:
    """`a` left-joined with `b` on `key`, keeping one key column."""
    b = b.rename(_k=key)
    return a.left_join(b, a[key] == b._k).drop("_k")


def _haversine_km(lat1: ir.FloatingValue, lon1: ir.FloatingValue, lat2: ir.FloatingValue,
                  lon2: ir.FloatingValue) -> ir.FloatingValue:
    rad = 3.141592653589793 / 180.0
    dlat, dlon = (lat2 - lat1) * rad, (lon2 - lon1) * rad
    a = (dlat / 2).sin() ** 2 + (lat1 * rad).cos() * (lat2 * rad).cos() * (dlon / 2).sin() ** 2
    return 12742.0 * a.clip(upper=1.0).sqrt().asin()


def session_starts(sessionized: ir.Table) -> ir.Table:
    """One row per session: person, start time, time zone and entry channel (of its first event)."""
    s = sessionized
    return s.group_by(["person_id", "session_id"]).aggregate(
        ts=s.ts.min(), timezone=s.timezone.argmin(s.event_no), channel=s.channel.argmin(s.event_no))


def session_timing(starts: ir.Table, offsets: ir.Table | pd.DataFrame, channels: tuple[str, ...] = CHANNELS) -> ir.Table:
    """Per person: entry-channel shares and the share of sessions starting in each part of the local
    day and on a weekend (from `session_starts`)."""
    if isinstance(offsets, pd.DataFrame):
        offsets = ibis.memtable(offsets)
    t = local_hour_weekday(starts, offsets)
    n = t.count()
    aggs = {f"hour_{name}": _share((t.local_hour >= lo) & (t.local_hour < hi), n) for name, (lo, hi) in DAYPARTS.items()}
    aggs["weekend_share"] = _share(t.local_weekday >= 5, n)
    for i, day in enumerate(WEEKDAY_KEYS):
        aggs[f"day_{day}"] = _share(t.local_weekday == i, n)
    for c in channels:
        aggs[f"channel_{_safe(c)}"] = _share((t.channel == c).fill_null(False), n)
    return t.group_by("person_id").aggregate(**aggs)


def purchases_rfm(sessionized: ir.Table, vocab: EventVocabulary, end_day: ir.IntegerValue) -> ir.Table:
    """Per buyer: orders, revenue, mean order value, click-and-collect share, and the BG/NBD summary in
    days (lifetimes convention: a day with orders is one purchase; `monetary` = mean repeat-day value)."""
    conv = sessionized.filter(vocab.is_conversion(sessionized))
    conv = conv.mutate(_day=(conv.secs // 86400).cast("int64"), _rev=conv.revenue.fill_null(0.0),
                       _collect=conv.properties.lower().re_search(COLLECT_PATTERN).fill_null(False))
    daily = conv.group_by(["person_id", "_day"]).aggregate(_day_rev=conv._rev.sum())
    per = daily.group_by("person_id").aggregate(
        _days=daily.count(), _first=daily._day.min(), _last=daily._day.max(),
        _first_rev=daily._day_rev.argmin(daily._day), _total=daily._day_rev.sum())
    orders = conv.group_by("person_id").aggregate(
        orders=conv.count(), revenue=conv._rev.sum(), collect_share=_share(conv._collect, conv.count()))
    per = _left(per, orders)
    freq = (per._days - 1).cast("float64")
    return per.select(
        "person_id", "orders", "revenue", "collect_share",
        aov=per.revenue / per.orders.cast("float64"),
        frequency=freq,
        recency=(per._last - per._first).cast("float64"),
        T=(end_day - per._first).cast("float64"),
        monetary=ibis.ifelse(freq > 0, (per._total - per._first_rev) / freq, 0.0),
        days_since_purchase=(end_day - per._last).cast("float64"),
    )


def person_features(events: ir.Table, journey: Journey, settings: FeatureSettings | None = None,
                    offsets: pd.DataFrame | None = None) -> ir.Table:
    """One row per person with the behavioural features (see the module docstring).

    `events` carries moment columns (`journey.pipeline.load_events`); `journey` is
    `build_journey(events)`. `offsets` are the local-time offsets (`journey.heatmap.utc_offsets`);
    pass them to avoid the query that finds the time zones in the data.

    >>> # person_features(events, build_journey(events), FeatureSettings(stores=read_stores("stores.csv")))
    """
    settings = settings or FeatureSettings()
    ep, sess = journey.episodes, journey.sessions
    # Event-level parts read the full events (the journey tables keep only a few columns).
    s = events.filter(events.person_id.notnull() & events.ts.notnull())
    s = s.mutate(secs=s.ts.epoch_seconds().cast("int64"))
    if offsets is None:
        found = s.group_by("timezone").aggregate(lo=s.ts.min().year(), hi=s.ts.max().year()).execute()
        found = found[found.lo.notna()]
        offsets = utc_offsets(found.timezone.dropna().tolist(), int(found.lo.min()) if len(found) else 2000,
                              int(found.hi.max()) if len(found) else 2000)
    end_day = (s.secs.max() // 86400).cast("int64").as_scalar()

    # Events: volume, devices, known customer, usual location.
    n = s.count()
    ev_aggs: dict[str, Any] = dict(
        events=n, first_seen=s.ts.min(), last_seen=s.ts.max(),
        active_days=(s.secs // 86400).nunique(),
        known=s.user_id.notnull().cast("int64").max().cast("float64"),
        lat=s.lat.mean(), lon=s.lon.mean(),
        video_share=_share(s.event.lower().re_search("video").fill_null(False), n),
        directions_share=_share(s.event.lower().re_search("direction|store locator|store map").fill_null(False), n),
    )
    for d in settings.devices:
        ev_aggs[f"device_{_safe(d)}"] = _share((s.device_type.lower() == d).fill_null(False), n)
    base = s.group_by("person_id").aggregate(**ev_aggs)
    base = base.mutate(days_since_seen=(end_day - (base.last_seen.epoch_seconds() // 86400)).cast("float64"))

    # Sessions: count, entry channel shares, length.
    ns = sess.count()
    sess_aggs: dict[str, Any] = dict(sessions=ns, events_per_session=sess.events.cast("float64").mean(),
                                     converting_sessions=_share(sess.converted, ns))
    by_sess = sess.group_by("person_id").aggregate(**sess_aggs)

    # Episodes: moment mix and the furthest stage.
    ne = ep.count()
    ep_aggs: dict[str, Any] = dict(episodes=ne)
    for m in settings.moments:
        ep_aggs[f"moment_{_safe(m)}"] = _share((ep.moment == m).fill_null(False), ne)
    order = ibis.cases(*[(ep.stage == st, i) for i, st in enumerate(STAGES)], else_=-1)
    ep_aggs["_stage_no"] = order.max()
    by_ep = ep.group_by("person_id").aggregate(**ep_aggs)
    by_ep = by_ep.mutate(furthest_stage=ibis.cases(*[(by_ep._stage_no == i, st) for i, st in enumerate(STAGES)],
                                                   else_="none")).drop("_stage_no")

    # Searches: how many, and their themes.
    q = s.filter(s.query.notnull() & (s.query.strip().length() > 0))
    q = q.mutate(_q=q.query.lower().strip())
    nq = q.count()
    q_aggs: dict[str, Any] = dict(searches=nq, query_words=(q._q.length() - q._q.replace(" ", "").length() + 1)
                                  .cast("float64").mean())
    for name, pattern in settings.query_themes.items():
        q_aggs[f"query_{_safe(name)}"] = _share(q._q.re_search(pattern).fill_null(False), nq)
    by_q = q.group_by("person_id").aggregate(**q_aggs)

    timing = session_timing(session_starts(journey.sessionized), offsets, settings.channels)
    rfm = purchases_rfm(s, settings.vocab, end_day)

    out = base
    for part in (by_sess, by_ep, by_q, timing, rfm):
        out = _left(out, part)

    zero_fill = [c for c in out.columns if c.startswith(("moment_", "query_", "hour_", "channel_", "day_"))] + [
        "episodes", "searches", "orders", "revenue", "frequency", "recency", "monetary", "weekend_share", "collect_share", "aov"]
    out = out.mutate(**{c: out[c].fill_null(0) for c in zero_fill if c in out.columns},
                     furthest_stage=out.furthest_stage.fill_null("none"),
                     # Non-buyers: their BG/NBD age runs from their first visit.
                     T=out["T"].fill_null((end_day - (out.first_seen.epoch_seconds() // 86400)).cast("float64")),
                     days_since_purchase=out.days_since_purchase.fill_null(-1.0))
    return _with_location(out, settings)


def _with_location(feats: ir.Table, settings: FeatureSettings) -> ir.Table:
    """Distance from the person's mean location to the nearest store, and urban/suburban/rural."""
    if settings.stores is None or settings.stores.empty:
        return feats.mutate(store_km=ibis.null("float64"), area=ibis.literal("unknown"))
    st = ibis.memtable(settings.stores[["store_id", "lat", "lon"]].rename(
        columns={"store_id": "_store", "lat": "_slat", "lon": "_slon"}).astype({"_slat": "float64", "_slon": "float64"}))
    located = feats.filter(feats.lat.notnull() & feats.lon.notnull()).select(_p=feats.person_id, _lat=feats.lat,
                                                                             _lon=feats.lon)
    pairs = located.cross_join(st)
    pairs = pairs.mutate(_km=_haversine_km(pairs._lat, pairs._lon, pairs._slat, pairs._slon))
    nearest = pairs.group_by("_p").aggregate(store_km=pairs._km.min(), nearest_store=pairs._store.argmin(pairs._km))
    out = feats.left_join(nearest, feats.person_id == nearest._p).drop("_p")
    area = ibis.cases((out.store_km.isnull(), "unknown"), (out.store_km <= settings.urban_km, "urban"),
                      (out.store_km <= settings.suburban_km, "suburban"), else_="rural")
    return out.mutate(area=area)


def build_person_features(store: Any, config: Any | None = None, *, stores_path: str | Path | None = None,
                          journey: Journey | None = None) -> pd.DataFrame:
    """Compute `person_features` for everyone in the store and return pandas (edges call this).

    >>> # from micromoments.store import open_store; build_person_features(open_store("out/micromoments.duckdb"))
    """
    from micromoments.journey.pipeline import JourneySettings, build_journey, load_events

    events, _ = load_events(store)
    if journey is None:
        journey = build_journey(events, JourneySettings.from_config(config), con=store.ibis)
    settings = FeatureSettings.from_config(config, stores_path=stores_path)
    return store.ibis.execute(person_features(events, journey, settings))
