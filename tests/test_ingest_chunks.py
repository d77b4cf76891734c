"""Ingest's fast paths keep its promises: chunk boundaries, scan slices, typed Parquet."""

from __future__ import annotations

import datetime as dt
import functools
import json
from pathlib import Path

import duckdb
import pytest

from micromoments.config import Config
from micromoments.sources.files import iter_line_chunks
from micromoments.store import Store
from micromoments.store import ingest as ingest_module
from micromoments.store.ingest import ingest_file


def _event(i: int, *, mid: str | None = None, user: str = "anon-a") -> str:
    return json.dumps({
        "type": "track", "event": "Products Searched", "messageId": mid or f"m-{i}",
        "anonymousId": user, "timestamp": f"2026-09-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "properties": {"query": f"drill {i}"}, "context": {"page": {"url": f"https://x.example/s?q=x{i}"}},
    })


@pytest.fixture
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of ~300 bytes, so a small file crosses many chunk boundaries."""
    monkeypatch.setattr(ingest_module, "iter_line_chunks", functools.partial(iter_line_chunks, block_bytes=300))


@pytest.mark.parametrize("row_group", [ingest_module.ROW_GROUP_ROWS, 3])
def test_duplicates_within_and_across_chunks_keep_the_first_line(
    tmp_path: Path, tiny_chunks: None, monkeypatch: pytest.MonkeyPatch, row_group: int,
) -> None:
    # With 3-row "row groups", rows wait in the carry between chunks: a repeat of a
    # carried id must still count as a duplicate.
    monkeypatch.setattr(ingest_module, "ROW_GROUP_ROWS", row_group)
    lines = [
        _event(1), _event(2), _event(3, mid="m-1"),  # m-1 again, maybe in the same chunk
        "", "   ", "{broken",                           # blank lines are skipped, the broken one quarantined
        _event(4), _event(5, mid="m-2"), _event(6), _event(7, mid="m-6"), _event(8, mid="m-1"),
    ]
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join(lines) + "\n")
    store = Store(":memory:")
    result = ingest_file(store, path)
    assert (result.loaded, result.duplicates, result.quarantined) == (4, 4, 1)
    assert result.read == len(lines) - 2  # the two blank lines are not events
    kept = dict(store.duck.execute("SELECT message_id, source_line FROM events").fetchall())
    assert kept == {"m-1": 1, "m-2": 2, "m-4": 7, "m-6": 9}
    assert store.duck.execute("SELECT line, raw FROM quarantine").fetchall() == [(6, "{broken")]
    again = ingest_file(store, path)
    assert (again.loaded, again.duplicates, again.quarantined) == (0, 8, 1)
    assert store.count("events") == 4
    more = tmp_path / "more.jsonl"
    more.write_text("\n".join([_event(20), _event(21), _event(22, mid="m-20"), _event(23), _event(1)]) + "\n")
    third = ingest_file(store, more)
    assert (third.loaded, third.duplicates) == (3, 2)
    assert store.count("events") == 7


def test_quarantine_keeps_the_raw_line_beyond_the_first_scan_slice(tmp_path: Path) -> None:
    n = 20_000  # more rows than one Arrow slice handed to DuckDB's threads
    lines = [_event(i) for i in range(1, n + 1)]
    lines[18_000] = '{"type":"track","anonymousId":"a","timestamp":"yesterday"}\r'
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join(lines) + "\n")
    store = Store(":memory:")
    result = ingest_file(store, path)
    assert (result.loaded, result.quarantined) == (n - 1, 1)
    line, raw, reason = store.duck.execute("SELECT line, raw, reason FROM quarantine").fetchone()
    assert line == 18_001 and raw == '{"type":"track","anonymousId":"a","timestamp":"yesterday"}'
    assert "yesterday" in reason
    assert store.duck.execute("SELECT min(source_line), max(source_line) FROM events").fetchone() == (1, n)


def test_events_without_id_hash_the_same_as_before(tmp_path: Path) -> None:
    """The id of an event without messageId is the md5 of its line without the line break."""
    text = '{"type":"track","event":"A","userId":"u","timestamp":"2026-09-01T00:00:00Z"}'
    path = tmp_path / "e.jsonl"
    path.write_bytes((text + "\r\n").encode())
    store = Store(":memory:")
    ingest_file(store, path)
    expected = duckdb.sql(f"SELECT 'h:' || md5('{text}')").fetchone()[0]
    assert store.duck.execute("SELECT message_id FROM events").fetchone()[0] == expected


def test_typed_parquet_columns_are_used_as_typed(tmp_path: Path) -> None:
    path = tmp_path / "typed.parquet"
    # DuckDB writes JSON columns as Parquet's JSON logical type, as `read_json` exports do.
    duckdb.sql(f"""COPY (
        SELECT * FROM (VALUES
          ('p-1', 'u-1', TIMESTAMPTZ '2026-09-01 12:00:00+02:00', TIMESTAMP '2026-09-01 10:00:01',
           '"cordless drill"'::JSON, 19.5::DOUBLE, '{{"a": 1}}'::JSON),
          ('p-2', 'u-2', NULL, NULL, NULL, NULL, NULL))
        AS t(messageId, userId, timestamp, sentAt, query, revenue, extra)
    ) TO '{path}' (FORMAT parquet)""")
    store = Store(":memory:")
    result = ingest_file(store, path)
    assert (result.loaded, result.quarantined) == (1, 1)
    row = store.duck.execute("SELECT ts, sent_at, query, revenue, properties FROM events").fetchone()
    assert row[0] == dt.datetime(2026, 9, 1, 10, 0)  # +02:00 to naive UTC
    assert row[1] == dt.datetime(2026, 9, 1, 10, 0, 1)
    assert row[2] == "cordless drill"  # a JSON string column, without its quotes
    assert row[3] == 19.5
    assert json.loads(row[4]) == {"extra": {"a": 1}}
    line, reason, raw = store.duck.execute("SELECT line, reason, raw FROM quarantine").fetchone()
    assert line == 2 and reason == "missing timestamp"
    assert json.loads(raw)["messageId"] == "p-2"  # the row's text, rebuilt for the quarantine


def test_ingest_restores_the_connection_settings(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text(_event(1) + "\n")
    store = Store(str(tmp_path / "s.duckdb"))
    con = store.duck
    con.execute("SET memory_limit = '3GB'")
    con.execute("SET disabled_compression_methods = 'rle'")
    con.execute("SET threads = 2")
    settings = ("SELECT current_setting('memory_limit'), current_setting('checkpoint_threshold'), "
                "current_setting('disabled_compression_methods'), current_setting('threads')")
    before = con.execute(settings).fetchone()
    seen = []
    real_stage = ingest_module._Loader.stage

    def stage(self, mapped_select: str) -> str:  # the settings while a chunk is staged
        seen.append(self.worker.execute(settings).fetchone())
        return real_stage(self, mapped_select)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ingest_module._Loader, "stage", stage)
        ingest_file(store, path)
    assert con.execute(settings).fetchone() == before
    # the scratch database of the staging cursor is gone too
    assert con.execute("SELECT count(*) FROM duckdb_databases() "
                       "WHERE database_name LIKE '_mm_scratch%'").fetchone()[0] == 0
    during = seen[0]
    assert during[3] == 1  # one DuckDB thread while ingesting ([ingest] threads)
    assert during[2].lower().split(",")[0] == "rle" and "fsst" in during[2].lower().split(",")


def test_ingest_threads_zero_keeps_the_connection_setting(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text(_event(1) + "\n" + _event(2) + "\n")
    store = Store(str(tmp_path / "s.duckdb"))
    store.duck.execute("SET threads = 2")
    config = Config()
    config.ingest.threads = 0
    seen = []
    real_stage = ingest_module._Loader.stage

    def stage(self, mapped_select: str) -> str:
        seen.append(self.worker.execute("SELECT current_setting('threads')").fetchone()[0])
        return real_stage(self, mapped_select)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ingest_module._Loader, "stage", stage)
        result = ingest_file(store, path, config=config)
    assert seen == [2] and result.loaded == 2


def test_disabled_methods_are_added_once() -> None:
    assert ingest_module._with_disabled("", ("fsst", "dict_fsst")) == "fsst,dict_fsst"
    assert ingest_module._with_disabled("RLE, FSST", ("fsst", "dict_fsst")) == "rle,fsst,dict_fsst"


def test_a_bad_line_after_clean_chunks_is_quarantined_and_nothing_else_lost(
    tmp_path: Path, tiny_chunks: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Clean chunks are parsed strictly; the first chunk with a line that is not JSON makes
    # the strict parse fail and is mapped again tolerantly, as is the rest of the file.
    monkeypatch.setattr(ingest_module, "ROW_GROUP_ROWS", 4)
    lines = [_event(i) for i in range(1, 13)]
    lines[7] = '{"type": "track", "messageId": "m-8", oops'
    lines[10] = "[1, 2]"
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join(lines) + "\n")
    store = Store(":memory:")
    result = ingest_file(store, path)
    assert (result.read, result.loaded, result.quarantined) == (12, 10, 2)
    assert store.duck.execute("SELECT line, reason FROM quarantine ORDER BY line").fetchall() == [
        (8, "not valid JSON"), (11, "expected a JSON object, got array")]
    stored = {r[0] for r in store.duck.execute("SELECT source_line FROM events").fetchall()}
    assert stored == set(range(1, 13)) - {8, 11}


@pytest.mark.parametrize(("stamp", "expected"), [
    ("2026-09-01T10:00:00.250Z", dt.datetime(2026, 9, 1, 10, 0, 0, 250000)),
    ("2026-09-01T12:00:00.250+02:00", dt.datetime(2026, 9, 1, 10, 0, 0, 250000)),
    ("2026-09-01T05:00:00-0500", dt.datetime(2026, 9, 1, 10, 0, 0)),
    ("1788256800000", dt.datetime(2026, 9, 1, 10, 0, 0)),
])
def test_timestamps_in_utc_with_offsets_or_epochs(tmp_path: Path, stamp: str, expected: dt.datetime) -> None:
    # The '...Z' form takes a fast path; offsets and epochs the general one. Same instant.
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps({"type": "track", "event": "A", "messageId": "t", "anonymousId": "a",
                                "timestamp": stamp}) + "\n")
    store = Store(":memory:")
    ingest_file(store, path)
    assert store.duck.execute("SELECT ts FROM events").fetchone()[0] == expected


@pytest.mark.parametrize("row_group", [ingest_module.ROW_GROUP_ROWS, 1, 2])
def test_restitched_counts_events_stored_under_a_linked_person(
    tmp_path: Path, tiny_chunks: None, monkeypatch: pytest.MonkeyPatch, row_group: int,
) -> None:
    """Events are stored with the person known so far; `restitched` still counts them
    (also when rows wait for a whole row group across chunks)."""
    monkeypatch.setattr(ingest_module, "ROW_GROUP_ROWS", row_group)
    lines = [
        json.dumps({"type": "page", "messageId": "p1", "anonymousId": "anon-q", "timestamp": "2026-09-01T10:00:00Z"}),
        json.dumps({"type": "identify", "messageId": "i1", "anonymousId": "anon-q", "userId": "user-q",
                    "timestamp": "2026-09-01T10:01:00Z"}),
        json.dumps({"type": "track", "event": "A", "messageId": "t1", "anonymousId": "anon-q",
                    "timestamp": "2026-09-01T10:02:00Z"}),
    ]
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join(lines) + "\n")
    store = Store(":memory:")
    result = ingest_file(store, path)
    assert result.restitched == 2  # p1 and t1 carry only the anonymous id
    people = dict(store.duck.execute("SELECT message_id, person_id FROM events").fetchall())
    assert people == {"p1": "user-q", "i1": "user-q", "t1": "user-q"}


def test_jsonl_then_parquet_on_one_connection(tmp_path: Path) -> None:
    """Scratch relations of one format must not collide with the next file's."""
    jsonl = tmp_path / "e.jsonl"
    jsonl.write_text(_event(1) + "\n")
    parquet = tmp_path / "e.parquet"
    duckdb.sql(f"COPY (SELECT 'q-1' AS messageId, 'u-1' AS userId, TIMESTAMP '2026-09-01 10:00:00' AS timestamp) "
               f"TO '{parquet}' (FORMAT parquet)")
    store = Store(":memory:")
    assert ingest_file(store, jsonl).loaded == 1
    assert ingest_file(store, parquet).loaded == 1
    assert ingest_file(store, jsonl).duplicates == 1


