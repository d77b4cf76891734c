"""The statistics every measurement uses: plain numpy/scipy, vectorised, each citing its method.

All functions accept scalars or numpy arrays (broadcast together) and return floats or arrays.

>>> lo, hi = wilson_interval(45, 100)
>>> round(float(lo), 4), round(float(hi), 4)
(0.3561, 0.5476)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as st

ArrayLike = float | int | np.ndarray


def z_value(alpha: float = 0.05) -> float:
    """Two-sided standard-normal quantile: `z_value(0.05)` ≈ 1.96."""
    return float(st.norm.isf(alpha / 2))


def wilson_interval(successes: ArrayLike, n: ArrayLike, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion (Wilson 1927; Brown, Cai & DasGupta 2001).

    Matches `statsmodels.stats.proportion.proportion_confint(method="wilson")`. With `n == 0`
    the interval is (0, 1).

    >>> [round(float(v), 3) for v in wilson_interval(0, 10)]
    [0.0, 0.278]
    """
    x = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    z = z_value(alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, x / n, 0.0)
        denom = 1 + z * z / n
        center = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        lo = np.where(n > 0, np.clip(center - half, 0, 1), 0.0)
        hi = np.where(n > 0, np.clip(center + half, 0, 1), 1.0)
    return lo, hi


@dataclass
class WelchResult:
    """Difference `mean_b - mean_a` with its standard error, Welch–Satterthwaite df, t, p and CI."""

    diff: np.ndarray
    se: np.ndarray
    df: np.ndarray
    t: np.ndarray
    p_value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray


def welch_from_stats(mean_a: ArrayLike, var_a: ArrayLike, n_a: ArrayLike,
                     mean_b: ArrayLike, var_b: ArrayLike, n_b: ArrayLike, alpha: float = 0.05) -> WelchResult:
    """Welch's unequal-variance t-test from summary statistics (Welch 1947; Satterthwaite 1946).

    `var_*` are sample variances (ddof=1). Matches `scipy.stats.ttest_ind(b, a, equal_var=False)`.

    >>> r = welch_from_stats(1.0, 1.0, 50, 1.5, 2.0, 60)
    >>> round(float(r.diff), 2), round(float(r.p_value), 4)
    (0.5, 0.0326)
    """
    ma, va, na = (np.asarray(v, dtype=float) for v in (mean_a, var_a, n_a))
    mb, vb, nb = (np.asarray(v, dtype=float) for v in (mean_b, var_b, n_b))
    qa, qb = va / na, vb / nb
    se = np.sqrt(qa + qb)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (qa + qb) ** 2 / (qa**2 / (na - 1) + qb**2 / (nb - 1))
        diff = mb - ma
        t = diff / se
    p = 2 * st.t.sf(np.abs(t), df)
    q = st.t.isf(alpha / 2, df)
    return WelchResult(diff, se, df, t, p, diff - q * se, diff + q * se)


