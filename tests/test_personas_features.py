"""The one-pass person features equal the first, many-pass version of `person_features`.

`person_features` now reads the events in one GROUP BY (by person and day, then person, with the
event-name and query flags from small lookup tables), the journey's sessions in one (the first
event of each session found by a join on the session's first second) and its episodes in one.
The reference below is the earlier expression kept verbatim in spirit: one aggregation per
source joined six times, the session starts from the per-event session keys, the purchase days
in their own GROUP BY. Both run on a generated demo store; every column must agree.
"""

from __future__ import annotations

from typing import Any

import ibis
import numpy as np
import pandas as pd
import pytest

from conftest import classified_demo_store
from micromoments.config import Config
from micromoments.journey.heatmap import local_hour_weekday, utc_offsets
from micromoments.journey.pipeline import JourneySettings, build_journey, load_events
from micromoments.journey.stages import STAGES
from micromoments.personas.features import (
    COLLECT_PATTERN,
    DAYPARTS,
    WEEKDAY_KEYS,
    FeatureSettings,
    _left,
    _safe,
    _share,
    _with_location,
    person_features,
)

pytestmark = [pytest.mark.slow]


def _reference(events: Any, journey: Any, settings: FeatureSettings) -> Any:
    """The previous `person_features` (many aggregations; session starts from `sessionized`)."""
    ep, sess = journey.episodes, journey.sessions
    s = events.filter(events.person_id.notnull() & events.ts.notnull())
    s = s.mutate(secs=s.ts.epoch_seconds().cast("int64"))
    found = s.group_by("timezone").aggregate(lo=s.ts.min().year(), hi=s.ts.max().year()).execute()
    found = found[found.lo.notna()]
    offsets = utc_offsets(found.timezone.dropna().tolist(), int(found.lo.min()), int(found.hi.max()))
    end_day = (s.secs.max() // 86400).cast("int64").as_scalar()
    n = s.count()
    ev_aggs: dict[str, Any] = dict(
        events=n, first_seen=s.ts.min(), last_seen=s.ts.max(), active_days=(s.secs // 86400).nunique(),
        known=s.user_id.notnull().cast("int64").max().cast("float64"), lat=s.lat.mean(), lon=s.lon.mean(),
        video_share=_share(s.event.lower().re_search("video").fill_null(False), n),
        directions_share=_share(s.event.lower().re_search("direction|store locator|store map").fill_null(False), n))
    for d in settings.devices:
        ev_aggs[f"device_{_safe(d)}"] = _share((s.device_type.lower() == d).fill_null(False), n)
    base = s.group_by("person_id").aggregate(**ev_aggs)
    base = base.mutate(days_since_seen=(end_day - (base.last_seen.epoch_seconds() // 86400)).cast("float64"))
    ns = sess.count()
    by_sess = sess.group_by("person_id").aggregate(sessions=ns, events_per_session=sess.events.cast("float64").mean(),
                                                   converting_sessions=_share(sess.converted, ns))
    ne = ep.count()
    ep_aggs: dict[str, Any] = dict(episodes=ne)
    for m in settings.moments:
        ep_aggs[f"moment_{_safe(m)}"] = _share((ep.moment == m).fill_null(False), ne)
    ep_aggs["_stage_no"] = ibis.cases(*[(ep.stage == st, i) for i, st in enumerate(STAGES)], else_=-1).max()
    by_ep = ep.group_by("person_id").aggregate(**ep_aggs)
    by_ep = by_ep.mutate(furthest_stage=ibis.cases(*[(by_ep._stage_no == i, st) for i, st in enumerate(STAGES)],
                                                   else_="none")).drop("_stage_no")
    q = s.filter(s.query.notnull() & (s.query.strip().length() > 0))
    q = q.mutate(_q=q.query.lower().strip())
    nq = q.count()
    q_aggs: dict[str, Any] = dict(searches=nq, query_words=(q._q.length() - q._q.replace(" ", "").length() + 1)
                                  .cast("float64").mean())
    for name, pattern in settings.query_themes.items():
        q_aggs[f"query_{_safe(name)}"] = _share(q._q.re_search(pattern).fill_null(False), nq)
    by_q = q.group_by("person_id").aggregate(**q_aggs)
    sz = journey.sessionized
    starts = sz.group_by(["person_id", "session_id"]).aggregate(
        ts=sz.ts.min(), timezone=sz.timezone.argmin(sz.event_no), channel=sz.channel.argmin(sz.event_no))
    t = local_hour_weekday(starts, ibis.memtable(offsets))
    nt = t.count()
    aggs = {f"hour_{k}": _share((t.local_hour >= lo) & (t.local_hour < hi), nt) for k, (lo, hi) in DAYPARTS.items()}
    aggs["weekend_share"] = _share(t.local_weekday >= 5, nt)
    for i, day in enumerate(WEEKDAY_KEYS):
        aggs[f"day_{day}"] = _share(t.local_weekday == i, nt)
    for c in settings.channels:
        aggs[f"channel_{_safe(c)}"] = _share((t.channel == c).fill_null(False), nt)
    timing = t.group_by("person_id").aggregate(**aggs)
    conv = s.filter(settings.vocab.is_conversion(s))
    conv = conv.mutate(_day=(conv.secs // 86400).cast("int64"), _rev=conv.revenue.fill_null(0.0),
                       _collect=conv.properties.lower().re_search(COLLECT_PATTERN).fill_null(False))
    daily = conv.group_by(["person_id", "_day"]).aggregate(_day_rev=conv._rev.sum())
    per = daily.group_by("person_id").aggregate(_days=daily.count(), _first=daily._day.min(), _last=daily._day.max(),
                                                _first_rev=daily._day_rev.argmin(daily._day), _total=daily._day_rev.sum())
    per = _left(per, conv.group_by("person_id").aggregate(orders=conv.count(), revenue=conv._rev.sum(),
                                                          collect_share=_share(conv._collect, conv.count())))
    freq = (per._days - 1).cast("float64")
    rfm = per.select("person_id", "orders", "revenue", "collect_share", aov=per.revenue / per.orders.cast("float64"),
                     frequency=freq, recency=(per._last - per._first).cast("float64"),
                     T=(end_day - per._first).cast("float64"),
                     monetary=ibis.ifelse(freq > 0, (per._total - per._first_rev) / freq, 0.0),
                     days_since_purchase=(end_day - per._last).cast("float64"))
    out = base
    for part in (by_sess, by_ep, by_q, timing, rfm):
        out = _left(out, part)
    zero_fill = [c for c in out.columns if c.startswith(("moment_", "query_", "hour_", "channel_", "day_"))] + [
        "episodes", "searches", "orders", "revenue", "frequency", "recency", "monetary", "weekend_share",
        "collect_share", "aov"]
    out = out.mutate(**{c: out[c].fill_null(0) for c in zero_fill},
                     furthest_stage=out.furthest_stage.fill_null("none"),
                     T=out["T"].fill_null((end_day - (out.first_seen.epoch_seconds() // 86400)).cast("float64")),
                     days_since_purchase=out.days_since_purchase.fill_null(-1.0))
    return _with_location(out, settings)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    cfg = Config()
    store, paths = classified_demo_store(tmp_path_factory.mktemp("features-demo"), seed=5, config=cfg)
    yield store, cfg, paths
    store.close()


def test_one_pass_features_equal_the_many_pass_reference(demo_store):
    store, cfg, paths = demo_store
    events, _ = load_events(store)
    journey = build_journey(events, JourneySettings.from_config(cfg), con=store.ibis)
    settings = FeatureSettings.from_config(cfg, stores_path=paths.stores)
    new = store.ibis.execute(person_features(store.table("events"), journey, settings)).sort_values("person_id")
    ref = store.ibis.execute(_reference(events, journey, settings)).sort_values("person_id")
    assert list(new.columns) == list(ref.columns)
    assert len(new) == len(ref) > 300 and (ref.orders > 0).sum() > 20 and ref.query_price.gt(0).any()
    new, ref = new.reset_index(drop=True), ref.reset_index(drop=True)
    for c in ref.columns:
        a, b = ref[c], new[c]
        if pd.api.types.is_numeric_dtype(a) and not pd.api.types.is_bool_dtype(a):
            same = np.isclose(a.astype(float), b.astype(float), rtol=1e-9, atol=1e-12) | (a.isna() & b.isna())
        else:
            same = (a == b).fillna(False) | (a.isna() & b.isna())
        assert bool(np.all(same)), f"{c}: {a[~same].head(3).tolist()} != {b[~same].head(3).tolist()}"
        assert a.dtype == b.dtype, c
