"""A Parquet file loaded whole by DuckDB gives the store that loading it in chunks gives.

`WHOLE_FILE_PARQUET` (the default) loads the file in a few whole-file statements
(`store.whole_parquet`); the chunked path maps pyarrow batches into scratch tables, as for CSV.
Both must give the same counts and the same tables, on demo events salted with bad rows and
repeats, ingested twice, at several chunkings.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from micromoments.config import Config
from micromoments.errors import InputError
from micromoments.demo import generate
from micromoments.store import Store
from micromoments.store import ingest as ingest_module
from micromoments.store.ingest import ingest_file

TABLES = {
    "events": "SELECT * FROM events ORDER BY source, source_line",  # stored in no particular order
    "quarantine": "SELECT * EXCLUDE (quarantined_at) FROM quarantine",
    "identities": "SELECT * FROM identities ORDER BY id",
    "identity_links": "SELECT * FROM identity_links ORDER BY ALL",
    "profiles": "SELECT * FROM profiles ORDER BY person_id",
}


@pytest.fixture(scope="module")
def demo_parquet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(typed, text): demo events as the benchmark's 13-column Parquet (UUID, JSON and timestamp
    columns) salted with bad rows and repeats, and an all-text copy with extra columns."""
    out = tmp_path_factory.mktemp("pq")
    paths = generate(out / "data", users=120, days=14, seed=3)
    typed = out / "typed.parquet"
    duckdb.sql(f"""COPY (
        SELECT messageId, anonymousId, userId, previousId, type, event, timestamp,
               properties.query AS query, context.page.url AS page_url, context.page.title AS page_title,
               channel, context.timezone AS timezone, properties.revenue AS revenue
        FROM read_json('{paths.events}')) TO '{typed}' (FORMAT parquet)""")
    table = pq.read_table(typed)
    rows = table.to_pylist()
    assert len(rows) > 3000  # more than a DuckDB vector past the first ranges: see the row groups below

    def salt(i: int, **values: object) -> None:
        rows[i] = {**rows[i], **values}

    salt(10, timestamp=None)                                      # missing timestamp
    salt(2010, timestamp=dt.datetime(2099, 1, 1, 12))             # far in the future
    salt(2030, anonymousId=None, userId=None)                     # nobody
    salt(2040, type="bogus")
    salt(2050, type="alias", previousId=None)
    salt(2060, messageId=rows[2061]["messageId"])                  # a repeat within the file
    salt(70, messageId=None)                                      # id from the row's hash
    salt(2999, messageId=rows[5]["messageId"])                     # a repeat far from the first
    typed_salted = out / "typed_salted.parquet"
    # Row groups of 3,000 rows cut into ranges of 1,000: a range starting at row 2,001 begins
    # 48 rows before the end of a 2,048-row vector (the case that once came out shifted).
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), typed_salted, row_group_size=3000)
    text_rows = []
    for i, row in enumerate(rows[:1500]):
        text = {k: None if v is None else str(v) for k, v in row.items()}
        text["messageId"] = None if row["messageId"] is None else f"t-{row['messageId']}"
        stamp = row["timestamp"]
        text["timestamp"] = None if stamp is None else stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        text["lat"] = "51.5" if i % 5 == 0 else None
        text["utm_medium"] = "email" if i % 11 == 0 else None
        text["plan"] = f"p{i % 3}"  # maps to nothing: kept in properties
        text_rows.append(text)
    text_rows[100]["timestamp"] = "yesterday"
    text_rows[101]["revenue"] = "abc"
    text_rows[102]["lat"] = "north"
    text_rows[103]["timestamp"] = "1767225600000"  # epoch milliseconds
    text_rows[104]["timestamp"] = "2026-01-05T10:00:00+02:00"
    text_salted = out / "text_salted.parquet"
    pq.write_table(pa.Table.from_pylist(text_rows), text_salted, row_group_size=700)
    return typed_salted, text_salted


def _ingest_all(files: list[Path], config: Config) -> tuple[list[tuple], dict[str, list[tuple]]]:
    store = Store(":memory:")
    counts = []
    for path in files:
        r = ingest_file(store, path, config=config)
        counts.append((r.read, r.loaded, r.duplicates, r.quarantined, r.restitched, sorted(r.reasons.items())))
    return counts, {name: store.duck.execute(sql).fetchall() for name, sql in TABLES.items()}


@pytest.mark.parametrize(("chunk_lines", "row_group", "statement_rows"),
                         [(250_000, ingest_module.ROW_GROUP_ROWS, 20_000_000), (1000, 512, 3000), (600, 97, 1000)])