def welch_ttest(a: np.ndarray, b: np.ndarray, alpha: float = 0.05) -> WelchResult:
    """Welch's t-test on raw samples (`b` minus `a`)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return welch_from_stats(a.mean(), a.var(ddof=1), a.size, b.mean(), b.var(ddof=1), b.size, alpha)


def chi_square_gof(observed: np.ndarray, expected_share: np.ndarray | None = None) -> tuple[float, float]:
    """Pearson's chi-square goodness-of-fit test (Pearson 1900): `(statistic, p_value)`.

    `expected_share` (defaults to uniform) is rescaled to the observed total. Matches
    `scipy.stats.chisquare`. Used for the sample-ratio-mismatch check.

    >>> round(chi_square_gof([510, 490])[1], 4)
    0.5271
    """
    obs = np.asarray(observed, dtype=float)
    share = np.full(obs.shape, 1.0 / obs.size) if expected_share is None else np.asarray(expected_share, dtype=float)
    exp = share / share.sum() * obs.sum()
    stat = float(((obs - exp) ** 2 / exp).sum())
    return stat, float(st.chi2.sf(stat, obs.size - 1))


def chi_square_independence(table: np.ndarray) -> tuple[float, float, int]:
    """Pearson's chi-square test of independence on an r×c table, without continuity correction:
    `(statistic, p_value, dof)`. Matches `scipy.stats.chi2_contingency(table, correction=False)`."""
    obs = np.asarray(table, dtype=float)
    exp = obs.sum(1, keepdims=True) * obs.sum(0, keepdims=True) / obs.sum()
    stat = float(((obs - exp) ** 2 / exp).sum())
    dof = (obs.shape[0] - 1) * (obs.shape[1] - 1)
    return stat, float(st.chi2.sf(stat, dof)), dof


def two_proportion_ztest(x_a: ArrayLike, n_a: ArrayLike, x_b: ArrayLike, n_b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Pooled two-proportion z-test of `p_b - p_a` (Fleiss et al. 2003, §2.5): `(z, p_value)`.

    Matches `statsmodels.stats.proportion.proportions_ztest([x_b, x_a], [n_b, n_a])`.
    """
    xa, na, xb, nb = (np.asarray(v, dtype=float) for v in (x_a, n_a, x_b, n_b))
    pool = (xa + xb) / (na + nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (xb / nb - xa / na) / np.sqrt(pool * (1 - pool) * (1 / na + 1 / nb))
    return z, 2 * st.norm.sf(np.abs(z))


def ratio_mean_var(num_sum: ArrayLike, den_sum: ArrayLike, num_sq: ArrayLike, den_sq: ArrayLike,
                   cross: ArrayLike, n: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Delta-method variance of a ratio metric `sum(Y)/sum(X)` over `n` randomisation units
    (Deng, Knoblich & Lu 2018, "Applying the Delta Method in Metric Analytics", eq. 2).

    Takes per-unit sums: ΣY, ΣX, ΣY², ΣX², ΣXY. Returns `(ratio, variance_of_ratio)`.
    Units (people) are independent; events within a person are not, which is why this is needed.

    >>> r, v = ratio_mean_var(30, 100, 30, 120, 35, 50)
    >>> round(float(r), 2), float(v) > 0
    (0.3, True)
    """
    sy, sx, syy, sxx, sxy, n = (np.asarray(v, dtype=float) for v in (num_sum, den_sum, num_sq, den_sq, cross, n))
    my, mx = sy / n, sx / n
    vy = (syy - n * my * my) / (n - 1)
    vx = (sxx - n * mx * mx) / (n - 1)
    cxy = (sxy - n * mx * my) / (n - 1)
    r = my / mx
    var = (vy / mx**2 - 2 * my * cxy / mx**3 + my**2 * vx / mx**4) / n
    return r, var


def relative_lift(mean_a: ArrayLike, var_mean_a: ArrayLike, mean_b: ArrayLike, var_mean_b: ArrayLike,
                  alpha: float = 0.05, df: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Relative lift `mean_b / mean_a - 1` with its delta-method SE and CI
    (independent arms; Deng et al. 2018 §3.3): `(lift, se, ci_low, ci_high)`.

    `var_mean_*` are variances of the means (e.g. s²/n or a ratio metric's delta variance). With
    `df` (the Welch–Satterthwaite degrees of freedom of the difference) the interval uses Student's
    t, as gbstats' frequentist test does; without it (ratio metrics) the normal quantile.

    >>> lift, se, lo, hi = relative_lift(1396.87 / 3407, 14.6 / 3407, 2422.7 / 3461, 38.4 / 3461, df=5000)
    >>> round(float(lift), 4)
    0.7073
    """
    ma, va, mb, vb = (np.asarray(v, dtype=float) for v in (mean_a, var_mean_a, mean_b, var_mean_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = mb / ma - 1
        se = np.sqrt(vb / ma**2 + mb**2 * va / ma**4)
    q = z_value(alpha) if df is None else st.t.isf(alpha / 2, np.asarray(df, dtype=float))
    return lift, se, lift - q * se, lift + q * se


def lift_p_value(lift: ArrayLike, se: ArrayLike, df: ArrayLike | None = None) -> np.ndarray:
    """Two-sided p-value of `lift = 0` from the lift and its delta-method SE: Student's t with
    `df` (gbstats' frequentist relative test), or the normal without.

    >>> round(float(lift_p_value(0.70732, 0.37879, 4805.0)), 4)
    0.0619
    """
    lf, s = np.asarray(lift, dtype=float), np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.abs(lf / s)
    p = 2 * (st.norm.sf(u) if df is None else st.t.sf(u, np.asarray(df, dtype=float)))
    return np.where(s > 0, p, np.nan)


def normal_chance_to_win(diff: ArrayLike, se: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Bayesian chance that B beats A and the expected loss of shipping B, under a flat prior and
    a normal posterior `N(diff, se²)` for `mean_b - mean_a` (Stucchio 2015, "Bayesian A/B testing at VWO").

    Expected loss = E[max(A - B, 0)] = se·φ(d/se) − d·Φ(−d/se).

    >>> p, loss = normal_chance_to_win(0.0, 1.0)
    >>> round(float(p), 2), round(float(loss), 3)
    (0.5, 0.399)
    """
    d, s = np.asarray(diff, dtype=float), np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = d / s
    return st.norm.cdf(u), s * st.norm.pdf(u) - d * st.norm.cdf(-u)


def beta_chance_to_win(x_a: int, n_a: int, x_b: int, n_b: int, draws: int = 200_000,
                       seed: int = 0) -> tuple[float, float]:
    """Chance-to-win and expected loss for two conversion rates with Beta(1+x, 1+n−x) posteriors,
    by Monte Carlo from the posteriors (Stucchio 2015). Seeded, so the result is reproducible."""
    rng = np.random.default_rng(seed)
    a = rng.beta(1 + x_a, 1 + n_a - x_a, draws)
    b = rng.beta(1 + x_b, 1 + n_b - x_b, draws)
    return float((b > a).mean()), float(np.maximum(a - b, 0).mean())


def msprt_log_lr(diff: ArrayLike, var_diff: ArrayLike, tau2: ArrayLike) -> np.ndarray:
    """Log of the mixture sequential probability ratio for `H0: δ = 0` with a normal mixing
    prior `δ ~ N(0, τ²)` on an asymptotically normal estimate `diff ~ N(δ, V)`
    (Robbins 1970; Johari, Koomen, Pekelis & Walsh 2017, "Peeking at A/B tests", eq. 11):

        Λ = sqrt(V / (V + τ²)) · exp(τ² d² / (2 V (V + τ²)))

    With equal arms, V = 2σ²/n, this is exactly Johari et al.'s two-sample form.
    """
    d, v, t2 = (np.asarray(x, dtype=float) for x in (diff, var_diff, tau2))
    return 0.5 * np.log(v / (v + t2)) + t2 * d * d / (2 * v * (v + t2))


def always_valid_p(diff: np.ndarray, var_diff: np.ndarray, tau2: float | np.ndarray) -> np.ndarray:
    """Always-valid p-values along the last axis (the sequence of looks): p_n = min(1, min_{k≤n} 1/Λ_k)
    (Johari et al. 2017, §3). Rejecting when p_n ≤ α at *any* look keeps the false-positive rate ≤ α."""
    lr = msprt_log_lr(diff, var_diff, tau2)
    return np.minimum(1.0, np.exp(-np.maximum.accumulate(np.nan_to_num(lr, nan=-np.inf), axis=-1)))


def confidence_sequence(diff: ArrayLike, var_diff: ArrayLike, tau2: ArrayLike,
                        alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """The (1−α) confidence sequence from inverting the normal-mixture SPRT (Howard, Ramdas,
    McAuliffe & Sekhon 2021, eq. 14): valid at every look simultaneously.

        d ± sqrt( 2V(V+τ²)/τ² · log( sqrt((V+τ²)/V) / α ) )
    """
    d, v, t2 = (np.asarray(x, dtype=float) for x in (diff, var_diff, tau2))
    half = np.sqrt(2 * v * (v + t2) / t2 * np.log(np.sqrt((v + t2) / v) / alpha))
    return d - half, d + half
