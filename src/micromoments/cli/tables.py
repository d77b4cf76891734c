"""Data frames as terminal tables that stay readable at 80 columns.

Column names become words ("median_s_from_previous" -> "median time from previous"), seconds become
human durations ("1 d 6 h"), counts get thousands separators, rates become percentages, a missing
value is "—", and numbers never wrap (headers wrap between words).

>>> human_duration(108_000), human_duration(75), human_duration(float("nan"))
('1 d 6 h', '1 min 15 s', '—')
>>> cell("people", 12345.0), cell("conversion_from_start", 0.3264), cell("step_name", None)
('12,345', '32.6%', '—')
"""

from __future__ import annotations

import math
from typing import Any

from rich import box
from rich.table import Table

from micromoments.frames import is_missing

__all__ = ["human_duration", "header", "cell", "frame_table"]

_SECONDS = ("_s", "_secs", "_seconds")
_RATES = ("rate", "share", "conversion", "ctr", "pct")
_WORDS = {"s": "time", "secs": "time", "seconds": "time", "n": "count"}
# Short names for the columns of the common tables (funnels, sessions), so they fit 80 columns.
_SHORT = {"step": "#", "step_name": "step", "conversion_from_start": "of first",
          "conversion_from_previous": "of prev", "median_s_from_previous": "time from prev",
          "median_s_from_start": "time from first", "dropoff": "dropped", "session_no": "session",
          "person_id": "person", "duration_s": "duration"}


def human_duration(seconds: Any) -> str:
    """Seconds as '45 s', '12 min', '5 h 12 min' or '1 d 6 h'."""
    if is_missing(seconds):
        return "—"
    s = float(seconds)
    if math.isinf(s):
        return "—"
    s = round(s)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        m, r = divmod(s, 60)
        return f"{m} min" + (f" {r} s" if r and m < 10 else "")
    if s < 86400:
        h, r = divmod(s, 3600)
        return f"{h} h" + (f" {r // 60} min" if r // 60 else "")
    d, r = divmod(s, 86400)
    return f"{d:,} d" + (f" {r // 3600} h" if r // 3600 else "")


def header(column: str) -> str:
    """A column name in words: 'median_s_from_previous' -> 'time from prev', 'avg_secs' -> 'avg time'."""
    if str(column) in _SHORT:
        return _SHORT[str(column)]
    words = str(column).split("_")
    return " ".join(_WORDS.get(w, w) for w in words)


def _is_seconds(column: str) -> bool:
    name = str(column)
    return name.endswith(_SECONDS) or "_s_" in name or name in ("secs", "seconds", "duration")


def _is_rate(column: str) -> bool:
    name = str(column).lower()
    return any(w in name for w in _RATES) and not _is_seconds(name)


def cell(column: str, value: Any) -> str:
    """One value as the table shows it (see the module doc)."""
    if is_missing(value):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        v = float(value)
        if math.isinf(v):
            return "—"
        if _is_seconds(column):
            return human_duration(v)
        if _is_rate(column) and -1.5 <= v <= 1.5:
            return f"{v:.1%}"
        if v.is_integer():
            return f"{int(v):,}"
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
    if hasattr(value, "isoformat"):
        return str(value)[:19]
    return str(value)


def frame_table(frame: Any, title: str, limit: int = 20, width: int = 80) -> Table:
    """A Rich table of the first `limit` rows, as many columns as fit `width` (the rest are named
    in the caption: `--output` writes them all). Numbers never wrap; headers wrap between words."""
    head = frame.head(limit)
    cells = {c: [cell(c, v) for v in head[c].tolist()] for c in frame.columns}
    numeric = {c: frame[c].dtype.kind in "iufb" for c in frame.columns}
    # A column needs its longest number (numbers never wrap) or its longest word.
    need = {c: max([len(w) for w in header(c).split()] + [len(x) if numeric[c] else max(
        [len(w) for w in x.split()] or [1]) for x in cells[c]]) for c in frame.columns}
    shown, used = [], 0
    for c in frame.columns:
        if shown and used + need[c] + 3 > width:  # a column costs its width, padding and separator
            break
        shown.append(c)
        used += need[c] + 3
    left = [header(c) for c in frame.columns if c not in shown]
    caption = f"{len(left)} more column{'s' if len(left) != 1 else ''}: {', '.join(left)} (--output writes every column)" if left else None
    # Light borders (two characters between columns) leave the width to the values.
    table = Table(title=f"{title} ({len(frame):,} rows)", box=box.SIMPLE_HEAD, pad_edge=False, caption=caption)
    spare = max(0, width - used)
    for c in shown:
        full = max([len(x) for x in cells[c]] + [need[c]])
        grow = 0 if numeric[c] else min(spare, full - need[c])  # text takes what is left, up to its length
        spare -= grow
        table.add_column(header(c), justify="right" if numeric[c] else "left", overflow="fold",
                         min_width=need[c] + grow, max_width=need[c] + grow)
    for i in range(len(head)):
        table.add_row(*[cells[c][i] for c in shown])
    return table
