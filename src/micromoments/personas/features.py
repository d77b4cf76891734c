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

>>> # feats = person_features(store.table("events"), build_journey(load_events(store)[0], con=store.ibis))
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
from micromoments.journey.clock import whole_seconds
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
    >>> from pathlib import Path
    >>> _ = Path(p).write_text("store_id,lat,lon\\nS1,51.5,-0.12\\n")
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


def _find_offsets_and_end(s: ir.Table, offsets: pd.DataFrame | None) -> tuple[pd.DataFrame, int]:
    """The local-time offsets of the zones in the data (unless given) and the last day with events
    (epoch days), from one small aggregation over two columns."""
    found = s.group_by("timezone").aggregate(lo=s.ts.min().year(), hi=s.ts.max().year(), last=s.secs.max()).execute()
    last = pd.to_numeric(found["last"], errors="coerce").dropna()
    end_day = int(last.max()) // 86400 if len(last) else 0
    if offsets is None:
        zones = found[found.lo.notna()]
        offsets = utc_offsets(zones.timezone.dropna().tolist(), int(zones.lo.min()) if len(zones) else 2000,
                              int(zones.hi.max()) if len(zones) else 2000)
    return offsets, end_day


def _event_kinds(s: ir.Table, settings: FeatureSettings) -> ir.Table:
    """Flags that depend on the event name only, once per distinct name (joined back to events)."""
    k = s.select("event").distinct()
    name = k.event.lower()
    return k.mutate(
        _video=name.re_search("video").fill_null(False).cast("int64"),
        _directions=name.re_search("direction|store locator|store map").fill_null(False).cast("int64"),
        _conv=settings.vocab.is_conversion(k).cast("int64")).rename(_ev="event")


def _query_kinds(s: ir.Table, settings: FeatureSettings) -> ir.Table:
    """Themes and word count of each distinct non-empty query (joined back to the searches)."""
    q = s.filter(s.query.notnull() & (s.query.strip().length() > 0)).select(_qraw=s.query).distinct()
    q = q.mutate(_q=q._qraw.lower().strip())
    themes = {f"_t_{_safe(name)}": q._q.re_search(pattern).fill_null(False).cast("int64")
              for name, pattern in settings.query_themes.items()}
    return q.mutate(_words=(q._q.length() - q._q.replace(" ", "").length() + 1).cast("float64"), **themes).drop("_q")


