"""Readers, idempotent re-ingest, identity stitching and quarantine, on small real-shaped files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from micromoments.errors import InputError
from micromoments.store import Store
from micromoments.store.ingest import ingest_file

FIXTURES = Path(__file__).parent / "fixtures" / "sources"


@pytest.fixture
def store() -> Store:
    return Store(":memory:")


def rows(store: Store, sql: str) -> list[tuple]:
    return store.duck.execute(sql).fetchall()


def one(store: Store, message_id: str) -> dict:
    cur = store.duck.execute("SELECT * FROM events WHERE message_id = ?", [message_id])
    names = [d[0] for d in cur.description]
    row = cur.fetchone()
    assert row is not None, f"{message_id} not loaded"
    return dict(zip(names, row))


def test_segment_jsonl_maps_every_field(store: Store) -> None:
    result = ingest_file(store, FIXTURES / "segment.jsonl")
    assert result.format == "segment"
    assert (result.loaded, result.duplicates, result.quarantined) == (6, 0, 0)

    page = one(store, "seg-1")
    assert page["type"] == "page"
    assert page["query"] == "cordless drill deals"  # from the URL's ?q=, '+' and %20 decoded
    assert page["channel"] == "organic-search"  # google referrer, no campaign
    assert page["device_type"] == "desktop"  # from the user agent
    assert page["timezone"] == "Europe/London"

    search = one(store, "seg-2")
    assert search["query"] == "garden centre near me"
    assert search["channel"] == "paid-search"
    assert (search["lat"], search["lon"], search["city"]) == (51.5, -0.12, "London")

    order = one(store, "seg-3")
    assert order["revenue"] == 42.5
    assert json.loads(order["properties"])["order_id"] == "o-1"

    # page.search in context is a query too
    assert one(store, "seg-6")["query"] == "how to lay a patio"
    assert one(store, "seg-6")["page_title"] == "How to lay a patio | Greenhaven"


def test_clock_skew_is_corrected_as_segment_does(store: Store) -> None:
    ingest_file(store, FIXTURES / "segment.jsonl")
    screen = one(store, "seg-4")
    # timestamp 12:00:00, sentAt 12:00:10 (device clock), receivedAt 12:05:00 (server clock)
    # -> receivedAt - (sentAt - timestamp) = 12:04:50
    assert screen["ts"].isoformat() == "2026-09-01T12:04:50"
    assert screen["channel"] == "app"
    assert screen["device_type"] == "mobile"


def test_segment_batch_envelope(store: Store) -> None:
    result = ingest_file(store, FIXTURES / "segment_batch.json")
    assert result.loaded == 2
    added = one(store, "b-2")
    assert added["event"] == "Product Added"
    assert added["sent_at"].isoformat() == "2026-09-03T10:01:30"  # the envelope's sentAt


def test_posthog_export(store: Store) -> None:
    result = ingest_file(store, FIXTURES / "posthog.jsonl")
    assert result.format == "posthog"
    assert result.loaded == 3
    pv = one(store, "ph-1")
    assert (pv["type"], pv["query"], pv["device_type"], pv["city"]) == ("page", "tulip bulbs", "mobile", "Leeds")
    search = one(store, "ph-3")
    assert search["query"] == "when to plant tulips"
    assert search["channel"] == "email"
    # $identify linked the anonymous device to the user: one person
    assert {r[0] for r in rows(store, "SELECT DISTINCT person_id FROM events")} == {"ph-user-1"}


def test_ga4_bigquery_rows(store: Store) -> None:
    result = ingest_file(store, FIXTURES / "ga4.jsonl")
    assert result.format == "ga4"
    assert result.loaded == 3
    got = rows(store, "SELECT event, type, query, page_title, revenue, channel, device_type, ts FROM events ORDER BY ts")
    assert got[0][1] == "page" and got[0][3] == "Greenhaven Leeds | Opening hours"
    assert got[0][5] == "organic-search"
    assert got[1][2] == "compost 50l"
    assert got[2][0] == "purchase" and got[2][4] == 19.5
    assert got[0][7].isoformat() == "2026-09-05T10:00:00"  # microseconds since the epoch
    assert {r[0] for r in rows(store, "SELECT DISTINCT person_id FROM events")} == {"ga-user-1"}


def test_csv_with_column_mapping_rees46_shape(store: Store) -> None:
    result = ingest_file(
        store, FIXTURES / "rees46.csv",
        mapping="timestamp=event_time,event=event_type,user_id=user_id",
    )
    # 7 data rows: 4 good, one bad time, one with an extra column, one without a user
    assert (result.loaded, result.quarantined) == (4, 3)
    assert result.read == 7
    purchase = rows(store, "SELECT properties FROM events WHERE event = 'purchase'")
    props = json.loads(purchase[0][0])
    assert props["brand"] == "lenovo" and props["user_session"].startswith("7c90fc70")
    quarantined = rows(store, "SELECT line, field, reason FROM quarantine ORDER BY line")
    assert [q[0] for q in quarantined] == [6, 7, 8]  # file lines (the header is line 1)
    assert quarantined[0][1] == "timestamp" and "not-a-time" in quarantined[0][2]
    assert "columns" in quarantined[1][2]
    assert quarantined[2][1] == "userId"


def test_parquet_and_gzip(store: Store, tmp_path: Path) -> None:
    table = pacsv.read_csv(FIXTURES / "rees46.csv", parse_options=pacsv.ParseOptions(invalid_row_handler=lambda r: "skip"))
    pq.write_table(table, tmp_path / "rees.parquet")
    result = ingest_file(store, tmp_path / "rees.parquet", mapping={"timestamp": "event_time", "event": "event_type"})
    assert (result.loaded, result.quarantined) == (4, 2)  # bad time + missing user

    gz = tmp_path / "segment.jsonl.gz"
    with gzip.open(gz, "wb") as f:
        f.write((FIXTURES / "segment.jsonl").read_bytes())
    assert ingest_file(store, gz).loaded == 6


def test_reingest_is_idempotent(store: Store, tmp_path: Path) -> None:
    first = ingest_file(store, FIXTURES / "segment.jsonl")
    again = ingest_file(store, FIXTURES / "segment.jsonl")
    assert first.loaded == 6
    assert (again.loaded, again.duplicates) == (0, 6)
    assert store.count("events") == 6
    # Events without a messageId are keyed by their content and occurrence: three identical lines
    # are three events (real repeats), and loading the file again adds none.
    no_ids = tmp_path / "noid.jsonl"
    no_ids.write_text('{"type":"track","event":"A","userId":"u","timestamp":"2026-09-01T00:00:00Z"}\n' * 3)
    result = ingest_file(store, no_ids)
    assert (result.loaded, result.duplicates) == (3, 0)
    result = ingest_file(store, no_ids)
    assert (result.loaded, result.duplicates) == (0, 3)


def test_identity_stitching_web_and_app(store: Store) -> None:
    ingest_file(store, FIXTURES / "segment.jsonl")
    # anon-web-1 (web) bought as user-7; anon-app-1 (app) identified as user-7
    people = dict(rows(store, "SELECT message_id, person_id FROM events"))
    assert people["seg-1"] == people["seg-2"] == people["seg-4"] == people["seg-5"] == "user-7"
    assert people["seg-6"] == "anon-web-2"
    channels = {r[0] for r in rows(store, "SELECT channel FROM events WHERE person_id = 'user-7'")}
    assert {"app", "paid-search"} <= channels
    ids = dict(rows(store, "SELECT id, person_id FROM identities"))
    assert ids["anon-web-1"] == ids["anon-app-1"] == "user-7"


def test_stitching_applies_to_events_loaded_before_the_link(store: Store, tmp_path: Path) -> None:
    before = tmp_path / "a.jsonl"
    before.write_text('{"type":"page","messageId":"x1","anonymousId":"anon-z","timestamp":"2026-09-01T00:00:00Z"}\n')
    after = tmp_path / "b.jsonl"
    after.write_text('{"type":"alias","messageId":"x2","previousId":"anon-z","userId":"u-z","timestamp":"2026-09-02T00:00:00Z"}\n')
    ingest_file(store, before)
    assert one(store, "x1")["person_id"] == "anon-z"
    result = ingest_file(store, after)
    assert result.restitched >= 1
    assert one(store, "x1")["person_id"] == "u-z"


def test_quarantine_counts_add_up_to_lines(store: Store, tmp_path: Path) -> None:
    good = (FIXTURES / "segment.jsonl").read_text().splitlines()
    bad = [
        "{not json",
        "[1, 2, 3]",
        '{"type":"track","event":"A","anonymousId":"a"}',  # no timestamp
        '{"type":"track","event":"A","anonymousId":"a","timestamp":"yesterday"}',
        '{"type":"track","event":"A","anonymousId":"a","timestamp":"2999-01-01T00:00:00Z"}',
        '{"type":"track","event":"A","anonymousId":{"id":1},"timestamp":"2026-09-01T00:00:00Z"}',
        '{"type":"track","event":"A","anonymousId":"a","timestamp":"2026-09-01T00:00:00Z","properties":"oops"}',
        '{"type":"launch","anonymousId":"a","timestamp":"2026-09-01T00:00:00Z"}',
        '{"type":"track","event":"A","timestamp":"2026-09-01T00:00:00Z"}',  # nobody
    ]
    mixed = [good[0], bad[0], good[1], bad[1], bad[2], good[2], bad[3], bad[4], good[3], bad[5], bad[6], bad[7], bad[8], good[0]]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(("\n".join(mixed) + "\n").encode() + b'{"type":"track","anonymousId":"\xff\xfe"}\n')
    result = ingest_file(store, path)
    n_lines = len(mixed) + 1
    assert result.loaded + result.duplicates + result.quarantined == n_lines == result.read
    assert (result.loaded, result.duplicates, result.quarantined) == (4, 1, 10)
    reasons = dict(rows(store, "SELECT line, reason FROM quarantine"))
    assert reasons[2] == "not valid JSON"
    assert reasons[4] == "expected a JSON object, got array"
    assert reasons[5] == "missing timestamp"
    assert "not ISO-8601" in reasons[7] and "yesterday" in reasons[7]
    assert "in the future" in reasons[8]
    assert "anonymousId: expected a string" in reasons[10]
    assert "properties: expected an object" in reasons[11]
    assert "unknown type launch" in reasons[12]
    assert "neither anonymousId nor userId" in reasons[13]
    assert reasons[15] == "not valid UTF-8"
    raw = dict(rows(store, "SELECT line, raw FROM quarantine"))
    assert raw[2] == "{not json"  # the raw text is kept, nothing is lost


@pytest.mark.parametrize("content, message", [
    (None, "file not found"),
    (b"\x1f\x8b\x08\x00garbage", "cannot read"),
])
def test_unreadable_file_is_one_clear_error(store: Store, tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "events.jsonl.gz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as err:
        ingest_file(store, path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_csv_mapping_errors_name_the_column(store: Store) -> None:
    with pytest.raises(InputError, match="no column 'when'"):
        ingest_file(store, FIXTURES / "rees46.csv", mapping="timestamp=when")
    with pytest.raises(InputError, match="unknown field 'stamp'"):
        ingest_file(store, FIXTURES / "rees46.csv", mapping="stamp=event_time")
    with pytest.raises(InputError, match="no timestamp column"):
        ingest_file(store, FIXTURES / "rees46.csv", mapping="user_id=user_id")


def test_cli_ingest_reports_counts_and_fails_on_unreadable(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from micromoments.cli import app

    db = tmp_path / "s.duckdb"
    runner = CliRunner()
    ok = runner.invoke(app, ["ingest", str(FIXTURES / "segment.jsonl"), "--db", str(db)])
    assert ok.exit_code == 0, ok.output
    assert "6 loaded, 0 duplicates, 0 quarantined" in ok.output
    missing = runner.invoke(app, ["ingest", str(tmp_path / "nope.jsonl"), "--db", str(db)])
    assert missing.exit_code == 2
    assert "nope.jsonl: file not found" in missing.output
