"""Small delimited text files (path files, summary statistics): the delimiter sniffed or given.

ChannelAttribution ships its `Data.csv` separated by semicolons; spreadsheets in many locales
write them too. The delimiter is guessed from the header line among `, ; TAB |` (the one that
splits the header into the most fields, commas winning ties), unless the caller names it.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "d.csv"
>>> _ = p.write_text("path;total_conversions\\na > b;1\\n")
>>> sniff_delimiter(p), read_delimited(p).columns.tolist()
(';', ['path', 'total_conversions'])
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from micromoments.errors import InputError
from micromoments.sources.files import read_head

__all__ = ["CANDIDATES", "sniff_delimiter", "read_delimited"]

CANDIDATES = (",", ";", "\t", "|")
_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def sniff_delimiter(path: str | Path) -> str:
    """The delimiter of the file's header line (see the module doc)."""
    head = read_head(path, 1 << 16).decode("utf-8", errors="replace")
    header = head.lstrip("\ufeff").splitlines()[0] if head.strip() else ""
    counts = {d: header.count(d) for d in CANDIDATES}
    best = max(CANDIDATES, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def read_delimited(path: str | Path, delimiter: str | None = None, *, what: str = "file",
                   dtype: dict[str, type] | None = None) -> pd.DataFrame:
    """Read a delimited file whole; `delimiter` None sniffs it. Errors name the file, the
    delimiter used and the columns found."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} not found", where=str(path), hint="check the file name")
    delim = delimiter if delimiter else sniff_delimiter(path)
    if delim in ("\\t", "tab"):
        delim = "\t"
    try:
        big = path.stat().st_size > 1e6  # pyarrow's reader is faster on big files, C's start-up on small
        return pd.read_csv(path, sep=delim, dtype=dtype, engine="pyarrow" if big else "c")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable {what} ({_NAMES.get(delim, repr(delim))}-separated): {exc}",
                         where=str(path), hint="give the separator with --delimiter") from exc


def describe_delimiter(delimiter: str) -> str:
    """'semicolon' for ';' (for error messages).

    >>> describe_delimiter("\\t")
    'tab'
    """
    return _NAMES.get(delimiter, repr(delimiter))
