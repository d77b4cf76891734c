"""The expected CTR at each position, fitted on the site's own search data.

Rows are pooled into position bins (1, 2, ... 10, then 11-12, 13-15, 16-20, 21-30, 31-50, 51+): each
bin's CTR is its clicks over its impressions, at the impression-weighted mean position of its rows.
An isotonic regression (weighted by impressions) then makes the curve non-increasing, and the
expected CTR between bin centres is interpolated linearly (flat beyond the first and last).

Why isotonic and not a parametric curve (a power law `a * p^-b`, or the published industry tables):
the one thing every search results page guarantees is that a better position is seen first, so the
expected CTR cannot rise as the position worsens; anything more (how steep the top is, how flat the
tail) differs by site, by brand share and by the SERP features above the results, and a fixed shape
would blame the site for not matching someone else's. Isotonic regression assumes only that order,
pools neighbours where the data contradicts it, and weights each bin by its impressions, so a
sparse tail bin cannot bend the curve. Its cost: a step shape within bins (the interpolation
smooths it) and no extrapolation beyond the positions the site holds.

>>> import pandas as pd
>>> bins = pd.DataFrame({"position": [1.0, 2.0, 3.0], "impressions": [100, 100, 100], "clicks": [30, 12, 15]})
>>> curve = fit_expected_ctr(bins)
>>> [round(float(x), 3) for x in curve.ctr]
[0.3, 0.135, 0.135]
>>> round(float(curve.predict([1.5])[0]), 4)
0.2175
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

# Upper bounds (exclusive) of the position bins; the last bin is open.
BIN_UPPER: tuple[float, ...] = (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 16, 21, 31, 51)
LOOKUP_STEP = 0.1
LOOKUP_MAX = 100.0


@dataclass
class CtrCurve:
    """Expected CTR at `position` (bin centres, ascending); `raw_ctr` is each bin's pooled CTR."""

    position: np.ndarray
    ctr: np.ndarray
    raw_ctr: np.ndarray
    impressions: np.ndarray

    def predict(self, positions: Sequence[float] | np.ndarray) -> np.ndarray:
        """Expected CTR at each position (linear between bin centres, flat beyond them)."""
        if len(self.position) == 0:
            return np.full(len(positions), np.nan)
        return np.interp(np.asarray(positions, dtype=float), self.position, self.ctr)

    def table(self) -> pd.DataFrame:
        """One row per bin: position, impressions, observed CTR, expected (fitted) CTR."""
        return pd.DataFrame({"position": np.round(self.position, 2), "impressions": self.impressions.astype(int),
                             "observed_ctr": self.raw_ctr, "expected_ctr": self.ctr})

    def lookup(self) -> pd.DataFrame:
        """Expected CTR at positions 1.0, 1.1, ... 100.0: a small table SQL joins on the rounded position."""
        grid = np.round(np.arange(1.0, LOOKUP_MAX + LOOKUP_STEP / 2, LOOKUP_STEP), 1)
        return pd.DataFrame({"pos": grid, "expected_ctr": self.predict(grid)})


def fit_expected_ctr(bins: pd.DataFrame) -> CtrCurve:
    """Fit the curve on pooled bins: columns `position` (weighted mean), `impressions`, `clicks`."""
    from sklearn.isotonic import IsotonicRegression

    b = bins[bins.impressions > 0].sort_values("position")
    if b.empty:
        empty = np.array([], dtype=float)
        return CtrCurve(empty, empty, empty, empty)
    x = b.position.to_numpy(dtype=float)
    w = b.impressions.to_numpy(dtype=float)
    y = b.clicks.to_numpy(dtype=float) / w
    fitted = IsotonicRegression(increasing=False, y_min=0.0, y_max=1.0).fit(x, y, sample_weight=w).predict(x)
    return CtrCurve(x, fitted, y, w)