def _from_events(s: ir.Table, settings: FeatureSettings, end_day: int) -> ir.Table:
    """Everything read from the events, in one pass: the events (with their name and query flags
    from the small lookup tables) are grouped by (person, day), then by person. The day level
    carries the purchase days that the BG/NBD summary needs."""
    kinds, qk = _event_kinds(s, settings), _query_kinds(s, settings)
    t = s.left_join(kinds, s.event == kinds._ev).drop("_ev")
    t = t.left_join(qk, t.query == qk._qraw)
    conv = t._conv.fill_null(0) > 0
    t = t.mutate(
        _day=(t.secs // 86400).cast("int64"), _search=t._qraw.notnull().cast("int64"),
        _is_conv=conv.cast("int64"), _rev=ibis.ifelse(conv, t.revenue.fill_null(0.0), 0.0),
        # Only purchases' properties are searched (the CASE skips the other rows).
        _collect=ibis.ifelse(conv, t.properties.lower().re_search(COLLECT_PATTERN).fill_null(False), False)
        .cast("int64"))
    day_aggs: dict[str, Any] = dict(
        _n=t.count(), _first_ts=t.ts.min(), _last_ts=t.ts.max(),
        _known=t.user_id.notnull().cast("int64").max(),
        _lat_sum=t.lat.sum(), _lat_n=t.lat.count(), _lon_sum=t.lon.sum(), _lon_n=t.lon.count(),
        _video=t._video.fill_null(0).sum(), _directions=t._directions.fill_null(0).sum(),
        _searches=t._search.sum(), _words=t._words.sum(),
        _orders=t._is_conv.sum(), _revenue=t._rev.sum(), _collects=t._collect.sum())
    for d in settings.devices:
        day_aggs[f"_dev_{_safe(d)}"] = (t.device_type.lower() == d).fill_null(False).cast("int64").sum()
    for name in settings.query_themes:
        day_aggs[f"_t_{_safe(name)}"] = t[f"_t_{_safe(name)}"].fill_null(0).sum()
    d = t.group_by(["person_id", "_day"]).aggregate(**day_aggs)

    buy_day = d._orders > 0
    n = d._n.sum()
    nf = n.cast("float64")
    nq = d._searches.sum()
    orders = d._orders.sum()
    aggs: dict[str, Any] = dict(
        events=n, first_seen=d._first_ts.min(), last_seen=d._last_ts.max(), active_days=d.count(),
        known=d._known.max().cast("float64"),
        lat=d._lat_sum.sum() / d._lat_n.sum().nullif(0).cast("float64"),
        lon=d._lon_sum.sum() / d._lon_n.sum().nullif(0).cast("float64"),
        video_share=d._video.sum().cast("float64") / nf, directions_share=d._directions.sum().cast("float64") / nf,
        searches=nq, query_words=d._words.sum() / nq.nullif(0).cast("float64"),
        orders=orders, revenue=d._revenue.sum(),
        collect_share=d._collects.sum().cast("float64") / orders.nullif(0).cast("float64"),
        _buy_days=buy_day.cast("int64").sum(), _first_buy=d._day.min(where=buy_day), _last_buy=d._day.max(where=buy_day),
        # The revenue of the first buy day (a plain arg_min: with a filter DuckDB ran an ordered
        # aggregate, a sort per person). Other days sort after every buy day.
        _first_rev=d._revenue.argmin(ibis.ifelse(buy_day, d._day, d._day + 1_000_000_000)),
    )
    for dev in settings.devices:
        aggs[f"device_{_safe(dev)}"] = d[f"_dev_{_safe(dev)}"].sum().cast("float64") / nf
    for name in settings.query_themes:
        aggs[f"query_{_safe(name)}"] = d[f"_t_{_safe(name)}"].sum().cast("float64") / nq.nullif(0).cast("float64")
    p = d.group_by("person_id").aggregate(**aggs)
    buyer = p._buy_days > 0
    freq = (p._buy_days - 1).cast("float64")
    first_day = (p.first_seen.epoch_seconds() // 86400).cast("int64")
    return p.mutate(
        days_since_seen=(end_day - (p.last_seen.epoch_seconds() // 86400)).cast("float64"),
        aov=ibis.ifelse(buyer, p.revenue / p.orders.cast("float64"), 0.0),
        frequency=ibis.ifelse(buyer, freq, 0.0),
        recency=ibis.ifelse(buyer, (p._last_buy - p._first_buy).cast("float64"), 0.0),
        # Non-buyers: their BG/NBD age runs from their first visit.
        T=ibis.ifelse(buyer, (end_day - p._first_buy), (end_day - first_day)).cast("float64"),
        monetary=ibis.ifelse(freq > 0, (p.revenue - p._first_rev) / freq, 0.0),
        days_since_purchase=ibis.ifelse(buyer, (end_day - p._last_buy).cast("float64"), -1.0),
    ).drop("_buy_days", "_first_buy", "_last_buy", "_first_rev")


def _from_sessions(s: ir.Table, sess: ir.Table, offsets: pd.DataFrame | ir.Table,
                   channels: tuple[str, ...]) -> ir.Table:
    """Per person from the journey's sessions, in one GROUP BY: how many, their length and
    conversion, and the local daypart, weekday and entry channel of each session's first event.

    The first event is found by joining the sessions to the events of the same person in the
    session's first second (a session starts after a 30-minute gap, so those events are its own),
    not by joining every event to its session keys."""
    if isinstance(offsets, pd.DataFrame):
        offsets = ibis.memtable(offsets)
    keys = sess.select(_p=sess.person_id, _sno=sess.session_no, _secs=sess.secs_start)
    cand = s.select("person_id", "secs", "ts", "message_id", "timezone", "channel")
    cand = cand.join(keys, (cand.person_id == keys._p) & (cand.secs == keys._secs))
    w = ibis.window(group_by=[cand.person_id, cand._sno], order_by=[cand.ts, cand.message_id])
    first = cand.mutate(_rn=ibis.row_number().over(w))
    first = first.filter(first._rn == 0).select(_p=first.person_id, _sno=first._sno, _ts=first.ts,
                                                timezone=first.timezone, channel=first.channel)
    t = sess.left_join(first, (sess.person_id == first._p) & (sess.session_no == first._sno))
    t = t.select(person_id=t.person_id, events=t.events, converted=t.converted, ts=t._ts.fill_null(t.start),
                 timezone=t.timezone, channel=t.channel)
    t = local_hour_weekday(t, offsets)
    n = t.count()
    aggs: dict[str, Any] = dict(sessions=n, events_per_session=t.events.cast("float64").mean(),
                                converting_sessions=_share(t.converted, n))
    for name, (lo, hi) in DAYPARTS.items():
        aggs[f"hour_{name}"] = _share((t.local_hour >= lo) & (t.local_hour < hi), n)
    aggs["weekend_share"] = _share(t.local_weekday >= 5, n)
    for i, day in enumerate(WEEKDAY_KEYS):
        aggs[f"day_{day}"] = _share(t.local_weekday == i, n)
    for c in channels:
        aggs[f"channel_{_safe(c)}"] = _share((t.channel == c).fill_null(False), n)
    return t.group_by("person_id").aggregate(**aggs)


def _from_episodes(ep: ir.Table, moments: tuple[str, ...]) -> ir.Table:
    """Per person from the journey's episodes: the moment mix and the furthest stage."""
    ne = ep.count()
    aggs: dict[str, Any] = dict(episodes=ne)
    for m in moments:
        aggs[f"moment_{_safe(m)}"] = _share((ep.moment == m).fill_null(False), ne)
    order = ibis.cases(*[(ep.stage == st, i) for i, st in enumerate(STAGES)], else_=-1)
    aggs["_stage_no"] = order.max()
    by_ep = ep.group_by("person_id").aggregate(**aggs)
    return by_ep.mutate(furthest_stage=ibis.cases(*[(by_ep._stage_no == i, st) for i, st in enumerate(STAGES)],
                                                  else_="none")).drop("_stage_no")


# The order of the output columns (unchanged from the first, many-pass version of this module).
def _column_order(settings: FeatureSettings) -> list[str]:
    cols = ["person_id", "events", "first_seen", "last_seen", "active_days", "known", "lat", "lon", "video_share",
            "directions_share", *[f"device_{_safe(d)}" for d in settings.devices], "days_since_seen",
            "sessions", "events_per_session", "converting_sessions", "episodes",
            *[f"moment_{_safe(m)}" for m in settings.moments], "furthest_stage", "searches", "query_words",
            *[f"query_{_safe(q)}" for q in settings.query_themes],
            *[f"hour_{h}" for h in DAYPARTS], "weekend_share", *[f"day_{d}" for d in WEEKDAY_KEYS],
            *[f"channel_{_safe(c)}" for c in settings.channels],
            "orders", "revenue", "collect_share", "aov", "frequency", "recency", "T", "monetary",
            "days_since_purchase"]
    return cols


def person_features(events: ir.Table, journey: Journey, settings: FeatureSettings | None = None,
                    offsets: pd.DataFrame | None = None) -> ir.Table:
    """One row per person with the behavioural features (see the module docstring).

    `events` are the store's events (moment columns are not needed: `store.table("events")` will
    do; on a store classified before moments were stamped onto `events`, `load_events` would join
    `event_moments`, which cost more than the features); `journey` is
    `build_journey(...)` of the same events (only its `sessions` and `episodes` are read, so pass
    the tables a caller already built). `offsets` are the local-time offsets
    (`journey.heatmap.utc_offsets`); pass them to skip finding the time zones in the data.

    Three GROUP BYs: events (by person and day, then person), sessions, episodes; then two joins.

    >>> # person_features(events, build_journey(events), FeatureSettings(stores=read_stores("stores.csv")))
    """
    settings = settings or FeatureSettings()
    s = events.filter(events.person_id.notnull() & events.ts.notnull())
    s = s.mutate(secs=whole_seconds(s.ts))
    offsets, end_day = _find_offsets_and_end(s, offsets)

    out = _from_events(s, settings, end_day)
    out = _left(out, _from_sessions(s, journey.sessions, offsets, settings.channels))
    out = _left(out, _from_episodes(journey.episodes, settings.moments))
    zero_fill = [c for c in out.columns if c.startswith(("moment_", "query_", "hour_", "channel_", "day_"))] + [
        "episodes", "weekend_share", "collect_share"]
    out = out.mutate(**{c: out[c].fill_null(0) for c in zero_fill if c in out.columns},
                     furthest_stage=out.furthest_stage.fill_null("none"))
    return _with_location(out.select(*_column_order(settings)), settings)


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