def test_whole_file_parquet_gives_the_store_the_chunked_path_gives(
    demo_parquet: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, chunk_lines: int, row_group: int,
    statement_rows: int,
) -> None:
    typed, text = demo_parquet
    files = [typed, text, typed]  # the second copy of `typed`: every row a repeat or quarantined again
    monkeypatch.setattr(ingest_module, "ROW_GROUP_ROWS", row_group)
    config = Config()
    config.ingest.chunk_lines = chunk_lines
    monkeypatch.setattr(ingest_module, "WHOLE_FILE_PARQUET", False)
    staged_counts, staged_tables = _ingest_all(files, config)
    monkeypatch.setattr(ingest_module, "WHOLE_FILE_PARQUET", True)
    # Several ranges of whole row groups (typed: groups of 3,000, cut into 1,000s at 1,000): there,
    # row 3,000 repeats row 6 of the first range, and is found among the events stored by then.
    config.ingest.parquet_statement_rows = statement_rows
    direct_counts, direct_tables = _ingest_all(files, config)
    assert direct_counts == staged_counts
    for name in TABLES:
        assert direct_tables[name] == staged_tables[name], name
    # Not merely equal: the salted rows were caught, with row and reason.
    first, second, third = direct_counts
    assert first[0] == first[1] + first[2] + first[3] and (first[2], first[3]) == (2, 5)
    assert third[1] == 0 and third[3] == 5
    assert second[3] == 4 and any("expected a number" in reason for reason, _ in second[5])
    quarantined = {(line, reason.split(" ")[0]) for _, line, _, reason, _ in direct_tables["quarantine"]}
    expected = {(11, "missing"), (2011, "timestamp"), (2031, "neither"), (2041, "unknown"), (2051, "alias")}
    assert expected <= quarantined
    raw = next(r for r in direct_tables["quarantine"] if r[1] == 2031)[4]
    assert json.loads(raw)["anonymousId"] is None  # the row's text, rebuilt for the quarantine


def test_parquet_ingest_leaves_the_connection_settings_as_found(demo_parquet: tuple[Path, Path]) -> None:
    typed, _ = demo_parquet
    store = Store(":memory:")
    con = store.duck
    con.execute("SET disabled_optimizers = 'join_order'")
    settings = "SELECT current_setting('preserve_insertion_order'), current_setting('disabled_optimizers'), " \
               "current_setting('threads'), current_setting('enable_progress_bar')"
    before = con.execute(settings).fetchone()
    assert ingest_file(store, typed).loaded > 3000
    assert con.execute(settings).fetchone() == before


def test_whole_file_progress_rises_to_the_file_size(demo_parquet: tuple[Path, Path]) -> None:
    typed, _ = demo_parquet
    seen: list[tuple[int, int]] = []
    ingest_file(Store(":memory:"), typed, on_progress=lambda done, total: seen.append((done, total)))
    size = typed.stat().st_size
    assert seen and seen[-1] == (size, size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)  # never goes back


def test_a_failed_whole_file_load_leaves_nothing_behind(demo_parquet: tuple[Path, Path]) -> None:
    # The quarantine, the id links and the events are one transaction: when the wide pass
    # fails, the rejects and links written before it are rolled back too.
    typed, _ = demo_parquet
    store = Store(":memory:")
    calls = 0

    def finished(rows: str) -> str:
        nonlocal calls
        calls += 1
        sql = store_loader.finish(tabular_mapping_sql(columns, mapping, rows, kinds))
        if calls == 1:  # the narrow pass
            return sql
        return f"SELECT * FROM ({sql}) WHERE CAST('x' || line_no AS INTEGER) > 0"  # fails on every row

    from micromoments.sources.tabular import (parquet_rows_sql, parse_mapping, resolve_mapping,
                                              tabular_columns, tabular_kinds, tabular_mapping_sql,
                                              tabular_raw_sql)
    from micromoments.store.identity import PeopleSoFar
    from micromoments.store.whole_parquet import load_whole_parquet

    columns = tabular_columns(typed, "parquet")
    mapping = resolve_mapping(columns, parse_mapping(None), where=str(typed))
    kinds = tabular_kinds(typed, "parquet")
    store_loader = ingest_module._Loader(store, ingest_module.IngestResult(str(typed), "parquet"), Config())
    with pytest.raises(duckdb.ConversionException):
        load_whole_parquet(store.duck, parquet_rows_sql(typed), finished=finished,
                           raw_sql=tabular_raw_sql(columns, "c"), source=str(typed),
                           now=store_loader.now, people=PeopleSoFar())
    assert calls == 2  # it got as far as the wide pass
    for table in ("events", "quarantine", "identity_links"):
        assert store.count(table) == 0, table
    store_loader.close()


def test_row_ranges_follow_row_groups_and_cut_big_ones(tmp_path: Path) -> None:
    from micromoments.sources.tabular import parquet_row_ranges

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": list(range(100))}), path, row_group_size=10)
    assert parquet_row_ranges(path, rows=25) == [(1, 20), (21, 40), (41, 60), (61, 80), (81, 100)]
    big = tmp_path / "big.parquet"
    pq.write_table(pa.table({"a": list(range(100))}), big, row_group_size=70)
    assert parquet_row_ranges(big, rows=20) == [(1, 17), (18, 35), (36, 52), (53, 70), (71, 100)]
    assert parquet_row_ranges(big, rows=1000) == [(1, 100)]


def test_a_parquet_file_with_corrupt_pages_is_one_clear_error(tmp_path: Path) -> None:
    # The footer reads (pyarrow opens it), the data pages do not: DuckDB fails in the narrow pass.
    path = tmp_path / "corrupt.parquet"
    n = 50_000
    pq.write_table(pa.table({"userId": [f"u{i}" for i in range(n)], "timestamp": ["2026-01-05T10:00:00Z"] * n}),
                   path, compression="snappy")
    data = bytearray(path.read_bytes())
    data[200:5000] = bytes((b * 7 + 13) % 256 for b in data[200:5000])
    path.write_bytes(bytes(data))
    store = Store(":memory:")
    with pytest.raises(InputError, match="cannot read as Parquet") as caught:
        ingest_file(store, path)
    assert str(path) in str(caught.value)
    assert store.count("events") == 0 and store.count("quarantine") == 0
