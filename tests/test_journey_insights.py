"""Peak times, touchpoints, FAQ themes and keyword research on hand-built data."""

from __future__ import annotations

import random

import ibis
import pandas as pd
import pytest

from conftest import events_frame
from micromoments.errors import InputError
from micromoments.journey import sessionize
from micromoments.journey.faq import faq_themes, query_stats
from micromoments.journey.heatmap import heatmap, heatmap_for, utc_offsets
from micromoments.journey.keywords import keyword_research, read_keywords
from micromoments.journey.touchpoints import flag_touchpoints, touchpoints
from test_journey import scenario_rows

pytestmark = pytest.mark.filterwarnings("ignore:The .future.infer_string. option")


def run(expr: ibis.Table) -> pd.DataFrame:
    return ibis.duckdb.connect().execute(expr)


def test_offsets_follow_daylight_saving() -> None:
    ny = utc_offsets(["America/New_York", "Nowhere/Atlantis", None], 2026, 2026)
    assert ny.offset_s.tolist() == [-5 * 3600, -4 * 3600, -5 * 3600]
    # US clocks moved at 2026-03-08 07:00 UTC (02:00 EST).
    assert pd.Timestamp(ny.valid_to[0], unit="s") == pd.Timestamp("2026-03-08 07:00")


def test_heatmap_uses_local_time() -> None:
    rows = scenario_rows() + [
        dict(person_id="D", ts="2026-07-01 12:00", timezone="Europe/Paris", moment="go", confidence=1.0),
        dict(person_id="D", ts="2026-07-01 12:30", timezone="Mars/Olympus", moment="go", confidence=1.0),
    ]
    frame = events_frame(rows)
    got = run(heatmap_for(ibis.memtable(frame)))
    # The expected cells, computed independently with pandas time zones.
    def local(row: pd.Series) -> pd.Timestamp:
        ts = pd.Timestamp(row.ts).tz_localize("UTC")
        try:
            return ts.tz_convert(row.timezone) if pd.notna(row.timezone) else ts
        except Exception:
            return ts
    loc = frame.apply(local, axis=1)
    expected = pd.DataFrame({"moment": frame.moment.fillna("(none)"), "weekday": [t.weekday() for t in loc],
                             "hour": [t.hour for t in loc]}).value_counts().sort_index()
    got_counts = got.set_index(["moment", "weekday", "hour"]).events.sort_index()
    assert got_counts.to_dict() == expected.to_dict()
    assert got_counts[("go", 2, 14)] == 1  # Paris summer time: 12:00 UTC -> 14:00, a Wednesday
    assert got_counts[("know", 0, 4)] == 2  # New York winter time: 09:00, 09:01 UTC -> 04:0x Monday
    only = run(heatmap(ibis.memtable(frame), utc_offsets(["Europe/Paris"], 2026, 2026), moments_only=True))
    assert "(none)" not in set(only.moment)


def touchpoint_rows(seed: int = 7) -> list[dict]:
    """300 sessions over 3 pages; /p/good converts 60%, /p/bad 5% and is usually the last page."""
    rng = random.Random(seed)
    rows = []
    for i in range(300):
        p = f"P{i}"
        page = ["/p/good", "/p/bad", "/p/ok"][i % 3]
        rate = {"/p/good": 0.6, "/p/bad": 0.05, "/p/ok": 0.3}[page]
        rows.append(dict(person_id=p, ts="2026-04-01 10:00", page_path="/home", type="page"))
        rows.append(dict(person_id=p, ts="2026-04-01 10:01", page_path=page, type="page"))
        if page != "/p/bad":
            rows.append(dict(person_id=p, ts="2026-04-01 10:02", page_path="/home", type="page"))
        if rng.random() < rate:
            rows.append(dict(person_id=p, ts="2026-04-01 10:05", event="Order Completed", page_path="/thanks", revenue=10.0))
    return rows


def test_touchpoints_flag_significant_outliers() -> None:
    events = sessionize(ibis.memtable(events_frame(touchpoint_rows())))
    tp = run(touchpoints(events, "page")).set_index("touchpoint")
    assert tp.loc["/p/good", "sessions"] == 100
    assert tp.loc["/home", "views"] == 500
    assert tp.loc["/p/bad", "exit_rate"] == 1.0
    assert "/thanks" not in tp.index  # conversion events are not touchpoints
    flagged = flag_touchpoints(tp.reset_index()).set_index("touchpoint")
    assert flagged.loc["/p/good", "flag"] == "peak"
    assert flagged.loc["/p/bad", "flag"] == "falters"
    assert flagged.loc["/p/ok", "flag"] == ""
    # Too few sessions: nothing is tested, nothing flagged.
    small = flag_touchpoints(tp.reset_index(), min_sessions=1000)
    assert (small.flag == "").all()


