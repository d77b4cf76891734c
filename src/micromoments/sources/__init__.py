"""Readers: each maps a format people already emit onto the canonical event.

| format    | what                                                   |
|-----------|--------------------------------------------------------|
| segment   | Segment JSON/JSONL, with `batch` envelopes             |
| posthog   | PostHog event export (`event`, `distinct_id`, ...)     |
| ga4       | GA4 BigQuery export rows as JSON (`event_params`)      |
| csv / tsv | delimited text with a column mapping                   |
| parquet   | Parquet with a column mapping                          |

Any of them may be gzipped.

>>> detect_format("events.csv.gz")
'csv'
"""

from __future__ import annotations

from pathlib import Path

import orjson

from micromoments.errors import InputError
from micromoments.sources.jsonmap import Pick

FORMATS: tuple[str, ...] = ("segment", "posthog", "ga4", "csv", "tsv", "parquet")
JSON_FORMATS: tuple[str, ...] = ("segment", "posthog", "ga4")


def json_spec(fmt: str) -> dict[str, Pick]:
    """The field mapping of a JSON format."""
    if fmt == "segment":
        from micromoments.sources.segment import SEGMENT

        return SEGMENT
    if fmt == "posthog":
        from micromoments.sources.posthog import POSTHOG

        return POSTHOG
    if fmt == "ga4":
        from micromoments.sources.ga4 import GA4

        return GA4
    raise InputError(f"'{fmt}' is not a JSON format", hint=f"one of {', '.join(JSON_FORMATS)}")


def detect_format(path: str | Path) -> str:
    """Guess the format from the file name, then (for JSON) from the first document's keys."""
    p = Path(path)
    name = p.name.lower().removesuffix(".gz")
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".tsv") or name.endswith(".tab"):
        return "tsv"
    if not p.exists():
        return "segment"
    return sniff_json_format(p)


def sniff_json_format(path: Path) -> str:
    """Look at the first parseable document's keys: GA4 and PostHog are recognisable."""
    from micromoments.sources.files import read_head

    head = read_head(path, 1 << 20)
    for line in head.split(b"\n")[:50]:
        line = line.strip().lstrip(b"[").rstrip(b",")
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            if "batch" in doc and isinstance(doc["batch"], list) and doc["batch"]:
                doc = doc["batch"][0] if isinstance(doc["batch"][0], dict) else doc
            if "event_name" in doc and ("event_timestamp" in doc or "user_pseudo_id" in doc):
                return "ga4"
            if "distinct_id" in doc:
                return "posthog"
            return "segment"
    return "segment"
