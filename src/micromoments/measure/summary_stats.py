"""Experiments from summary statistics: a file of per-variant n, sum and sum of squares (or
conversions), analysed without a configured experiment or a store.

One row per variant (and metric, when a `metric` column names several):

    variant,n,sum,sum_squares            variant,n,conversions
    control,3407,1396.87,52377.9767      control,28,14
    treatment,3461,2422.7,134698.29      treatment,30,16

Optional columns: `metric` (default `value` for sums, `conversion` for conversions) and `weight`
(the planned share of each variant, for the sample-ratio check; default equal). The first
variant is the control unless one is named. The delimiter is sniffed (`sources.delimited`).

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "s.csv"
>>> _ = p.write_text("variant,n,conversions\\ncontrol,1000,100\\ntreatment,1000,130\\n")
>>> summary, metrics, weights = read_summary(p)
>>> metrics, float(summary.loc["treatment", "s_converted"]), weights
(['conversion'], 130.0, {'control': 1.0, 'treatment': 1.0})
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from micromoments.errors import InputError
from micromoments.measure.experiments import metric_columns
from micromoments.sources.delimited import read_delimited

__all__ = ["read_summary"]

_HINT = "columns: variant,n,sum,sum_squares (a mean metric) or variant,n,conversions (a rate); optional metric, weight"


def read_summary(path: str | Path, delimiter: str | None = None) -> tuple[pd.DataFrame, list[str], dict[str, float]]:
    """Per-variant sufficient statistics as `analyze_stats` takes them, the metrics, and the weights."""
    frame = read_delimited(path, delimiter, what="summary file")
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    where = str(path)
    if "variant" not in frame.columns or "n" not in frame.columns:
        raise InputError(f"missing column 'variant' or 'n' (columns found: {', '.join(frame.columns)})",
                         where=where, hint=_HINT)
    rates = "conversions" in frame.columns
    if not rates and not {"sum", "sum_squares"} <= set(frame.columns):
        raise InputError("no statistics: need 'sum' and 'sum_squares', or 'conversions'", where=where, hint=_HINT)
    if "metric" not in frame.columns:
        frame["metric"] = "conversion" if rates else "value"
    numeric = ["n", *(["conversions"] if rates else ["sum", "sum_squares"]),
               *(["weight"] if "weight" in frame.columns else [])]
    for col in numeric:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() | (values < 0) if col != "sum" else values.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"'{col}' must be a {'number' if col == 'sum' else 'non-negative number'}, "
                             f"got {frame[col].iloc[row]!r}", where=f"{where}, row {row + 2}, column {col}",
                             hint="fix or drop that row")
        frame[col] = values.astype(float)
    frame["variant"] = frame["variant"].astype(str).str.strip()
    if rates and (frame["conversions"] > frame["n"]).any():
        row = int(np.flatnonzero((frame["conversions"] > frame["n"]).to_numpy())[0])
        raise InputError("more conversions than people", where=f"{where}, row {row + 2}", hint="conversions ≤ n")
    variants = list(dict.fromkeys(frame["variant"]))
    metrics = list(dict.fromkeys(frame["metric"].astype(str)))
    out = pd.DataFrame(index=pd.Index(variants, name="variant"))
    for metric in metrics:
        column, den = metric_columns(metric)
        if den is not None:
            raise InputError(f"ratio metric '{metric}' needs per-person cross sums", where=where,
                             hint="give mean metrics (sum, sum_squares) or conversions")
        part = frame[frame["metric"].astype(str) == metric].set_index("variant")
        if part.index.duplicated().any():
            raise InputError(f"variant '{part.index[part.index.duplicated()][0]}' appears twice for metric '{metric}'",
                             where=where, hint="one row per variant and metric")
        n = part["n"].reindex(variants)
        if "n" in out.columns and not np.allclose(out["n"].fillna(-1), n.fillna(-1)):
            raise InputError(f"metric '{metric}' gives other people counts than the first metric", where=where,
                             hint="every metric is measured on the same people")
        out["n"] = n
        s = part["conversions" if rates else "sum"].reindex(variants)
        out[f"s_{column}"] = s
        out[f"ss_{column}"] = s if rates else part["sum_squares"].reindex(variants)  # 0/1 values: x² = x
    if out.isna().any().any():
        raise InputError("every metric needs a row for every variant", where=where, hint=_HINT)
    weights = ({v: float(w) for v, w in frame.drop_duplicates("variant").set_index("variant")["weight"].items()}
               if "weight" in frame.columns else {v: 1.0 for v in variants})
    return out, metrics, weights
