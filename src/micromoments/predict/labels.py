"""What happened after each cutoff: the targets the models learn (batch only; never features).

For events sorted by person then time, the cutoff of event i is "right after event i":

* `next_<moment>`: an event of that moment type within the next `next_hours` (default 24 h);
* `buy_session`: a conversion later in the same session (the session goes on while gaps are
  at most the session gap);
* `buy_7d`: a conversion within the next `buy_days` days (default 7).

Cutoffs too close to the end of the data to know the answer are left out by the split
(`split.TimeSplit.masks` keeps only cutoffs whose horizon ends inside the data).

>>> import numpy as np
>>> secs = np.array([0.0, 600.0, 90_000.0]); persons = np.array([0, 0, 0])
>>> is_buy = np.array([False, True, False])
>>> next_within(secs, persons, is_buy, 3600.0).tolist()
[True, False, False]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from micromoments.predict.features import KINDS, EventBatch, FeatureSpec


def next_time(secs: np.ndarray, groups: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """For each event, the time of the next `hit` event strictly after it in the same group (inf if none).

    Events must be sorted by group, then time.
    """
    values = np.where(hit, secs, np.inf)
    # Suffix minimum within each group, shifted by one so an event never sees itself.
    rev = pd.Series(values[::-1]).groupby(groups[::-1], sort=False).cummin().to_numpy()[::-1]
    out = np.full(secs.shape, np.inf)
    same = groups[1:] == groups[:-1]
    out[:-1] = np.where(same, rev[1:], np.inf)
    return out


def next_within(secs: np.ndarray, groups: np.ndarray, hit: np.ndarray, horizon_s: float) -> np.ndarray:
    """True where a `hit` event follows in the same group within `horizon_s` seconds."""
    return (next_time(secs, groups, hit) - secs) <= horizon_s


@dataclass
class Labels:
    """Targets per event (cutoff) and the future each one needs."""

    y: dict[str, np.ndarray]            # target -> bool per event
    horizon_s: dict[str, float]         # target -> seconds of future the label needs


def session_codes(secs: np.ndarray, person_codes: np.ndarray, gap_minutes: int) -> np.ndarray:
    """A running session number over all events (new person or a gap over `gap_minutes`)."""
    new = np.ones(secs.shape, dtype=bool)
    new[1:] = (person_codes[1:] != person_codes[:-1]) | ((secs[1:] - secs[:-1]) > gap_minutes * 60)
    return np.cumsum(new)


def make_labels(spec: FeatureSpec, events: EventBatch, person_codes: np.ndarray,
                *, next_hours: float = 24.0, buy_days: float = 7.0) -> Labels:
    """All targets for every event: `next_<moment>` per moment type, `buy_session`, `buy_7d`."""
    secs = events.secs
    y: dict[str, np.ndarray] = {}
    horizon: dict[str, float] = {}
    h = next_hours * 3600.0
    for i, m in enumerate(spec.moments):
        y[f"next_{m}"] = next_within(secs, person_codes, events.moment == i, h)
        horizon[f"next_{m}"] = h
    conv = events.onehot[:, len(spec.moments) + KINDS.index("conversion")] > 0
    sessions = session_codes(secs, person_codes, spec.session_gap_minutes)
    y["buy_session"] = np.isfinite(next_time(secs, sessions, conv))
    horizon["buy_session"] = spec.session_gap_minutes * 60.0
    y["buy_7d"] = next_within(secs, person_codes, conv, buy_days * 86_400.0)
    horizon["buy_7d"] = buy_days * 86_400.0
    return Labels(y, horizon)