def test_faq_groups_questions_and_finds_content_gaps() -> None:
    rng = random.Random(3)
    questions = {
        "returns": (["how do i return my shoes", "how to return shoes bought online", "can i return worn shoes"], 0.0),
        "sizing": (["what size running shoe should i get", "do running shoes run small size", "how should running shoes fit size"], 0.4),
    }
    rows = []
    for theme, (qs, rate) in questions.items():
        for i in range(60):
            p = f"{theme}{i}"
            rows.append(dict(person_id=p, ts="2026-05-01 10:00", query=qs[i % 3], event="Products Searched"))
            if rng.random() < rate:
                rows.append(dict(person_id=p, ts="2026-05-01 10:10", event="Order Completed"))
    for i in range(60):  # short head queries that convert well: not FAQ themes
        rows.append(dict(person_id=f"h{i}", ts="2026-05-01 11:00", query="trail shoes", event="Products Searched"))
        rows.append(dict(person_id=f"h{i}", ts="2026-05-01 11:05", event="Order Completed"))
    stats = run(query_stats(sessionize(ibis.memtable(events_frame(rows)))))
    assert stats.set_index("query").loc["trail shoes", "converted_sessions"] == 60
    themes = faq_themes(stats)
    assert len(themes) == 2
    by_example = {row.example: row for row in themes.itertuples()}
    returns = next(r for e, r in by_example.items() if "return" in e)
    sizing = next(r for e, r in by_example.items() if "size" in e)
    assert returns.searches == 60 and returns.queries == 3 and returns.content_gap
    assert not sizing.content_gap
    assert themes.share.sum() == pytest.approx(120 / 180)


def test_keyword_research_flags_and_topics(tmp_path) -> None:
    path = tmp_path / "keywords.csv"
    path.write_text(
        "keyword,volume\nrunning shoes,12000\nhow to clean running shoes,900\n"
        "how to wash running shoes in machine,400\nshoe store near me,5000\n"
        "ok google where can i buy trail shoes near me,50\nbest trail running shoes 2026,800\n"
        "trail running shoes waterproof,700\nclean white sneakers,300\n"
    )
    out = keyword_research(read_keywords(path), volume_column="volume")
    row = out.set_index("keyword")
    assert row.loc["how to clean running shoes", "question"]
    assert not row.loc["running shoes", "long_tail"]
    assert row.loc["ok google where can i buy trail shoes near me", "voice"]
    assert row.loc["shoe store near me", "voice"] and not row.loc["running shoes", "voice"]
    assert row.loc["running shoes", "volume"] == 12000
    assert set(out.intent_source) <= {"micromoments.classify", "unavailable"}


def test_keyword_topics_recover_distinct_themes() -> None:
    from sklearn.metrics import adjusted_rand_score

    themes = {
        "returns": ["return policy shoes", "how to return shoes", "shoe return label", "refund return shoes online",
                    "return window days shoes"],
        "sizing": ["shoe size chart", "what size trail shoe", "size guide wide feet", "half size up or down",
                   "size conversion eu us"],
        "stores": ["shoe store near me", "store opening hours", "store open sunday near me", "closest store directions",
                   "store locator map"],
    }
    kws = [k for ks in themes.values() for k in ks]
    truth = [i for i, ks in enumerate(themes.values()) for _ in ks]
    out = keyword_research(pd.DataFrame({"keyword": kws}))
    assert adjusted_rand_score(truth, out.topic) > 0.6
    assert out.topic.nunique() >= 3


def test_keyword_errors_name_the_row(tmp_path) -> None:
    path = tmp_path / "k.csv"
    path.write_text("keyword,volume\nshoes,10\nboots,lots\n")
    with pytest.raises(InputError, match=r"k.csv:3.*volume: expected a number"):
        keyword_research(read_keywords(path), volume_column="volume", where=str(path))
    with pytest.raises(InputError, match="no column 'term'"):
        keyword_research(read_keywords(path), keyword_column="term")
