"""measure.stats against the references (scipy.stats, statsmodels) on many random inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst
from scipy import stats as sst
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from micromoments.measure import stats

TOL = 1e-6
samples = hst.lists(hst.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False), min_size=3, max_size=60)


def _close(a, b):
    assert np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=TOL, atol=TOL), (a, b)


@settings(max_examples=300, deadline=None)
@given(a=samples, b=samples, alpha=hst.sampled_from([0.01, 0.05, 0.1]))
def test_welch_matches_scipy(a, b, alpha):
    a, b = np.asarray(a), np.asarray(b)
    if a.var(ddof=1) < 1e-6 or b.var(ddof=1) < 1e-6:  # scipy returns nan on constant samples too
        return
    ours = stats.welch_ttest(a, b, alpha)
    ref = sst.ttest_ind(b, a, equal_var=False)
    _close(ours.t, ref.statistic)
    _close(ours.p_value, ref.pvalue)
    _close(ours.df, ref.df)
    lo, hi = ref.confidence_interval(1 - alpha)
    _close([ours.ci_low, ours.ci_high], [lo, hi])


@settings(max_examples=300, deadline=None)
@given(counts=hst.lists(hst.integers(1, 10_000), min_size=2, max_size=8),
       shares=hst.lists(hst.floats(0.05, 1.0), min_size=8, max_size=8))
def test_chi_square_gof_matches_scipy(counts, shares):
    obs = np.asarray(counts, float)
    share = np.asarray(shares[: obs.size])
    ref = sst.chisquare(obs, share / share.sum() * obs.sum())
    stat, p = stats.chi_square_gof(obs, share)
    _close(stat, ref.statistic)
    _close(p, ref.pvalue)


@settings(max_examples=200, deadline=None)
@given(table=hst.lists(hst.lists(hst.integers(1, 5_000), min_size=3, max_size=3), min_size=2, max_size=5))
def test_chi_square_independence_matches_scipy(table):
    t = np.asarray(table, float)
    ref = sst.chi2_contingency(t, correction=False)
    stat, p, dof = stats.chi_square_independence(t)
    _close([stat, p, dof], [ref.statistic, ref.pvalue, ref.dof])


@settings(max_examples=400, deadline=None)
@given(n=hst.integers(1, 1_000_000), frac=hst.floats(0, 1), alpha=hst.sampled_from([0.01, 0.05, 0.1, 0.2]))
def test_wilson_matches_statsmodels(n, frac, alpha):
    x = int(round(frac * n))
    lo, hi = stats.wilson_interval(x, n, alpha)
    rlo, rhi = proportion_confint(x, n, alpha=alpha, method="wilson")
    _close([lo, hi], [rlo, rhi])


def test_wilson_vectorised_equals_scalar():
    rng = np.random.default_rng(3)
    n = rng.integers(1, 10_000, 500)
    x = rng.binomial(n, 0.2)
    lo, hi = stats.wilson_interval(x, n)
    rlo, rhi = proportion_confint(x, n, method="wilson")
    _close(lo, rlo)
    _close(hi, rhi)


@settings(max_examples=300, deadline=None)
@given(na=hst.integers(5, 100_000), nb=hst.integers(5, 100_000), fa=hst.floats(0.01, 0.99), fb=hst.floats(0.01, 0.99))
def test_two_proportion_ztest_matches_statsmodels(na, nb, fa, fb):
    xa, xb = int(fa * na), int(fb * nb)
    if xa + xb in (0, na + nb):
        return
    z, p = stats.two_proportion_ztest(xa, na, xb, nb)
    rz, rp = proportions_ztest([xb, xa], [nb, na])
    _close([z, p], [rz, rp])


def test_delta_method_ratio_matches_simulation():
    """The delta-method variance of a ratio metric equals the spread of the ratio over many replications."""
    rng = np.random.default_rng(1)
    n, reps = 2_000, 3_000
    den = rng.poisson(8, (reps, n)) + 1
    num = rng.binomial(den, rng.beta(0.5, 4.5, (reps, n)))  # per-person CTR varies: clustered clicks
    ratios = num.sum(1) / den.sum(1)
    _, var = stats.ratio_mean_var(num.sum(1), den.sum(1), (num**2).sum(1), (den**2).sum(1), (num * den).sum(1), n)
    assert ratios.var() == pytest.approx(float(np.mean(var)), rel=0.08)  # 3,000 replications: ~2.6% noise
    naive = (ratios.mean() * (1 - ratios.mean())) / den[0].sum()  # pretends exposures are independent
    assert ratios.var() > 1.3 * naive and float(np.mean(var)) > 1.3 * naive


def test_relative_lift_delta_covers():
    """The delta-method interval of a relative lift covers the true lift ~95% of the time."""
    rng = np.random.default_rng(11)
    hits = 0
    for _ in range(400):
        a = rng.exponential(10.0, 3000)
        b = rng.exponential(11.0, 3000)
        _, _, lo, hi = stats.relative_lift(a.mean(), a.var(ddof=1) / a.size, b.mean(), b.var(ddof=1) / b.size)
        hits += lo <= 0.1 <= hi
    assert 0.92 <= hits / 400 <= 0.98


def test_chance_to_win_beta_and_normal_agree_on_large_samples():
    p_beta, loss_beta = stats.beta_chance_to_win(1000, 10_000, 1080, 10_000)
    pa, pb = 0.1, 0.108
    se = np.sqrt(pa * (1 - pa) / 10_000 + pb * (1 - pb) / 10_000)
    p_norm, loss_norm = stats.normal_chance_to_win(pb - pa, se)
    assert p_beta == pytest.approx(float(p_norm), abs=0.01)
    assert loss_beta == pytest.approx(float(loss_norm), abs=2e-4)
    assert 0.9 < p_beta < 0.99


def test_confidence_sequence_is_wider_than_fixed_interval_and_contains_estimate():
    lo, hi = stats.confidence_sequence(0.01, 1e-5, 1e-5)
    half_fixed = 1.96 * np.sqrt(1e-5)
    assert lo < 0.01 < hi and (hi - lo) / 2 > half_fixed
