"""Reading and writing the small tables `classify` and `evaluate` work on: CSV, TSV, JSONL.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "q.tsv"
>>> _ = p.write_text("query\\tlabel\\ngmail login\\tgo\\n")
>>> read_table(p).to_dict("records")
[{'query': 'gmail login', 'label': 'go'}]
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from micromoments.errors import InputError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


def table_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    fmt = FORMATS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise InputError("unknown file type", where=str(path), hint="use a .csv, .tsv or .jsonl file")
    return fmt


def read_table(path: Path) -> pd.DataFrame:
    """All columns as text (missing values become ''), so input columns round-trip unchanged."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", where=str(path), hint="check the --input path")
    fmt = table_format(path)
    try:
        if fmt == "jsonl":
            df = pd.read_json(path, lines=True, dtype=False)
            return df.astype(object).where(df.notna(), "")
        return pd.read_csv(path, sep="\t" if fmt == "tsv" else ",", dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"cannot read as {fmt.upper()}: {exc}", where=str(path),
                         hint="check the delimiter and quoting (or the JSON on each line)") from exc


def require_column(df: pd.DataFrame, column: str, path: Path, option: str) -> None:
    if column not in df.columns:
        raise InputError(f"no column '{column}'", where=str(path),
                         hint=f"columns are {', '.join(map(str, df.columns))}; pass {option} NAME")


def write_table(df: pd.DataFrame, path: Path) -> None:
    fmt = table_format(Path(path))
    if fmt == "jsonl":
        df.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        df.to_csv(path, sep="\t" if fmt == "tsv" else ",", index=False)
