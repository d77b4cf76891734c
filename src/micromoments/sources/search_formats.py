"""Which search export a file is, told from its header: Search Console (UI or bulk) or Bing.

| kind       | what                                                                          |
|------------|-------------------------------------------------------------------------------|
| `gsc_url`  | bulk export `searchdata_url_impression` (Parquet or CSV): has `url`, `sum_position` |
| `gsc_site` | bulk export `searchdata_site_impression`: has `sum_top_position`, no `url`     |
| `gsc_ui`   | a CSV of the UI's Performance export (Queries, Pages, Countries, Devices, Dates) |
| `gsc_filters` | the UI export's `Filters.csv` (a page filter gives the queries their landing page) |
| `bing`     | Bing Webmaster Tools keywords (UI export, or the API's `QueryStats` fields)    |
| `skip`     | a UI file that holds nothing we use (Search appearance)                        |

>>> kind_of_header(["Top queries", "Clicks", "Impressions", "CTR", "Position"])
('gsc_ui', 'query')
>>> kind_of_header(["data_date", "site_url", "query", "is_anonymized_query", "impressions", "clicks",
...                 "sum_top_position"])
('gsc_site', 'site')
>>> kind_of_header(["Keyword", "Impressions", "Clicks", "CTR", "Avg. Position"])
('bing', 'query')
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from micromoments.errors import InputError

FORMATS = ("auto", "gsc-ui", "gsc-bulk", "bing")

# The UI export's first column names its dimension (English UI; a few other languages Google uses).
UI_DIMENSIONS: dict[str, str] = {
    "top queries": "query", "queries": "query", "query": "query", "häufigste suchanfragen": "query",
    "requêtes les plus fréquentes": "query", "consultas principales": "query",
    "top pages": "page", "pages": "page", "page": "page", "häufigste seiten": "page",
    "pages les plus populaires": "page", "páginas principales": "page",
    "country": "country", "countries": "country", "land": "country", "pays": "country", "país": "country",
    "device": "device", "devices": "device", "gerät": "device", "appareil": "device", "dispositivo": "device",
    "date": "date", "dates": "date", "datum": "date", "fecha": "date",
    "search appearance": "skip", "search appearances": "skip", "darstellung in der suche": "skip",
    "filter": "filters", "filters": "filters",
}
# Metric columns, by their lowercased header, in the languages above.
UI_METRICS: dict[str, str] = {
    "clicks": "clicks", "klicks": "clicks", "clics": "clicks",
    "impressions": "impressions", "impressionen": "impressions", "impresiones": "impressions",
    "ctr": "ctr", "position": "position", "posición": "position",
}
# Bing: the UI export's headers and the Webmaster API's `QueryStats` field names.
BING_COLUMNS: dict[str, str] = {
    "keyword": "query", "keywords": "query", "query": "query", "search query": "query",
    "impressions": "impressions", "appeared in search": "impressions",
    "clicks": "clicks", "clicks from search": "clicks",
    "ctr": "ctr", "avg. ctr": "ctr",
    "avg. position": "position", "avg position": "position", "average position": "position",
    "avg. impression position": "position", "avg impression position": "position",
    "avgimpressionposition": "position", "avg search appearance position": "position", "position": "position",
    "date": "date", "page": "url", "url": "url",
}
BULK_REQUIRED = ("data_date", "impressions", "clicks")


def clean_header(name: str) -> str:
    """Lowercased, BOM and surrounding spaces removed."""
    return name.replace("\ufeff", "").strip().lower()


def _is_bing(cols: list[str]) -> bool:
    return ("keyword" in cols or "keywords" in cols or "avgimpressionposition" in cols
            or any(c.startswith("avg") and "position" in c for c in cols)
            or "appeared in search" in cols)


def kind_of_header(header: list[str], fmt: str = "auto") -> tuple[str, str]:
    """(kind, grain) of a file from its column names; `fmt` (one of `FORMATS`) forces the family.

    Raises `InputError` when the header matches no known export.
    """
    cols = [clean_header(c) for c in header]
    if fmt not in FORMATS:
        raise InputError(f"unknown format '{fmt}'", hint=f"one of {', '.join(FORMATS)}")
    if fmt in ("auto", "gsc-bulk") and all(c in cols for c in BULK_REQUIRED):
        if "url" in cols and "sum_position" in cols:
            return "gsc_url", "url"
        if "sum_top_position" in cols:
            return "gsc_site", "site"
        if fmt == "gsc-bulk":
            raise InputError("a bulk export needs `sum_top_position` (site table) or `url` and `sum_position` "
                             "(URL table)", hint=f"columns are {', '.join(header)}")
    if fmt == "gsc-bulk":
        raise InputError("not a Search Console bulk export table", hint=f"it needs {', '.join(BULK_REQUIRED)}; "
                         f"columns are {', '.join(header)}")
    if fmt in ("auto", "bing") and (fmt == "bing" or _is_bing(cols)):
        mapped = {BING_COLUMNS.get(c) for c in cols}
        if {"query", "impressions"} <= mapped:
            return "bing", "query"
        if fmt == "bing":
            raise InputError("a Bing keywords export needs a Keyword (or Query) and an Impressions column",
                             hint=f"columns are {', '.join(header)}")
    if cols and cols[0] in UI_DIMENSIONS:
        grain = UI_DIMENSIONS[cols[0]]
        if grain == "filters":
            return "gsc_filters", "filters"
        if grain == "skip":
            return "skip", "skip"
        if "impressions" in {UI_METRICS.get(c) for c in cols[1:]}:
            return "gsc_ui", grain
    raise InputError("not a Search Console or Bing Webmaster export",
                     hint=f"columns are {', '.join(header) or '(none)'}; expected the UI export's "
                          "'Top queries, Clicks, Impressions, CTR, Position', a bulk export table "
                          "(data_date, query, impressions, clicks, sum_top_position ...) or Bing's "
                          "'Keyword, Impressions, Clicks, CTR, Avg. Position'")


def csv_header(head: bytes, where: str) -> tuple[list[str], str]:
    """The first row of a CSV/TSV and its delimiter, from the file's first bytes."""
    text = head.decode("utf-8-sig", errors="replace")
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ("," if "," in first or ";" not in first else ";")
    try:
        row = next(csv.reader(io.StringIO(first), delimiter=delimiter), [])
    except csv.Error as exc:
        raise InputError(f"cannot read the header: {exc}", where=where, hint="is it a CSV file?") from exc
    return [c for c in row], delimiter


# An exact page filter; "+text" (URLs containing) and "-text" (not containing) name no single page.
_FILTER_PAGE = re.compile(r"^\s*(?:=|exact:)?\s*(https?://\S+)\s*$", re.I)


def page_filter(rows: list[list[str]]) -> str | None:
    """The landing page a UI export is filtered to ("Page", "https://..."), if exactly one.

    >>> page_filter([["Filter", "Value"], ["Search type", "Web"], ["Page", "https://a.example/x"]])
    'https://a.example/x'
    >>> page_filter([["Filter", "Value"], ["Page", "+/blog"]]) is None
    True
    """
    for row in rows[1:]:
        if len(row) >= 2 and clean_header(row[0]) in ("page", "seite", "página"):
            m = _FILTER_PAGE.match(row[1])
            return m.group(1) if m else None
    return None


def member_name(path: Path, member: str | None) -> str:
    """How a file (or a zip member) is named in messages and in `source`."""
    return f"{path}!{member}" if member else str(path)
