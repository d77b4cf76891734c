"""Customer lifetime value: BG/NBD (purchase count + dropout) and Gamma-Gamma (spend per order).

Both models are fitted by maximum likelihood with `scipy.optimize` on their closed-form
log-likelihoods (Fader, Hardie & Lee 2005, "Counting your customers the easy way" and
"RFM and CLV"). Inputs are the usual RFM summary per customer:

* `frequency` x: repeat purchases (purchase periods after the first one),
* `recency` t_x: age of the customer at their last purchase (0 when x = 0),
* `T`: age of the customer at the end of the observation window,
* `monetary` m_x: mean value of the repeat purchases (Gamma-Gamma uses people with x > 0).

Identical (x, t_x, T) rows are collapsed with weights before fitting, so a million people
with daily data cost little more than a few thousand.

>>> import numpy as np
>>> m = BetaGeoModel().fit(np.array([0, 2, 5]), np.array([0.0, 20.0, 35.0]), np.array([40.0, 40.0, 40.0]))
>>> bool(0 < m.p_alive(np.array([2]), np.array([20.0]), np.array([40.0]))[0] <= 1)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special

from micromoments.errors import InputError

__all__ = ["BetaGeoModel", "GammaGammaModel", "customer_lifetime_value", "rfm_summary"]


def _arrays(*cols: object) -> list[np.ndarray]:
    return [np.asarray(c, dtype="float64") for c in cols]


def _collapse(*cols: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Unique rows of the given columns and how many times each occurs (the fit weights)."""
    stacked = np.column_stack(cols)
    uniq, counts = np.unique(stacked, axis=0, return_counts=True)
    return [uniq[:, i] for i in range(uniq.shape[1])], counts.astype("float64")


def _check_rft(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    if not (len(x) == len(t_x) == len(T)) or len(x) == 0:
        raise InputError("frequency, recency and T must be non-empty and the same length", where="clv")
    bad = (x < 0) | (t_x < 0) | (T <= 0) | (t_x > T + 1e-9) | ~np.isfinite(x + t_x + T)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"row {i}: need frequency >= 0, 0 <= recency <= T and T > 0, got "
                         f"x={x[i]}, t_x={t_x[i]}, T={T[i]}", where="clv", hint="check the RFM summary")


@dataclass
class BetaGeoModel:
    """BG/NBD: purchases follow a Poisson(λ) process, λ ~ Gamma(r, α); after each purchase the
    customer drops out with probability p ~ Beta(a, b).

    >>> import numpy as np
    >>> m = BetaGeoModel(params={"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    >>> round(float(m.p_alive(np.array([2]), np.array([30.43]), np.array([38.86]))[0]), 3)
    0.727
    """

    params: dict[str, float] = field(default_factory=dict)
    penalizer: float = 0.0
    log_likelihood_: float = float("nan")
    converged_: bool = False

    @staticmethod
    def log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """Per-customer log-likelihood (FHL 2005, eq. 6) for `params = (r, alpha, a, b)`."""
        r, alpha, a, b = params
        a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
        a2 = special.betaln(a, b + x) - special.betaln(a, b)
        a3 = -(r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
                          -np.inf)
        return a1 + a2 + np.logaddexp(a3, a4)

    def fit(self, frequency: object, recency: object, T: object, *, weights: object | None = None) -> "BetaGeoModel":
        """Maximum-likelihood fit (L-BFGS-B on log-parameters, Nelder-Mead polish)."""
        x, t_x, TT = _arrays(frequency, recency, T)
        _check_rft(x, t_x, TT)
        if weights is None:
            (x, t_x, TT), w = _collapse(x, t_x, TT)
        else:
            w = np.asarray(weights, dtype="float64")
        scale = max(float(TT.max()), 1e-9) / 10.0  # keep α near 1 while optimising; undone below
        xs, ts, Ts = x, t_x / scale, TT / scale
        n = w.sum()

        def nll(logp: np.ndarray) -> float:
            p = np.exp(logp)
            ll = float(np.dot(w, self.log_likelihood(p, xs, ts, Ts)))
            return -ll / n + self.penalizer * float(np.sum(p ** 2))

        best = None
        for start in (np.zeros(4), np.log([0.5, 1.0, 1.0, 3.0])):
            res = optimize.minimize(nll, start, method="L-BFGS-B")
            res = optimize.minimize(nll, res.x, method="Nelder-Mead",
                                    options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 4000})
            if best is None or res.fun < best.fun:
                best = res
        assert best is not None
        r, alpha_s, a, b = np.exp(best.x)
        self.params = {"r": float(r), "alpha": float(alpha_s * scale), "a": float(a), "b": float(b)}
        # The fit ran on rescaled times: each of the sum(x) purchase-time densities gains 1/scale.
        self.log_likelihood_ = float(-best.fun * n - np.dot(w, x) * np.log(scale))
        self.converged_ = bool(best.success)
        return self

    def _p(self) -> tuple[float, float, float, float]:
        if not self.params:
            raise InputError("the BG/NBD model is not fitted", where="clv", hint="call fit() first")
        p = self.params
        return p["r"], p["alpha"], p["a"], p["b"]

    def p_alive(self, frequency: object, recency: object, T: object) -> np.ndarray:
        """P(the customer is still active at T | x, t_x, T) (FHL 2005, eq. 11)."""
        r, alpha, a, b = self._p()
        x, t_x, TT = _arrays(frequency, recency, T)
        with np.errstate(divide="ignore", over="ignore"):
            log_ratio = np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + (r + x) * (np.log(alpha + TT) - np.log(alpha + t_x))
        return np.where(x > 0, 1.0 / (1.0 + np.exp(log_ratio)), 1.0)

    def expected_purchases(self, t: float, frequency: object, recency: object, T: object) -> np.ndarray:
        """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005, eq. 10)."""
        r, alpha, a, b = self._p()
        x, t_x, TT = _arrays(frequency, recency, T)
        z = t / (alpha + TT + t)
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        first = (a + b + x - 1) / (a - 1) * (1 - ((alpha + TT) / (alpha + TT + t)) ** (r + x) * hyp)
        return first * self.p_alive(x, t_x, TT)

    def expected_purchases_new(self, t: float) -> float:
        """E[purchases in (0, t]] for a customer just acquired (FHL 2005, eq. 9)."""
        r, alpha, a, b = self._p()
        z = t / (alpha + t)
        return float((a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1, z)))


