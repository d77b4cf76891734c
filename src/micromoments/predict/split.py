"""A time-based split: train on the past, calibrate on the recent past, test on the future. Never random.

With cutoffs c in [t0, t_end] and a label that needs `horizon` seconds of future:

* test:        the last `test_fraction` of the cutoffs whose horizon ends inside the data,
               test_start(h) <= c <= t_end - h;
* fit (train + validation): c + h <= test_start(h), so no training label peeks into the test period;
* validation:  the latest `val_fraction` of the fit period (early stopping and calibration).

>>> s = TimeSplit.from_range(0.0, 100.0, test_fraction=0.25, val_fraction=0.2)
>>> s.test_start(5.0), s.val_start(5.0)
(71.25, 53.0)
>>> import numpy as np
>>> tr, va, te = s.masks(np.array([10.0, 62.0, 70.0, 80.0, 99.0]), horizon_s=5.0)
>>> tr.tolist(), va.tolist(), te.tolist()
([True, False, False, False, False], [False, True, False, False, False], [False, False, False, True, False])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class TimeSplit:
    """The time range of the cutoffs and the fractions; boundaries depend on the label's horizon."""

    t0: float
    t_end: float
    test_fraction: float = 0.25
    val_fraction: float = 0.2

    @classmethod
    def from_range(cls, t0: float, t_end: float, *, test_fraction: float = 0.25,
                   val_fraction: float = 0.2) -> "TimeSplit":
        if not 0 < test_fraction < 1 or not 0 < val_fraction < 1:
            from micromoments.errors import ConfigError

            raise ConfigError("test_fraction and val_fraction must be between 0 and 1", where="[predict]",
                              hint="e.g. test_fraction = 0.25, val_fraction = 0.2")
        return cls(float(t0), float(t_end), float(test_fraction), float(val_fraction))

    def test_start(self, horizon_s: float = 0.0) -> float:
        usable_end = self.t_end - horizon_s
        return self.t0 + (1.0 - self.test_fraction) * (usable_end - self.t0)

    def val_start(self, horizon_s: float = 0.0) -> float:
        fit_end = self.test_start(horizon_s) - horizon_s
        return self.t0 + (1.0 - self.val_fraction) * (fit_end - self.t0)

    def masks(self, cutoffs: np.ndarray, horizon_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(train, validation, test) boolean masks over cutoff times for a label needing `horizon_s`."""
        test_start = self.test_start(horizon_s)
        test = (cutoffs >= test_start) & (cutoffs + horizon_s <= self.t_end)
        fit = cutoffs + horizon_s <= test_start
        val = fit & (cutoffs >= self.val_start(horizon_s))
        return fit & ~val, val, test

    def to_dict(self) -> dict[str, float]:
        return asdict(self)