def test_a_failing_chunk_stops_the_ingest_and_keeps_what_was_stored(
    tmp_path: Path, tiny_chunks: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Chunks are staged on a second cursor while the previous one is stored: an error in
    # staging surfaces in the caller, the chunks stored before it stay, and the store's
    # connection is left as it was (no scratch database, settings restored).
    monkeypatch.setattr(ingest_module, "ROW_GROUP_ROWS", 2)
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join(_event(i) for i in range(1, 21)) + "\n")
    store = Store(":memory:")
    real_stage = ingest_module._Loader.stage
    calls = []

    def stage(self, mapped_select: str) -> str:
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("disk on fire")
        return real_stage(self, mapped_select)

    monkeypatch.setattr(ingest_module._Loader, "stage", stage)
    with pytest.raises(RuntimeError, match="disk on fire"):
        ingest_file(store, path)
    con = store.duck
    stored = [r[0] for r in con.execute("SELECT source_line FROM events ORDER BY 1").fetchall()]
    assert stored and stored == list(range(1, len(stored) + 1))  # a prefix of the file, no gaps
    assert con.execute("SELECT count(*) FROM duckdb_databases() "
                       "WHERE database_name LIKE '_mm_scratch%'").fetchone()[0] == 0
    monkeypatch.setattr(ingest_module._Loader, "stage", real_stage)
    again = ingest_file(store, path)  # the rest comes in on a second try; nothing twice
    assert again.loaded + len(stored) == 20 and store.count("events") == 20
