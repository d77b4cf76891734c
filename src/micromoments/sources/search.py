"""Search exports as DuckDB relations: Search Console (UI zip or CSVs, bulk Parquet/CSV) and Bing.

`search_parts(con, path)` opens one file (a zip gives one part per CSV in it), tells its kind from
the header and registers a temp view `_mm_src` of its rows with `_line`; `part.select` is the SQL
(`search_sql`) that maps those rows onto `search_rows` with a reason for each bad one. The caller
runs it while the part is open (`store.search_load` does).

>>> import duckdb, tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "Queries.csv"
>>> _ = p.write_text("Top queries,Clicks,Impressions,CTR,Position\\nhow to lay turf,12,400,3%,4.1\\n")
>>> con = duckdb.connect()
>>> [(part.kind, part.grain, con.execute(part.select).fetchall()[0][5]) for part in search_parts(con, p)]
[('gsc_ui', 'query', 'how to lay turf')]
"""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from micromoments.errors import InputError
from micromoments.sources.files import check_readable, read_head
from micromoments.sources.search_formats import (
    UI_DIMENSIONS,
    clean_header,
    csv_header,
    kind_of_header,
    member_name,
    page_filter,
)
from micromoments.sources.search_sql import Columns, bing_select, bulk_select, q, ui_select

MAX_ZIP_MEMBERS = 50
MAX_MEMBER_BYTES = 4 << 30   # a UI export is a few MB; this only stops a zip bomb
SRC_VIEW = "_mm_src"


@dataclass
class SearchPart:
    """One table of a search export, open as the view `_mm_src` while the iteration is on it."""

    source: str        # the file, or "file.zip!Queries.csv"
    file_id: str       # hash of the bytes (and member name): loading it again replaces its rows
    kind: str          # see `search_formats`
    grain: str
    select: str        # canonical columns + `_check` + `_line`, over `_mm_src`
    raw_sql: str       # the row's original values as JSON text, over alias `s` of `_mm_src`


def file_hash(path: Path, extra: str = "") -> str:
    """SHA-256 of the file's bytes (streamed), plus `extra` (a zip member's name)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    h.update(extra.encode())
    return h.hexdigest()[:32]


def _is_parquet(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"PAR1"


def _register(con: Any, path: Path, where: str) -> tuple[list[str], Columns]:
    """Register `_mm_src` over a CSV or Parquet file; return (the header as written, its columns)."""
    if _is_parquet(path):
        rel = f"SELECT *, file_row_number + 1 AS _line FROM read_parquet({_lit(path)}, file_row_number = true)"
    else:
        head = read_head(path, 1 << 16)
        if not head.strip():
            raise InputError("the file is empty", where=where, hint="export the report again")
        header, delim = csv_header(head, where)
        rel = (f"SELECT *, row_number() OVER () + 1 AS _line FROM read_csv({_lit(path)}, header = true, "
               f"all_varchar = true, delim = {_lit(delim)}, quote = '\"', escape = '\"', strict_mode = false, "
               f"null_padding = true, auto_detect = false, columns = {_columns_arg(header)})")
    try:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {SRC_VIEW} AS {rel}")
        described = con.execute(f"DESCRIBE {SRC_VIEW}").fetchall()
    except Exception as exc:  # duckdb's errors share no useful base class
        raise InputError(f"cannot read: {str(exc).splitlines()[0]}", where=where,
                         hint="is it a CSV or Parquet export, unchanged?") from exc
    names = [r[0] for r in described if r[0] not in ("_line", "file_row_number")]
    types = [r[1] for r in described if r[0] not in ("_line", "file_row_number")]
    return names, Columns(names, types)


def _lit(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _columns_arg(header: list[str]) -> str:
    # Every column as text, named as written (duplicates get a suffix, as a spreadsheet would show them).
    seen: dict[str, int] = {}
    names = []
    for raw in header:
        name = raw.replace("\ufeff", "").strip() or "column"
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return "{" + ", ".join(f"{_lit(n)}: 'VARCHAR'" for n in names) + "}"


def _part(con: Any, path: Path, source: str, file_id: str, fmt: str, page: str | None) -> SearchPart | None:
    header, cols = _register(con, path, source)
    try:
        kind, grain = kind_of_header(header, fmt)
    except InputError as exc:
        if header and clean_header(header[0]) in UI_DIMENSIONS and any("clicks" in clean_header(h) for h in header):
            raise InputError("this looks like a comparison export (two date ranges in one file)", where=source,
                             hint="export one date range at a time from Search Console") from None
        raise InputError(exc.message, where=source, hint=exc.hint) from None
    if kind in ("skip", "gsc_filters"):
        return None
    if kind in ("gsc_url", "gsc_site"):
        select = bulk_select(cols, grain)
    elif kind == "gsc_ui":
        select = ui_select(cols, grain, page)
    else:
        select = bing_select(cols)
    raw = "CAST(json_object(" + ", ".join(f"{_lit(n)}, s.{q(n)}" for n in cols.names) + ") AS VARCHAR)"
    return SearchPart(source, file_id, kind, grain, select, raw)


def _zip_members(path: Path) -> list[zipfile.ZipInfo]:
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise InputError(f"not a readable zip: {exc}", where=str(path), hint="download the export again") from exc
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir() and m.filename.lower().endswith((".csv", ".tsv"))]
    if not members:
        raise InputError("the zip holds no CSV file", where=str(path),
                         hint="use the zip Search Console's Export > Download CSV gives")
    if len(members) > MAX_ZIP_MEMBERS or any(m.file_size > MAX_MEMBER_BYTES for m in members):
        raise InputError(f"the zip holds {len(members)} CSV files or one over {MAX_MEMBER_BYTES >> 30} GB",
                         where=str(path), hint="unzip it and pass the CSV files you need")
    return members


def search_parts(con: Any, path: str | Path, fmt: str = "auto") -> Iterator[SearchPart]:
    """Yield each table of a search export file, with `_mm_src` registered on `con` for it.

    A zip's `Filters.csv` is read first: an exact page filter makes that page every query's landing page.
    Raises `InputError` (naming the file) when a file is no search export at all.
    """
    p = check_readable(path)
    if not zipfile.is_zipfile(p) or _is_parquet(p):
        part = _part(con, p, str(p), file_hash(p), fmt, None)
        if part is not None:
            yield part
        return
    members = _zip_members(p)
    zip_id = file_hash(p)
    with tempfile.TemporaryDirectory(prefix="mm_search_") as tmp, zipfile.ZipFile(p) as zf:
        files: list[tuple[str, Path]] = []
        for k, m in enumerate(members):
            target = Path(tmp) / f"{k}.csv"  # never the member's own path: it could point outside
            with zf.open(m) as src, open(target, "wb") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)
            files.append((m.filename, target))
        page = None
        for name, target in files:
            header, _ = csv_header(read_head(target, 1 << 16), member_name(p, name))
            if header and header[0].replace("\ufeff", "").strip().lower() in ("filter", "filters"):
                import csv

                with open(target, encoding="utf-8-sig", newline="") as f:
                    page = page_filter(list(csv.reader(f)))
        for name, target in files:
            part = _part(con, target, member_name(p, name), f"{zip_id}:{name}", fmt, page)
            if part is not None:
                yield part