@dataclass
class GammaGammaModel:
    """Gamma-Gamma spend model: a customer's order values are Gamma(p, ν) with ν ~ Gamma(q, γ).

    >>> import numpy as np
    >>> g = GammaGammaModel(params={"p": 6.25, "q": 3.74, "v": 15.45})
    >>> round(float(g.expected_average_value(np.array([2]), np.array([22.35]))[0]), 2)
    24.67
    """

    params: dict[str, float] = field(default_factory=dict)
    log_likelihood_: float = float("nan")

    @staticmethod
    def log_likelihood(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Per-customer log-likelihood of the mean order value `m` over `x` orders (up to a constant)."""
        p, q, v = params
        return (special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q) + q * np.log(v)
                + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(x * m + v))

    def fit(self, frequency: object, monetary: object) -> "GammaGammaModel":
        """Fit on customers with at least one repeat purchase and a positive mean value."""
        x, m = _arrays(frequency, monetary)
        keep = (x > 0) & (m > 0) & np.isfinite(m)
        if keep.sum() < 3:
            raise InputError(f"Gamma-Gamma needs at least 3 repeat customers with spend, got {int(keep.sum())}",
                             where="clv", hint="use a longer observation window")
        (x, m), w = _collapse(x[keep], m[keep])
        scale = float(np.median(m))  # fit on values near 1, then rescale v
        ms = m / scale
        n = w.sum()

        def nll(logp: np.ndarray) -> float:
            return -float(np.dot(w, self.log_likelihood(np.exp(logp), x, ms))) / n

        res = optimize.minimize(nll, np.zeros(3), method="L-BFGS-B")
        res = optimize.minimize(nll, res.x, method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 4000})
        p, q, v = np.exp(res.x)
        self.params = {"p": float(p), "q": float(q), "v": float(v * scale)}
        self.log_likelihood_ = float(-res.fun * n)
        return self

    def expected_average_value(self, frequency: object, monetary: object) -> np.ndarray:
        """E[mean order value | x, m_x]: shrinks the observed mean toward the population mean."""
        if not self.params:
            raise InputError("the Gamma-Gamma model is not fitted", where="clv", hint="call fit() first")
        p, q, v = self.params["p"], self.params["q"], self.params["v"]
        x, m = _arrays(frequency, monetary)
        m = np.nan_to_num(m, nan=0.0)
        population = p * v / (q - 1) if q > 1 else np.nan
        return np.where(x > 0, (p * (v + x * m)) / (p * x + q - 1), population)


def customer_lifetime_value(bg: BetaGeoModel, gg: GammaGammaModel, frequency: object, recency: object, T: object,
                            monetary: object, *, horizon: float = 365.0, step: float = 30.0,
                            discount_rate: float = 0.01, margin: float = 1.0) -> np.ndarray:
    """Discounted value of the purchases expected over `horizon` (same time unit as T), summed per
    `step` period with `discount_rate` per period, times the expected order value and `margin`.

    >>> import numpy as np
    >>> bg = BetaGeoModel(params={"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    >>> gg = GammaGammaModel(params={"p": 6.25, "q": 3.74, "v": 15.45})
    >>> float(customer_lifetime_value(bg, gg, [2], [30.43], [38.86], [22.35], horizon=52, step=4)[0]) > 0
    True
    """
    x, t_x, TT, m = _arrays(frequency, recency, T, monetary)
    value = gg.expected_average_value(x, m) * margin
    total = np.zeros_like(x)
    prev = np.zeros_like(x)
    n_steps = max(1, int(round(horizon / step)))
    for i in range(1, n_steps + 1):
        cum = bg.expected_purchases(i * step, x, t_x, TT)
        total += (cum - prev) / (1 + discount_rate) ** i
        prev = cum
    return total * value


def rfm_summary(person: object, day: object, revenue: object, end_day: float) -> dict[str, np.ndarray]:
    """RFM from (person, day number, revenue) purchase rows: the lifetimes convention (purchases on
    the same day are one purchase; frequency counts repeat days; monetary is the mean of the repeat
    days' totals). Returns arrays keyed `person`, `frequency`, `recency`, `T`, `monetary`.

    >>> s = rfm_summary(["a", "a", "b"], [0, 10, 5], [10.0, 30.0, 8.0], end_day=20)
    >>> s["frequency"].tolist(), s["recency"].tolist(), s["T"].tolist(), s["monetary"].tolist()
    ([1.0, 0.0], [10.0, 0.0], [20.0, 15.0], [30.0, 0.0])
    """
    import pandas as pd

    f = pd.DataFrame({"person": person, "day": np.asarray(day, dtype="float64"),
                      "revenue": np.asarray(revenue, dtype="float64")})
    daily = f.groupby(["person", "day"], sort=True).revenue.sum().reset_index()
    g = daily.groupby("person", sort=True)
    first, last, n = g.day.min(), g.day.max(), g.day.size()
    total, first_rev = g.revenue.sum(), g.revenue.first()
    freq = (n - 1).astype("float64")
    repeat_mean = ((total - first_rev) / freq.where(freq > 0)).fillna(0.0)
    return {"person": first.index.to_numpy(), "frequency": freq.to_numpy(),
            "recency": (last - first).to_numpy(dtype="float64"),
            "T": (end_day - first).to_numpy(dtype="float64"), "monetary": repeat_mean.to_numpy(dtype="float64")}


def add_clv(features: "object", *, horizon_days: float = 365.0, discount_rate: float = 0.01) -> "object":
    """Add `p_alive`, `expected_purchases_90d`, `expected_order_value` and `clv` to a person-features
    DataFrame holding `frequency`, `recency`, `T` and `monetary` (in days). Gamma-Gamma falls back
    to the mean order value when too few people bought twice.

    >>> import pandas as pd
    >>> f = pd.DataFrame({"frequency": [0, 1, 2, 0, 3], "recency": [0, 5, 9, 0, 20], "T": [30, 30, 25, 10, 28],
    ...                   "monetary": [0, 20, 30, 0, 25], "aov": [0, 20, 28, 0, 25]})
    >>> sorted(add_clv(f).columns)[-3:]
    ['monetary', 'p_alive', 'recency']
    """
    import pandas as pd

    out = features.copy()  # type: ignore[attr-defined]
    x = out["frequency"].fillna(0).to_numpy(dtype="float64")
    T = np.maximum(out["T"].fillna(1).to_numpy(dtype="float64"), 1.0)
    t_x = np.minimum(out["recency"].fillna(0).to_numpy(dtype="float64"), T)
    bg = BetaGeoModel().fit(x, t_x, T)
    m = out["monetary"].fillna(0).to_numpy(dtype="float64")
    try:
        gg = GammaGammaModel().fit(x, m)
        value = gg.expected_average_value(x, m)
    except InputError:
        gg = None
        aov = out["aov"].fillna(0).to_numpy(dtype="float64") if "aov" in out else m
        mean_aov = float(aov[aov > 0].mean()) if (aov > 0).any() else 0.0
        value = np.where(aov > 0, aov, mean_aov)
    out["p_alive"] = bg.p_alive(x, t_x, T)
    out["expected_purchases_90d"] = bg.expected_purchases(90.0, x, t_x, T)
    out["expected_order_value"] = value
    steps = max(1, int(round(horizon_days / 30.0)))
    total = np.zeros_like(x)
    prev = np.zeros_like(x)
    for i in range(1, steps + 1):
        cum = bg.expected_purchases(i * 30.0, x, t_x, T)
        total += (cum - prev) / (1 + discount_rate) ** i
        prev = cum
    out["clv"] = pd.Series(total * value, index=out.index).fillna(0.0)
    out.attrs["bgnbd"] = bg.params
    out.attrs["gamma_gamma"] = gg.params if gg else {}
    return out
