"""Search exports read from fixtures written from the published schemas.

- Search Console UI export (Performance > Export > CSV): a zip of Queries, Pages, Countries,
  Devices, Dates, Filters and Search appearance CSVs, "Top queries, Clicks, Impressions, CTR, Position",
  CTR written as a percent ("5.67%", "2,22 %").
- Search Console bulk export tables `searchdata_url_impression` / `searchdata_site_impression`
  (Google's "Table guidelines and reference": data_date, site_url, url, query, is_anonymized_query,
  is_anonymized_discover, country, search_type, device, the is_* search appearance flags,
  impressions, clicks, sum_position / sum_top_position, zero-based), as BigQuery's CSV export and as
  Parquet with BigQuery's types.
- Bing Webmaster Tools keywords (the UI export's "Keyword, Impressions, Clicks, CTR, Avg. Position",
  and the API's QueryStats fields: Query, Date, Impressions, AvgImpressionPosition, AvgClickPosition).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from micromoments.errors import InputError
from micromoments.store.search_load import load_search_files

FIXTURES = Path(__file__).parent / "fixtures" / "search"


def ui_zip(tmp_path: Path, extra: dict[str, str] | None = None) -> Path:
    path = tmp_path / "Performance-on-Search-2026-10-01.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for p in sorted((FIXTURES / "gsc_ui").iterdir()):
            zf.write(p, p.name)
        for name, text in (extra or {}).items():
            zf.writestr(name, text)
    return path


def quarantine(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute("SELECT regexp_extract(source, '[^/!]+$'), line, field, reason FROM quarantine "
                       "ORDER BY source, line").fetchall()


def test_ui_zip_reads_every_table_percent_ctr_and_quarantines_bad_rows(tmp_path: Path) -> None:
    con = duckdb.connect()
    result = load_search_files(con, [ui_zip(tmp_path)])
    grains = {t.grain: (t.loaded, t.quarantined) for t in result.tables}
    # Filters and Search appearance hold nothing to load; the five dimension tables do.
    assert grains == {"query": (6, 4), "page": (4, 0), "country": (3, 0), "device": (3, 0), "date": (4, 1)}
    rows = dict(con.execute("SELECT query, (impressions, clicks, round(sum_position / impressions + 1, 2)) "
                            "FROM search_rows WHERE grain = 'query'").fetchall())
    assert rows["garden centre near me"] == (1500, 85, 2.1)
    assert rows["hey google how do i lay turf"] == (90, 2, 9.4)  # CTR "2,22 %": decimal comma, percent
    assert "how to build a raised bed" in rows  # the header carried a byte-order mark
    bad = quarantine(con)
    assert ("Queries.csv", 8, "Top queries", "is empty") in bad
    assert ("Queries.csv", 9, "Clicks", "'abc' is not a whole number") in bad
    assert ("Queries.csv", 10, "Clicks", "clicks (500) exceed impressions (300)") in bad
    # CTR "45%" against 9 clicks / 300 impressions: the columns are shifted, the row is not trusted.
    assert any(b[:3] == ("Queries.csv", 11, "CTR") and "does not match" in b[3] for b in bad)
    assert ("Dates.csv", 5, "Date", "'2026-09-31' is not a date (YYYY-MM-DD)") in bad
    devices = dict(con.execute("SELECT device, impressions FROM search_rows WHERE grain = 'device'").fetchall())
    assert devices == {"mobile": 5400, "desktop": 2900, "tablet": 300}


def test_ui_zip_page_filter_gives_queries_their_landing_page(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    path = ui_zip(tmp_path / "a")
    # The same export, filtered to one page: Filters.csv names it, so every query landed there.
    filtered = tmp_path / "filtered.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(filtered, "w") as dst:
        for m in src.infolist():
            data = src.read(m)
            if m.filename == "Filters.csv":
                data += b"Page,https://www.greenhaven.example/how-to/build-a-raised-bed\n"
            dst.writestr(m, data)
    con = duckdb.connect()
    load_search_files(con, [filtered])
    urls = {r[0] for r in con.execute("SELECT DISTINCT url FROM search_rows WHERE grain = 'query'").fetchall()}
    assert urls == {"https://www.greenhaven.example/how-to/build-a-raised-bed"}


def bulk_parquet(tmp_path: Path, name: str) -> Path:
    """The CSV fixture's rows as Parquet with BigQuery's column types (DATE, BOOL, INT64)."""
    csv_path = FIXTURES / f"{name}.csv"
    names = pacsv.read_csv(csv_path, read_options=pacsv.ReadOptions()).column_names
    types = {n: pa.string() for n in names}
    table = pacsv.read_csv(csv_path, convert_options=pacsv.ConvertOptions(column_types=types,
                                                                          strings_can_be_null=True))
    good = []
    for row in table.to_pylist():
        try:  # Parquet from BigQuery cannot hold a bad date or a non-integer: keep what it could hold
            row["data_date"] = pa.scalar(row["data_date"]).cast(pa.date32()).as_py()
            for k in ("impressions", "clicks", "sum_position", "sum_top_position"):
                if k in row:
                    row[k] = int(row[k])
            for k in [c for c in row if c.startswith("is_")]:
                row[k] = {"true": True, "false": False}[row[k]]
        except (KeyError, ValueError, pa.ArrowInvalid):
            continue
        good.append(row)
    schema = pa.schema([(n, pa.date32() if n == "data_date" else pa.int64() if n in (
        "impressions", "clicks", "sum_position", "sum_top_position") else pa.bool_() if n.startswith("is_")
        else pa.string()) for n in names])
    out = tmp_path / f"{name}.parquet"
    pq.write_table(pa.Table.from_pylist(good, schema), out)
    return out


def test_bulk_url_table_csv_anonymized_rows_and_bad_rows() -> None:
    con = duckdb.connect()
    result = load_search_files(con, [FIXTURES / "searchdata_url_impression.csv"])
    assert [(t.kind, t.grain, t.loaded, t.quarantined) for t in result.tables] == [("gsc_url", "url", 11, 5)]
    anon = con.execute("SELECT count(*), sum(impressions), count(query) FROM search_rows "
                       "WHERE is_anonymized AND search_type = 'web'").fetchone()
    assert anon == (2, 65, 0)  # counted, and no query text
    pos = con.execute("SELECT sum_position / impressions + 1 FROM search_rows WHERE url LIKE '%/stores/leeds'")
    assert pos.fetchone()[0] == 2.0  # sum_position is zero-based
    assert con.execute("SELECT DISTINCT device FROM search_rows ORDER BY 1").fetchall() == [
        ("desktop",), ("mobile",), ("tablet",)]
    pages = con.execute("SELECT count(DISTINCT url) FROM search_rows WHERE query = 'how to build a raised bed'")
    assert pages.fetchone()[0] == 2  # one query, two landing pages
    bad = {(line, field) for _, line, field, _ in quarantine(con)}
    assert bad == {(13, "data_date"), (14, "impressions"), (15, "query"), (16, "url"), (17, "is_anonymized_query")}


def test_bulk_parquet_and_csv_give_the_same_rows(tmp_path: Path) -> None:
    from_csv, from_parquet = duckdb.connect(), duckdb.connect()
    load_search_files(from_csv, [FIXTURES / "searchdata_url_impression.csv"])
    load_search_files(from_parquet, [bulk_parquet(tmp_path, "searchdata_url_impression")])
    cols = "data_date, url, query, is_anonymized, country, device, search_type, impressions, clicks, sum_position"
    a = from_csv.execute(f"SELECT {cols} FROM search_rows ORDER BY ALL").fetchall()
    b = from_parquet.execute(f"SELECT {cols} FROM search_rows ORDER BY ALL").fetchall()
    assert a == b and len(a) == 11
    # What typed Parquet can still get wrong is caught there too (negative impressions, an empty query
    # not marked anonymized, an empty URL).
    assert [r[2] for r in quarantine(from_parquet)] == ["impressions", "query", "url"]


def test_bulk_site_table() -> None:
    con = duckdb.connect()
    result = load_search_files(con, [FIXTURES / "searchdata_site_impression.csv"])
    assert [(t.kind, t.grain, t.loaded, t.quarantined) for t in result.tables] == [("gsc_site", "site", 4, 2)]
    assert con.execute("SELECT count(*) FROM search_rows WHERE is_anonymized AND query IS NULL").fetchone()[0] == 1
    assert [(r[2], r[3]) for r in quarantine(con)] == [
        ("clicks", "clicks (12) exceed impressions (10)"), ("sum_top_position", "'-3' is not a number >= 0")]


def test_bing_keywords_ui_export_and_api_fields() -> None:
    con = duckdb.connect()
    result = load_search_files(con, [FIXTURES / "bing_keywords.csv", FIXTURES / "bing_query_stats.csv"])
    assert [(t.kind, t.loaded, t.quarantined) for t in result.tables] == [("bing", 3, 2), ("bing", 3, 1)]
    ui = dict(con.execute("SELECT query, (impressions, clicks) FROM search_rows WHERE data_date IS NULL").fetchall())
    assert ui["cordless drill"] == (1240, 11)  # "1,240": a thousands separator
    # The API's fields carry no clicks: they come from the percent CTR.
    api = con.execute("SELECT data_date::VARCHAR, impressions, clicks, sum_position / impressions + 1 "
                      "FROM search_rows WHERE data_date IS NOT NULL ORDER BY 1, 2").fetchall()
    assert api == [("2026-09-01", 120, 6, 2.1), ("2026-09-08", 80, 2, 5.2), ("2026-09-08", 140, 6, 2.3)]
    assert {(r[2], r[3]) for r in quarantine(con)} == {
        ("Keyword", "is empty"), ("Impressions", "'seventy' is not a whole number"), ("Date", "'someday' is not a date")}


def test_files_merge_and_loading_again_replaces(tmp_path: Path) -> None:
    con = duckdb.connect()
    files = [ui_zip(tmp_path), FIXTURES / "searchdata_url_impression.csv", FIXTURES / "bing_keywords.csv"]
    load_search_files(con, files)
    first = con.execute("SELECT engine, grain, count(*), sum(impressions) FROM search_rows GROUP BY ALL ORDER BY ALL")
    first_rows = first.fetchall()
    again = load_search_files(con, files[1:2])
    assert again.tables[0].replaced == 11
    assert con.execute("SELECT engine, grain, count(*), sum(impressions) FROM search_rows GROUP BY ALL "
                       "ORDER BY ALL").fetchall() == first_rows
    assert {r[0] for r in first_rows} == {"google", "bing"}
    assert con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 5 + 5 + 2


@pytest.mark.parametrize("text, message", [
    ("a,b,c\n1,2,3\n", "not a Search Console or Bing Webmaster export"),
    ("", "the file is empty"),
    ("Top queries,Last 28 days Clicks,Previous 28 days Clicks,Last 28 days Impressions\nx,1,2,3\n",
     "comparison export"),
])
def test_files_that_are_no_search_export_say_so(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "x.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        load_search_files(duckdb.connect(), [path])
    assert str(path) in str(err.value)


def test_zip_without_csv_and_forced_format(tmp_path: Path) -> None:
    path = tmp_path / "empty.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(InputError, match="no CSV"):
        load_search_files(duckdb.connect(), [path])
    with pytest.raises(InputError, match="not a Search Console bulk export table"):
        load_search_files(duckdb.connect(), [FIXTURES / "bing_keywords.csv"], fmt="gsc-bulk")
