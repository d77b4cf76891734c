"""BG/NBD and Gamma-Gamma by maximum likelihood reproduce the published CDNOW fits.

The CDNOW summary ships inside the `lifetimes` wheel (test extra); it is read from the installed
package directory, so nothing is vendored here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from micromoments.errors import InputError
from micromoments.personas.clv import BetaGeoModel, GammaGammaModel, add_clv, rfm_summary


def _dataset(name: str) -> pd.DataFrame:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or spec.origin is None:
        pytest.skip("the `lifetimes` wheel (test extra) is not installed")
    # Locate the file without importing lifetimes (it may not import with new pandas/scipy).
    path = Path(spec.origin).parent / "datasets" / name
    return pd.read_csv(path)


def test_bgnbd_reproduces_fader_hardie_lee_2005_on_cdnow():
    s = _dataset("cdnow_customers_summary.csv")
    assert len(s) == 2357
    m = BetaGeoModel().fit(s.frequency, s.recency, s["T"])
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for k, v in published.items():
        assert m.params[k] == pytest.approx(v, abs=1e-2), k
    assert m.log_likelihood_ == pytest.approx(-9582.4, abs=0.1)  # FHL 2005, section 5


def test_gamma_gamma_reproduces_published_cdnow_fit():
    g = _dataset("cdnow_customers_summary_with_transactions.csv")
    gg = GammaGammaModel().fit(g.x, g.zbar)
    for k, v in {"p": 6.25, "q": 3.74, "v": 15.45}.items():
        assert gg.params[k] == pytest.approx(v, abs=1e-2), k
    # Shrinkage: a one-order customer's expected value lies between their own mean and the population's.
    pop = gg.params["p"] * gg.params["v"] / (gg.params["q"] - 1)
    one = float(gg.expected_average_value(np.array([1]), np.array([100.0]))[0])
    assert pop < one < 100.0


def test_p_alive_and_expected_purchases_behave():
    s = _dataset("cdnow_customers_summary.csv")
    m = BetaGeoModel().fit(s.frequency, s.recency, s["T"])
    # Same frequency: the more recent the last purchase, the more likely alive.
    alive = m.p_alive([5, 5, 5], [35.0, 20.0, 5.0], [38.0, 38.0, 38.0])
    assert alive[0] > alive[1] > alive[2]
    assert m.p_alive([0], [0.0], [38.0])[0] == 1.0
    e = m.expected_purchases(39, s.frequency, s.recency, s["T"])
    assert np.all(e >= 0) and 0.5 < float(e.mean()) < 3.0


def test_rfm_summary_and_add_clv():
    s = rfm_summary(["a", "a", "a", "b"], [0, 0, 10, 4], [10.0, 5.0, 30.0, 8.0], end_day=20)
    assert s["frequency"].tolist() == [1.0, 0.0] and s["monetary"].tolist() == [30.0, 0.0]
    rng = np.random.default_rng(3)
    n = 400
    x = rng.poisson(1.0, n).astype(float)
    T = rng.uniform(10, 30, n)
    rec = np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0)
    f = pd.DataFrame({"frequency": x, "recency": rec, "T": T, "monetary": np.where(x > 0, rng.gamma(5, 10, n), 0.0)})
    f["aov"] = f.monetary
    out = add_clv(f)
    assert {"p_alive", "clv", "expected_purchases_90d"} <= set(out.columns)
    assert out.clv.ge(0).all() and out.p_alive.between(0, 1).all()


def test_bad_rfm_rows_are_named():
    with pytest.raises(InputError, match="row 1"):
        BetaGeoModel().fit([1, 2], [5.0, 50.0], [10.0, 10.0])
