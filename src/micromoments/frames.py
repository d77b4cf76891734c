"""Missing values in data frames, read the same way under pandas 2 and 3.

pandas 3 keeps text in a string dtype whose missing value is NaN (a float: truthy, printed "nan");
pandas 2 kept None in object columns. Pages, the report and the CLI read rows through `records`
and test values with `is_missing`, so a missing value is None everywhere and renders blank or "—".

>>> import pandas as pd
>>> records(pd.DataFrame({"event": ["Viewed", None], "n": [1.0, float("nan")]}))
[{'event': 'Viewed', 'n': 1.0}, {'event': None, 'n': None}]
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

__all__ = ["is_missing", "records", "blank_missing"]


def is_missing(value: Any) -> bool:
    """Whether a scalar is None, NaN, NA or NaT (never raises on lists or strings).

    >>> is_missing(None), is_missing(float("nan")), is_missing(pd.NA), is_missing(pd.NaT), is_missing("nan")
    (True, True, True, True, False)
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    try:
        return bool(pd.isna(value)) if pd.api.types.is_scalar(value) else False
    except (TypeError, ValueError):
        return False


def records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    """`frame.to_dict("records")` with every missing value as None (see module doc)."""
    if frame is None or frame.empty:
        return []
    return [{k: (None if is_missing(v) else v) for k, v in row.items()} for row in frame.to_dict("records")]


def blank_missing(value: Any) -> Any:
    """A Jinja `finalize`: a missing value prints as nothing instead of "None" or "nan".

    >>> blank_missing(None), blank_missing(float("nan")), blank_missing(0)
    ('', '', 0)
    """
    return "" if is_missing(value) else value
