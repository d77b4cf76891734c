"""The numpy journey kernel (DuckDB's default `build_journey`) against the Ibis window path.

Both paths must give the same tables: every column of the staged episodes, the staged sessions
and the per-event session keys, the same DuckDB column types, and so the same journey map, paths
and Sankey links. Checked on hand-built edge cases, a random shop, and (slow) the demo generator.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from conftest import classified_demo_store, events_frame
from micromoments.journey import fastpath, journey_map, kernel_input, path_links, pipeline, top_paths
from micromoments.journey.pipeline import JourneySettings, build_journey
from micromoments.journey.sequence import round_half_away, sequence_kernel
from test_journey import scenario_rows
from test_report import journey_events

pytestmark = pytest.mark.filterwarnings("ignore:The .future.infer_string. option")

EVENT_KEYS = ("message_id", "secs", "event_no", "session_no", "session_id")


def _tables(con, events: ibis.Table, method: str, settings: JourneySettings | None = None) -> dict:
    j = build_journey(events, settings or JourneySettings(), con=con, method=method)
    return {
        "episodes": con.execute(j.episodes), "sessions": con.execute(j.sessions),
        "sessionized": con.execute(j.sessionized.select(*EVENT_KEYS)),
        "map": con.execute(journey_map(j.episodes)), "paths": con.execute(top_paths(j.episodes)),
        "stage_paths": con.execute(top_paths(j.episodes, by="stage")),
        "links": con.execute(path_links(j.episodes)),
        "types": {t: con.raw_sql(f"DESCRIBE _mm_{t}").fetchall() for t in ("episodes", "sessions")},
        "schemas": [j.episodes.schema(), j.sessions.schema(), j.sessionized.schema()],
    }


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in frame.columns if c != "confidence"]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def assert_same_journey(con, events: ibis.Table, settings: JourneySettings | None = None) -> dict:
    ref, new = _tables(con, events, "ibis", settings), _tables(con, events, "kernel", settings)
    assert new["types"] == ref["types"]
    assert new["schemas"] == ref["schemas"]
    for name in ("episodes", "sessions", "sessionized", "map", "paths", "stage_paths", "links"):
        a, b = _sorted(ref[name]), _sorted(new[name][ref[name].columns])
        assert len(a) > 0, f"{name} is empty: the comparison would prove nothing"
        # Mean confidences are rounded to 4 places; a parallel float sum may flip the last place.
        exact = [c for c in a.columns if c != "confidence"]
        pd.testing.assert_frame_equal(a[exact], b[exact], check_exact=True, obj=name)
        if "confidence" in a.columns:
            assert np.abs(a.confidence - b.confidence).max() <= 1.01e-4
    return ref


def test_kernel_by_hand() -> None:
    # Person 1: two events 60 s apart (one session, one episode), a third 4000 s later (session 2,
    # no intent). Person 2: one event.
    k = sequence_kernel(
        new_person=np.array([1, 0, 0, 1], bool), secs=np.array([0, 60, 4000, 10]),
        intent=np.array([1, 1, 0, 1], bool), moment=np.array([0, 0, -1, 1]),
        has_query=np.array([1, 0, 0, 1], bool), conf=np.array([0.9, 0.8, 1.0, 0.7]),
        is_conv=np.array([0, 0, 1, 0], bool), is_cart=np.zeros(4, bool), is_view=np.array([0, 1, 0, 0], bool),
        is_support=np.zeros(4, bool), revenue=np.array([np.nan, np.nan, 50.0, np.nan]), gap_s=1800, episode_gap_s=600)
    assert k["session_no"].tolist() == [1, 1, 2, 1]
    assert k["ep_first"].tolist() == [0, 3] and k["ep_last"].tolist() == [1, 3]
    assert k["ep_confidence"].tolist() == [0.85, 0.7]
    assert k["ep_product_views"].tolist() == [1, 0]
    assert k["ep_conversions"].tolist() == [0, 0]  # the purchase is in the next session
    assert k["s_revenue"].tolist() == [0.0, 50.0, 0.0] and k["s_events"].tolist() == [2, 1, 1]
    assert k["s_moment"].tolist() == [0, -1, 1] and k["s_episodes"].tolist() == [1, 0, 1]
    assert k["ep_has_buy"].tolist() == [True, False] and k["ep_first_buy"][0] == 4000


def test_round_like_duckdb() -> None:
    x = np.array([0.12345, 0.00005, 0.7, 1 / 3, 2.5e-5, 0.99995])
    con = ibis.duckdb.connect()
    want = [con.raw_sql(f"SELECT round({float(v)!r}::DOUBLE, 4)").fetchone()[0] for v in x]
    assert round_half_away(x, 4).tolist() == want


def test_scenario_matches_the_ibis_path() -> None:
    con = ibis.duckdb.connect()
    frame = events_frame(scenario_rows())
    # Edge cases: a blank query, an `other` moment, a tie on the second, no person / no time.
    extra = events_frame([
        dict(person_id="D", ts="2026-03-04 10:00:00", event="Products Searched", query="   ", moment="buy", confidence=0.5),
        dict(person_id="D", ts="2026-03-04 10:00:00", event="Product Viewed", page_path="/p/1", moment="know"),
        dict(person_id="D", ts="2026-03-04 10:00:00", event="Products Searched", query="how to", moment="do", confidence=0.5),
        dict(person_id="D", ts="2026-03-04 10:01:00", event="Order Completed", revenue=10.0, moment="other"),
        dict(person_id=None, ts="2026-03-04 10:01:00", event="Product Viewed"),
        dict(person_id="D", ts=None, event="Product Viewed"),
    ])
    extra["message_id"] = [f"x{i}" for i in range(len(extra))]
    con.create_table("ev", pd.concat([frame, extra], ignore_index=True))
    ref = assert_same_journey(con, con.table("ev"))
    assert sorted(ref["episodes"].episode_id) == ["A:1#1", "A:1#2", "A:2#1", "B:1#1", "B:1#2", "D:1#1", "D:1#2"]


def random_shop(people: int = 60, seed: int = 3) -> pd.DataFrame:
    """Random people with same-second ties, gaps around both thresholds and every event kind."""
    rng = random.Random(seed)
    kinds = [("Products Searched", None), ("Product Viewed", "/p/1"), ("Product Added", "/cart"),
             ("Order Completed", "/checkout"), (None, "/help/x"), (None, "/"), ("Order Tracked", "/track-order")]
    rows = []
    for p in range(people):
        t = dt.datetime(2026, 3, 1) + dt.timedelta(seconds=rng.randint(0, 86400))
        for _ in range(rng.randint(1, 40)):
            t += dt.timedelta(seconds=rng.choice([0, 0, 5, 60, 599, 600, 601, 1799, 1800, 1801, 7200, 90000]))
            event, path = rng.choice(kinds)
            moment = rng.choice(["know", "do", "go", "buy", "other", None])
            rows.append(dict(person_id=f"p{p % 45}", ts=t, event=event, page_path=path,
                             channel=rng.choice(["app", "email", None]),
                             query=rng.choice(["how to x", "near me", " ", None]) if event == "Products Searched" else None,
                             moment=moment, confidence=rng.choice([0.5, 0.75, 0.9, None]) if moment else None,
                             revenue=float(rng.randint(1, 99)) if event == "Order Completed" else None))
    return events_frame(rows)


def test_random_shop_and_small_batches_match(monkeypatch) -> None:
    con = ibis.duckdb.connect()
    con.create_table("ev", random_shop())
    frame, em = journey_events(people=150)
    shop = frame.merge(em[["message_id", "moment", "go_type", "confidence"]], on="message_id", how="left")
    con.create_table("shop", shop.astype({"moment": "string", "go_type": "string", "confidence": "float64"}))
    # Tiny batches: people span batch boundaries and must be carried to the next chunk.
    monkeypatch.setattr(fastpath, "BATCH_ROWS", 7)
    monkeypatch.setattr(pipeline, "WRITE_ROWS", 50)  # results written back in several inserts
    assert_same_journey(con, con.table("ev"))
    # People in parts of ~120 events, each read ahead on a cursor while the kernel runs on the one before.
    monkeypatch.setattr(fastpath, "PART_ROWS", 120)
    reads = []
    monkeypatch.setattr(kernel_input.HashedRead, "read", _recording(kernel_input.HashedRead.read, reads))
    assert_same_journey(con, con.table("ev"))
    events = con.table("ev").count().execute()
    k = min(-(-events // 120), 8)  # parts of ~120 events, 8 at the most
    assert k >= 3 and sorted(r[0] for r in reads) == list(range(k)) and {r[1] for r in reads} == {k}
    assert sum(r[2] for r in reads) == events  # every event, once
    assert con.con not in [duck for *_, duck in reads]  # read on a second connection
    assert_same_journey(con, con.table("ev"), JourneySettings(session_gap_minutes=5, episode_gap_minutes=1))
    monkeypatch.setattr(fastpath, "BATCH_ROWS", 100)
    assert_same_journey(con, con.table("shop"))


def _recording(read, reads: list):
    def wrapper(self, duck, part=0, parts=1):
        inp = read(self, duck, part, parts)
        reads.append((part, parts, inp.n, duck))
        return inp
    return wrapper


def test_memtable_input_reads_on_the_main_connection(monkeypatch) -> None:
    # An Ibis memtable is visible to its own connection only: its parts cannot be read ahead on a
    # cursor, so they are read one after another on the main connection.
    con = ibis.duckdb.connect()
    monkeypatch.setattr(fastpath, "PART_ROWS", 10)
    reads = []
    monkeypatch.setattr(kernel_input.HashedRead, "read", _recording(kernel_input.HashedRead.read, reads))
    assert_same_journey(con, ibis.memtable(events_frame(scenario_rows())))
    assert len(reads) > 1 and all(duck is con.con for *_, duck in reads)


def test_no_events_gives_empty_tables() -> None:
    con = ibis.duckdb.connect()
    con.create_table("ev", events_frame(scenario_rows()).iloc[:0])
    j = build_journey(con.table("ev"), con=con, method="kernel")
    assert con.execute(j.episodes).empty and con.execute(j.sessions).empty


@pytest.mark.slow
def test_demo_store_matches_the_ibis_path(tmp_path: Path) -> None:
    from micromoments.journey.pipeline import load_events

    store, _ = classified_demo_store(tmp_path, seed=5)
    ref = assert_same_journey(store.ibis, load_events(store)[0], JourneySettings(memory_limit="2GB"))
    assert len(ref["episodes"]) > 500 and ref["episodes"].stage.nunique() == 4


@pytest.mark.parametrize("span", [10**3, 2**60])  # the second span forces a coarser time key
def test_person_time_order_is_sqls_order(span: int) -> None:
    # (person, t, message_id) with message_id NULLs last, as `ORDER BY person_id, ts, message_id`;
    # many ties on (person, t), ids shuffled against the read order.
    rng = np.random.default_rng(7)
    n = 5_000
    person = rng.integers(0, 300, n)
    t = rng.integers(0, span, n) // max(1, span // 50) * max(1, span // 50)  # few distinct times: ties
    ids = [None if rng.random() < 0.05 else f"m{rng.integers(0, 10**6):07d}" for _ in range(n)]
    got = fastpath.person_time_order(person, t, pa.array(ids, pa.string())).tolist()
    want = sorted(range(n), key=lambda i: (person[i], t[i], ids[i] is None, ids[i] or ""))
    key = lambda i: (person[i], t[i], ids[i])
    assert [key(i) for i in got] == [key(i) for i in want]
    assert sorted(got) == list(range(n))


def test_hashed_read_matches_the_text_read_and_falls_back_on_collisions(monkeypatch) -> None:
    # Microsecond timestamps with halves (DuckDB casts EPOCH's DOUBLE with halves to even) and
    # times before 1970: the hashed read derives `secs` in numpy and must agree with the SQL.
    con = ibis.duckdb.connect()
    frame = random_shop(people=40, seed=11)
    shift = pd.to_timedelta(np.random.default_rng(2).choice([0, 500_000, 1_500_000, 999_999], len(frame)), unit="us")
    frame["ts"] = (frame.ts + shift).astype("datetime64[us]")
    frame.loc[frame.index % 5 == 0, "ts"] -= pd.Timedelta(days=365 * 60)  # some in the 1960s
    con.create_table("ev", frame)
    con.raw_sql("ALTER TABLE ev ALTER ts TYPE TIMESTAMP")
    narrow = fastpath.kernel_inputs(con.table("ev"))
    hashed = fastpath.read_hashed(con, narrow, 1000)
    text = fastpath.read_inputs(con, narrow, 1000)
    assert hashed is not None and hashed.ts_type == pa.timestamp("us")
    assert (hashed.columns["secs"] == text.columns["secs"]).all()
    assert len(set(hashed.columns["secs"] % 2)) == 2 and (hashed.columns["secs"] < 0).any()
    for c in ("has_query", "intent", "confidence", "revenue"):
        np.testing.assert_array_equal(hashed.columns[c], text.columns[c])
    for c in ("person_id", "channel", "moment"):
        assert hashed.coded[c].take(np.arange(hashed.n)).equals(text.coded[c].take(np.arange(text.n)))
    pairs = lambda inp: [inp.pairs[1][k] for k in inp.pairs[0]]
    assert pairs(hashed) == pairs(text)
    assert_same_journey(con, con.table("ev"))
    # Hashes that collide: the read says so and the build reads the text instead, same tables.
    monkeypatch.setattr(kernel_input, "HASH_SQL", "hash({}) % 3")
    assert fastpath.read_hashed(con, narrow, 1000) is None
    assert_same_journey(con, con.table("ev"))
