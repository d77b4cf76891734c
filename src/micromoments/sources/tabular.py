"""CSV/TSV and Parquet: rows plus a column mapping onto the canonical event.

`--map user_id=uid,event=action,timestamp=ts` names which source column feeds which
canonical field. Columns named like a canonical field (or its Segment spelling, such as
`userId`) map themselves. Every column that maps to nothing is kept in `properties`.
`revenue_on=EVENT|EVENT` counts the `revenue` column only on those events (a price column that
every product view carries is revenue on purchases only); the column also stays in `properties`.

>>> parse_mapping("user_id=uid, event=action")
{'user_id': 'uid', 'event': 'action'}
>>> parse_mapping("revenue=price,revenue_on=purchase|refund")
{'revenue': 'price', 'revenue_on': 'purchase|refund'}
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from micromoments.errors import InputError
from micromoments.sources.files import open_binary, read_head

# Canonical field -> mapped column it fills, and the value kind.
TARGETS: dict[str, tuple[str, str]] = {
    "message_id": ("message_id", "string"), "anonymous_id": ("anonymous_id", "string"),
    "user_id": ("user_id", "string"), "previous_id": ("previous_id", "string"),
    "type": ("type", "string"), "event": ("event", "string"), "name": ("name", "string"),
    "timestamp": ("ts_original", "time"), "sent_at": ("sent_at", "time"),
    "received_at": ("received_at", "time"), "channel": ("channel_raw", "string"),
    "query": ("query_raw", "string"), "page_url": ("page_url", "string"),
    "page_path": ("page_path", "string"), "page_title": ("page_title", "string"),
    "referrer": ("referrer", "string"), "utm_source": ("utm_source", "string"),
    "utm_medium": ("utm_medium", "string"), "utm_campaign": ("utm_campaign", "string"),
    "lat": ("lat", "number"), "lon": ("lon", "number"), "city": ("city", "string"),
    "country": ("country", "string"), "device_type": ("device_raw", "string"),
    "locale": ("locale", "string"), "timezone": ("timezone", "string"), "ip": ("ip", "string"),
    "user_agent": ("user_agent", "string"), "revenue": ("revenue", "number"),
}

# Mapping keys that are options, not columns: revenue_on=EVENT|EVENT (see the module doc).
OPTIONS = ("revenue_on",)

# Source column spellings that map themselves without --map.
ALIASES: dict[str, str] = {
    "messageId": "message_id", "anonymousId": "anonymous_id", "userId": "user_id",
    "previousId": "previous_id", "ts": "timestamp", "originalTimestamp": "timestamp",
    "sentAt": "sent_at", "receivedAt": "received_at", "url": "page_url", "title": "page_title",
    "latitude": "lat", "longitude": "lon", "userAgent": "user_agent",
}


def parse_mapping(text: str | None) -> dict[str, str]:
    """Parse `field=column,field=column` into {canonical field: source column}."""
    mapping: dict[str, str] = {}
    if not text:
        return mapping
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise InputError(f"mapping entry '{part}' is not FIELD=COLUMN", where="--map",
                             hint="e.g. --map user_id=uid,event=action,timestamp=ts")
        key, _, column = part.partition("=")
        key, column = key.strip(), column.strip()
        if key not in TARGETS and key not in OPTIONS:
            raise InputError(f"unknown field '{key}'", where="--map",
                             hint=f"fields: {', '.join([*TARGETS, *OPTIONS])}")
        mapping[key] = column
    return mapping


def resolve_mapping(columns: list[str], mapping: dict[str, str], *, where: str) -> dict[str, str]:
    """Complete an explicit mapping with self-mapping columns; check the columns exist."""
    resolved = dict(mapping)
    if "revenue_on" in mapping and "revenue" not in mapping:
        raise InputError("revenue_on needs a revenue column", where="--map",
                         hint="add revenue=COLUMN, e.g. --map revenue=price,revenue_on=purchase")
    for field_name, column in mapping.items():
        if field_name in OPTIONS:
            continue
        if column not in columns:
            raise InputError(f"--map {field_name}={column}: no column '{column}'", where=where,
                             hint=f"columns are: {', '.join(columns)}")
    used = set(resolved.values())
    for column in columns:
        target = column if column in TARGETS else ALIASES.get(column)
        if target and target not in resolved and column not in used:
            resolved[target] = column
            used.add(column)
    if "timestamp" not in resolved:
        raise InputError("no timestamp column", where=where,
                         hint="name it with --map timestamp=COLUMN")
    if "user_id" not in resolved and "anonymous_id" not in resolved:
        raise InputError("no user id column", where=where,
                         hint="name it with --map user_id=COLUMN (or anonymous_id=COLUMN)")
    return resolved


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def tabular_mapping_sql(columns: list[str], mapping: dict[str, str], relation: str,
                        types: dict[str, str] | None = None) -> str:
    """SELECT over `relation(line_no, <columns>)` producing the mapped columns.

    `types` (from `column_kinds`) says which columns are already typed (Parquet):
    those are used as they are instead of going through text and back. `raw` is left
    NULL: `tabular_raw_sql` rebuilds it for the few rows that are quarantined.
    """
    from micromoments.events.sql import MAPPED_COLUMNS, epoch_or_iso_sql, typed_null

    types = types or {}
    exprs: dict[str, str] = {}
    checks: list[str] = []
    for field_name, column in mapping.items():
        if field_name in OPTIONS:
            continue
        target, kind = TARGETS[field_name]
        col = _ident(column)
        have = types.get(column, "string")
        text = f"json_extract_string({col}, '$')" if have == "json" else f"CAST({col} AS VARCHAR)"
        if kind == "string":
            exprs[target] = f"nullif({text}, '')"
        elif kind == "number":
            if have == "number":
                exprs[target] = f"CAST({col} AS DOUBLE)"
                continue
            exprs[target] = f"TRY_CAST({text} AS DOUBLE)"
            checks.append(
                f"WHEN nullif({text}, '') IS NOT NULL AND TRY_CAST({text} AS DOUBLE) IS NULL "
                f"THEN '{column}: expected a number, got ' || left({text}, 40)"
            )
        elif have == "timestamp":  # time, already typed: no text round trip
            exprs[target] = f"CAST({col} AS TIMESTAMP)"
        elif have == "timestamptz":
            exprs[target] = f"CAST(timezone('UTC', {col}) AS TIMESTAMP)"
        else:  # time, as text or epoch number
            exprs[target] = epoch_or_iso_sql(text)
    ts_col = _ident(mapping["timestamp"])
    if types.get(mapping["timestamp"], "string") in ("timestamp", "timestamptz"):
        exprs["ts_missing"] = f"({ts_col} IS NULL)"
        exprs["ts_text"] = "CAST(NULL AS VARCHAR)"  # a typed timestamp is never unparseable
    else:
        exprs["ts_missing"] = f"(nullif(CAST({ts_col} AS VARCHAR), '') IS NULL)"
        exprs["ts_text"] = f"CAST({ts_col} AS VARCHAR)"
    exprs.setdefault("type", "'track'")
    exprs["type"] = f"lower(coalesce({exprs['type']}, 'track'))"
    revenue_on = [e for e in mapping.get("revenue_on", "").split("|") if e.strip()]
    if revenue_on and "revenue" in exprs:  # revenue on those events only; the column stays a property
        names = ", ".join("'" + e.strip().replace("'", "''") + "'" for e in revenue_on)
        exprs["revenue"] = f"CASE WHEN {exprs.get('event', 'NULL')} IN ({names}) THEN {exprs['revenue']} END"
    kept = {mapping["revenue"]} if revenue_on and "revenue" in mapping else set()
    extra = [c for c in columns if c not in {v for k, v in mapping.items() if k not in OPTIONS} - kept]
    props = (
        "json_object(" + ", ".join(f"'{c.replace(chr(39), chr(39) * 2)}', {_ident(c)}" for c in extra) + ")::VARCHAR"
        if extra else "NULL"
    )
    exprs["properties"] = props
    exprs["is_app"] = "false"
    # No id: the row's text is hashed (the text itself is only built for these rows).
    row_text = "json_object(" + ", ".join(f"'{c.replace(chr(39), chr(39) * 2)}', {_ident(c)}" for c in columns) + ")::VARCHAR"
    exprs["message_id"] = f"coalesce({exprs.get('message_id', 'NULL')}, 'h:' || md5({row_text}))"
    type_error = "CASE " + " ".join(checks) + " END" if checks else "NULL"
    select = []
    for c in MAPPED_COLUMNS:
        if c == "line_no":
            select.append("line_no")
        elif c == "raw":
            select.append("CAST(NULL AS VARCHAR) AS raw")
        elif c == "doc_error":
            select.append("CAST(NULL AS VARCHAR) AS doc_error")
        elif c == "type_error":
            select.append(f"{type_error} AS type_error")
        else:
            select.append(f"{exprs.get(c, typed_null(c))} AS {c}")
    return "SELECT " + ",\n  ".join(select) + f"\nFROM {relation}"


def tabular_raw_sql(columns: list[str], alias: str) -> str:
    """The row as JSON text (what the quarantine keeps), over `alias.<columns>`."""
    return "json_object(" + ", ".join(
        f"'{c.replace(chr(39), chr(39) * 2)}', {alias}.{_ident(c)}" for c in columns) + ")::VARCHAR"


def column_kinds(schema: pa.Schema) -> dict[str, str]:
    """Which Parquet columns are typed: 'timestamp', 'timestamptz', 'number', 'json' or 'string'."""
    kinds: dict[str, str] = {}
    for f in schema:
        t = f.type
        if getattr(t, "extension_name", None) == "arrow.json":
            kinds[f.name] = "json"
        elif pa.types.is_timestamp(t):
            kinds[f.name] = "timestamptz" if t.tz else "timestamp"
        elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            kinds[f.name] = "number"
        else:
            kinds[f.name] = "string"
    return kinds


@dataclass
class RowChunk:
    """Rows of a tabular file with their line numbers, plus rows the parser rejected."""

    table: pa.Table  # line_no + the file's columns
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # (line, reason, raw text)


def iter_csv_chunks(
    path: str | Path,
    *,
    delimiter: str = ",",
    block_bytes: int = 16 << 20,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[RowChunk]:
    """Stream a CSV/TSV (maybe gzipped) as string columns; malformed rows are reported, not dropped."""


    # Every column is read as text: types are checked per row later, so one bad value
    # quarantines one row instead of failing the whole file.
    names = tabular_columns(path, "csv", delimiter)
    rejected: list[tuple[int, str, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        reason = f"expected {row.expected_columns} columns, got {row.actual_columns}"
        rejected.append((row.number or -1, reason, row.text))
        return "skip"

    stream, underlying = open_binary(path)
    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(block_size=block_bytes, use_threads=False),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                             strings_can_be_null=True),
    )
    next_line = 2  # line 1 is the header
    bad_lines: set[int] = set()
    try:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as exc:
                raise InputError(f"cannot parse CSV: {exc}", where=str(path)) from exc
            if on_progress is not None:
                on_progress(underlying.tell())
            fresh = rejected[:]
            rejected.clear()
            bad_lines.update(line for line, _, _ in fresh)
            line_numbers = []
            while len(line_numbers) < batch.num_rows:
                if next_line not in bad_lines:
                    line_numbers.append(next_line)
                next_line += 1
            table = pa.Table.from_batches([batch]).add_column(0, "line_no", pa.array(np.array(line_numbers, dtype=np.int64)))
            yield RowChunk(table, fresh)
        if rejected:
            yield RowChunk(pa.table({"line_no": pa.array([], pa.int64()), **{n: pa.array([], pa.string()) for n in names}}), rejected[:])
    finally:
        stream.close()
        underlying.close()  # a GzipFile does not close the file it reads


def _open_parquet(path: str | Path) -> pq.ParquetFile:
    """The file's Parquet reader, or an InputError naming the file (not Parquet, unreadable)."""
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"cannot read as Parquet: {exc}", where=str(path)) from exc


