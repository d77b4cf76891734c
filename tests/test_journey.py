"""Sessions, episodes, stages and the journey map on a hand-built journey with known answers."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest

from conftest import events_frame
pytestmark = pytest.mark.filterwarnings("ignore:The .future.infer_string. option")

from micromoments.journey import (
    assign_stages,
    episodes,
    journey_map,
    path_links,
    session_features,
    sessionize,
    sessions,
    top_paths,
)


def scenario_rows() -> list[dict]:
    """Three people. A: know -> buy -> purchase, then a how-to after purchase. B: two `go`
    searches 29 minutes apart (same session, two episodes), then a product-browsing session.
    C: a REES46-like shopper without moments (views, cart, purchase), back two days later."""
    a = dict(person_id="A", timezone="America/New_York", channel="organic-search")
    b = dict(person_id="B", timezone="Europe/Paris", channel="app")
    c = dict(person_id="C", channel="web")
    return [
        dict(a, ts="2026-03-02 09:00", event="Products Searched", query="how to choose a running shoe", moment="know", confidence=0.9),
        dict(a, ts="2026-03-02 09:01", type="page", page_path="/blog/how-to-choose", moment="know", confidence=0.8),
        dict(a, ts="2026-03-02 09:03", type="page", page_path="/blog/shoe-guide"),
        dict(a, ts="2026-03-02 09:05", event="Products Searched", query="buy trail running shoes", moment="buy", confidence=0.95),
        dict(a, ts="2026-03-02 09:06", event="Product Viewed", page_path="/p/trail-1", moment="buy", confidence=0.7),
        dict(a, ts="2026-03-02 09:08", event="Product Viewed", page_path="/p/trail-2", moment="buy", confidence=0.7),
        dict(a, ts="2026-03-02 09:10", event="Product Added", page_path="/p/trail-2"),
        dict(a, ts="2026-03-02 09:15", event="Order Completed", revenue=120.0, page_path="/checkout/done"),
        dict(a, ts="2026-03-05 18:00", event="Products Searched", query="how to clean trail shoes", moment="do", confidence=0.85),
        dict(a, ts="2026-03-05 18:02", type="page", page_path="/help/cleaning", moment="do", confidence=0.6),
        dict(b, ts="2026-03-02 12:00", event="Products Searched", query="shoe store near me", moment="go", go_type="local", confidence=0.9),
        dict(b, ts="2026-03-02 12:01", event="Store Locator Viewed", page_path="/stores", moment="go", go_type="local", confidence=0.8),
        dict(b, ts="2026-03-02 12:30", event="Products Searched", query="shoe store open now", moment="go", go_type="local", confidence=0.9),
        dict(b, ts="2026-03-02 13:30", event="Product Viewed", page_path="/p/trail-1"),
        dict(b, ts="2026-03-02 13:32", event="Product Viewed", page_path="/p/trail-2"),
        dict(c, ts="2026-03-03 10:00:00", event="view", page_path="/p/trail-1"),
        dict(c, ts="2026-03-03 10:02:00", event="view", page_path="/p/trail-3"),
        dict(c, ts="2026-03-03 10:04:00", event="cart", page_path="/p/trail-3"),
        dict(c, ts="2026-03-03 10:09:00", event="purchase", revenue=80.0, page_path="/p/trail-3"),
        dict(c, ts="2026-03-05 08:00:00", event="view", page_path="/p/trail-1"),
    ]


@pytest.fixture
def events() -> ibis.Table:
    return ibis.memtable(events_frame(scenario_rows()))


def run(expr: ibis.Table) -> pd.DataFrame:
    return ibis.duckdb.connect().execute(expr)


def test_sessions_split_on_the_gap(events: ibis.Table) -> None:
    s = run(sessions(sessionize(events))).sort_values("session_id")
    assert s.session_id.tolist() == ["A:1", "A:2", "B:1", "B:2", "C:1", "C:2"]
    assert s.events.tolist() == [8, 2, 3, 2, 4, 1]
    assert s.converted.tolist() == [True, False, False, False, True, False]
    assert s.revenue.tolist() == [120.0, 0.0, 0.0, 0.0, 80.0, 0.0]
    assert s.channel.tolist()[:3] == ["organic-search", "organic-search", "app"]


def test_session_gap_is_configurable(events: ibis.Table) -> None:
    # With a 20-minute gap B's searches at 12:01 and 12:30 fall into two sessions.
    s = run(sessions(sessionize(events, gap_minutes=20)))
    assert sorted(s[s.person_id == "B"].events.tolist()) == [1, 2, 2]
    # With a 4-day gap A has one session.
    s = run(sessions(sessionize(events, gap_minutes=4 * 24 * 60)))
    assert s[s.person_id == "A"].events.tolist() == [10]


def test_episodes_split_on_new_search_type_and_gap(events: ibis.Table) -> None:
    ep = run(episodes(sessionize(events))).sort_values(["session_id", "episode_no"])
    assert ep.episode_id.tolist() == ["A:1#1", "A:1#2", "A:2#1", "B:1#1", "B:1#2"]
    assert ep.moment.tolist() == ["know", "buy", "do", "go", "go"]
    assert ep.interactions.tolist() == [2, 3, 2, 2, 1]
    assert ep.trigger_query.tolist() == [
        "how to choose a running shoe", "buy trail running shoes", "how to clean trail shoes",
        "shoe store near me", "shoe store open now"]
    assert ep.outcome.tolist() == ["next_moment", "converted", "abandoned", "next_moment", "abandoned"]
    assert ep.next_moment.tolist()[:2] == ["buy", None] or ep.next_moment.isna().tolist()[1]
    assert ep.revenue.tolist() == [0.0, 120.0, 0.0, 0.0, 0.0]
    assert ep.product_views.tolist() == [0, 2, 0, 0, 0]
    assert ep.cart_events.tolist() == [0, 1, 0, 0, 0]
    assert ep.purchased_before.tolist() == [False, False, True, False, False]
    assert ep.confidence.tolist()[0] == pytest.approx(0.85)
    assert ep.duration_s.tolist() == [60, 180, 120, 60, 0]


def test_dominant_type_wins_inside_a_run(make_events) -> None:
    # A buy search, then a how-to page (do) and two buy product views: one buy episode.
    rows = [
        dict(person_id="P", ts="2026-01-01 10:00", query="best trail shoes price", moment="buy", confidence=0.6),
        dict(person_id="P", ts="2026-01-01 10:01", page_path="/how-to/lace", moment="do", confidence=0.9),
        dict(person_id="P", ts="2026-01-01 10:02", event="Product Viewed", moment="buy", confidence=0.5),
    ]
    ep = run(episodes(sessionize(ibis.memtable(make_events(rows)))))
    assert len(ep) == 1 and ep.moment[0] == "buy" and ep.interactions[0] == 3


def test_stages_follow_the_default_rules(events: ibis.Table) -> None:
    s = sessionize(events)
    ep = run(assign_stages(episodes(s))).sort_values(["session_id", "episode_no"])
    assert ep.stage.tolist() == ["awareness", "decision", "post-purchase", "awareness", "awareness"]
    sf = run(assign_stages(session_features(s, episodes(s)))).sort_values("session_id")
    assert sf.stage.tolist() == ["decision", "post-purchase", "awareness", "consideration", "decision", "consideration"]


def test_stage_rules_are_configurable(events: ibis.Table) -> None:
    rules = [{"stage": "local", "when": [{"moment_in": ["go"]}]}, {"stage": "other", "when": [{}]}]
    ep = run(assign_stages(episodes(sessionize(events)), rules))
    assert sorted(ep.stage.tolist()) == ["local", "local", "other", "other", "other"]


def test_bad_stage_rule_names_the_field(events: ibis.Table) -> None:
    from micromoments.errors import ConfigError

    with pytest.raises(ConfigError, match=r"stage_rules\[0\]\.when\[0\].*unknown stage condition 'has_kart'"):
        assign_stages(episodes(sessionize(events)), [{"stage": "x", "when": [{"has_kart": True}]}])


def test_journey_map_volumes_conversion_and_time_to_next_stage(events: ibis.Table) -> None:
    ep = assign_stages(episodes(sessionize(events)))
    jm = run(journey_map(ep)).set_index(["stage", "moment"])
    assert jm.loc[("awareness", "go"), "episodes"] == 2
    assert jm.loc[("awareness", "go"), "people"] == 1
    assert jm.loc[("decision", "buy"), "conversion_rate"] == 1.0
    assert jm.loc[("awareness", "know"), "conversion_rate"] == 0.0
    # A's know episode at 09:00 -> decision at 09:05: 300 s. B's go episodes never move on.
    assert jm.loc[("awareness", "know"), "median_s_to_next_stage"] == 300
    assert pd.isna(jm.loc[("awareness", "go"), "median_s_to_next_stage"])
    # A's decision at 09:05 -> post-purchase on 03-05 18:00.
    assert jm.loc[("decision", "buy"), "median_s_to_next_stage"] == (3 * 86400 + 9 * 3600 - 300)


def test_paths_and_sankey_links(events: ibis.Table) -> None:
    ep = assign_stages(episodes(sessionize(events)))
    paths = run(top_paths(ep)).set_index("path")
    assert paths.loc["know → buy → do", "people"] == 1
    assert paths.loc["go", "people"] == 1  # B's two go episodes collapse into one step
    assert paths.loc["know → buy → do", "converted"] == 1
    links = run(path_links(ep)).sort_values(["step", "source", "target"])
    assert links[["source", "target", "people"]].values.tolist() == [
        ["1. go", "no purchase", 1], ["1. know", "2. buy", 1], ["2. buy", "3. do", 1], ["3. do", "purchase", 1]]
    stage_links = run(path_links(ep, by="stage"))
    assert set(stage_links.source) == {"1. awareness", "2. decision", "3. post-purchase"}