def iter_parquet_chunks(
    path: str | Path, *, batch_rows: int = 250_000, on_progress: Callable[[int], None] | None = None
) -> Iterator[RowChunk]:
    """Stream a Parquet file in record batches, numbering rows from 1."""
    pf = _open_parquet(path)
    next_row = 1
    done_rows = 0
    total = max(pf.metadata.num_rows, 1)
    size = Path(path).stat().st_size
    for batch in pf.iter_batches(batch_size=batch_rows):
        table = pa.Table.from_batches([batch])
        table = table.add_column(0, "line_no", pa.array(np.arange(next_row, next_row + table.num_rows, dtype=np.int64)))
        next_row += table.num_rows
        done_rows += table.num_rows
        if on_progress is not None:
            on_progress(int(size * done_rows / total))
        yield RowChunk(table)


def parquet_row_ranges(path: str | Path, *, rows: int = 250_000) -> list[tuple[int, int]]:
    """Rows of a Parquet file in chunks of about `rows`: 1-based, inclusive (first, last).

    Chunks end at row-group boundaries where they can, so a range scan decodes only its
    own groups (DuckDB prunes the others by row number); a group of more than twice
    `rows` is cut into pieces, which keeps a chunk small at the price of decoding that
    group once per piece.

    >>> import tempfile, os, pyarrow as pa, pyarrow.parquet as pq
    >>> p = os.path.join(tempfile.mkdtemp(), "t.parquet")
    >>> pq.write_table(pa.table({"a": list(range(10))}), p, row_group_size=3)
    >>> parquet_row_ranges(p, rows=6)
    [(1, 6), (7, 10)]
    """
    meta = _open_parquet(path).metadata
    ranges: list[tuple[int, int]] = []
    start = end = 0  # 0-based [start, end) of the chunk being gathered
    for i in range(meta.num_row_groups):
        n = meta.row_group(i).num_rows
        if end > start and end - start + n > rows:
            ranges.append((start + 1, end))
            start = end
        if n > 2 * rows:  # one huge group: pieces of it
            pieces = -(-n // rows)
            cuts = [end + n * k // pieces for k in range(pieces + 1)]
            ranges.extend((a + 1, b) for a, b in zip(cuts, cuts[1:]))
            start = end = end + n
            continue
        end += n
    if end > start:
        ranges.append((start + 1, end))
    return ranges


def parquet_rows_sql(path: str | Path, first: int | None = None, last: int | None = None) -> str:
    """A Parquet file's rows (`first..last`, 1-based, inclusive; all by default) as
    `(line_no, <its columns>)`, read by DuckDB; `line_no` is the row's number in the file.

    >>> print(parquet_rows_sql("e.parquet", 1, 10))
    (SELECT file_row_number + 1 AS line_no, * EXCLUDE (file_row_number) FROM read_parquet('e.parquet', file_row_number = true, hive_partitioning = false) WHERE file_row_number BETWEEN 0 AND 9)
    """
    from micromoments.events.sql import sql_literal

    where = "" if first is None or last is None else f" WHERE file_row_number BETWEEN {first - 1} AND {last - 1}"
    return (f"(SELECT file_row_number + 1 AS line_no, * EXCLUDE (file_row_number) FROM "
            f"read_parquet({sql_literal(str(path))}, file_row_number = true, hive_partitioning = false){where})")


def duckdb_reads_parquet(path: str | Path, columns: list[str]) -> bool:
    """Whether `parquet_rows_sql` can read this file as named: no glob characters in the
    path (DuckDB would expand them) and no column clashing with its row number."""
    clash = {"file_row_number", "line_no"} & set(columns)
    return not clash and not any(ch in str(path) for ch in "*?[{")


def tabular_kinds(path: str | Path, fmt: str) -> dict[str, str]:
    """`column_kinds` of a Parquet file; CSV/TSV columns are all read as text ({})."""
    if fmt != "parquet":
        return {}
    return column_kinds(_open_parquet(path).schema_arrow)


def tabular_columns(path: str | Path, fmt: str, delimiter: str = ",") -> list[str]:
    """The column names of a CSV/TSV or Parquet file."""
    if fmt == "parquet":
        return _open_parquet(path).schema_arrow.names


    # The header alone: a malformed row further down must not stop the mapping check.
    head = read_head(path, 1 << 20)
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
    if not first.strip():
        raise InputError("no header line", where=str(path), hint="the first line must name the columns")
    return next(csv.reader([first], delimiter=delimiter))
