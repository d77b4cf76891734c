"""Published numbers, reproduced from the data files the reference packages themselves ship.

- gbstats (GrowthBook): its own frequentist fixtures, read out of its test files (vendored,
  MIT, tests/fixtures/references/gbstats/SOURCE.md): Welch difference, relative-lift interval and
  p-value to 1e-5, and its SRM check.
- ChannelAttribution: its own `Data.csv` (GPL-3, so fetched from the PyPI sdist at test time and
  cached, not vendored): first, last and linear touch exact, Markov within 0.1 %.
- lifetimes: the CDNOW summary (BG/NBD r, alpha, a, b to 1e-3 of Fader, Hardie & Lee 2005), and the
  CDNOW transaction log, ingested without ids, keeps every row and gives the same fit from the store.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from micromoments.measure import stats
from micromoments.measure.experiments import analyze_stats
from micromoments.measure.summary_stats import read_summary

REFS = Path(__file__).parent / "fixtures" / "references"
GBSTATS_FREQ = REFS / "gbstats" / "gbstats-0.8.0_tests_frequentist_test_tests.py.txt"
GBSTATS_SRM = REFS / "gbstats" / "gbstats-0.3.1_tests_test_gbstats.py.txt"


# --------------------------------------------------------------------------- gbstats
def _literal(node: ast.AST):
    return ast.literal_eval(node)


def _gbstats_cases() -> dict[str, dict]:
    """{test name: {"a": {...}, "b": {...}, "kind": ..., "absolute": bool, "ci": [...], "uplift": (mean, sd),
    "p_value": ...}} for gbstats' two-sided t-test fixtures, read from its test file."""
    tree = ast.parse(GBSTATS_FREQ.read_text())
    cases = {}
    for fn in ast.walk(tree):
        if not (isinstance(fn, ast.FunctionDef) and fn.name.startswith("test_two_sided_ttest")):
            continue
        case: dict = {"absolute": False}
        for call in ast.walk(fn):
            if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
                continue
            kw = {k.arg: k.value for k in call.keywords}
            if call.func.id in ("SampleMeanStatistic", "ProportionStatistic"):
                slot = "a" if "a" not in case else "b"
                case[slot] = {k: _literal(v) for k, v in kw.items()}
                case["kind"] = call.func.id
            elif call.func.id == "FrequentistConfig":
                case["absolute"] = _literal(kw["difference_type"]) == "absolute"
            elif call.func.id == "FrequentistTestResult":
                case["ci"] = _literal(kw["ci"])
                case["p_value"] = _literal(kw["p_value"])
                uplift = kw["uplift"]
                case["uplift"] = tuple(_literal(a) for a in uplift.args[1:3])
        if "ci" in case and "b" in case:
            cases[fn.name] = case
    return cases


def _mean_var(stat: dict, kind: str) -> tuple[float, float, float]:
    """(mean, variance, n) as gbstats defines them (a proportion's variance is p(1 - p))."""
    n = float(stat["n"])
    mean = stat["sum"] / n
    if kind == "ProportionStatistic":
        return mean, mean * (1 - mean), n
    return mean, (stat["sum_squares"] - stat["sum"] ** 2 / n) / (n - 1), n


def test_gbstats_fixtures_are_read():
    cases = _gbstats_cases()
    assert set(cases) == {"test_two_sided_ttest", "test_two_sided_ttest_absolute", "test_two_sided_ttest_binom"}
    assert cases["test_two_sided_ttest"]["ci"] == [-0.03526, 1.44989]


@pytest.mark.parametrize("name", sorted(_gbstats_cases()))
def test_gbstats_two_sided_ttest(name):
    case = _gbstats_cases()[name]
    ma, va, na = _mean_var(case["a"], case["kind"])
    mb, vb, nb = _mean_var(case["b"], case["kind"])
    welch = stats.welch_from_stats(ma, va, na, mb, vb, nb)
    if case["absolute"]:
        estimate, se, lo, hi, p = welch.diff, welch.se, welch.ci_low, welch.ci_high, welch.p_value
    else:
        estimate, se, lo, hi = stats.relative_lift(ma, va / na, mb, vb / nb, df=welch.df)
        p = stats.lift_p_value(estimate, se, welch.df)
    assert float(lo) == pytest.approx(case["ci"][0], abs=1e-5)
    assert float(hi) == pytest.approx(case["ci"][1], abs=1e-5)
    assert float(estimate) == pytest.approx(case["uplift"][0], abs=1e-5)
    assert float(se) == pytest.approx(case["uplift"][1], abs=1e-5)
    assert float(p) == pytest.approx(case["p_value"], abs=1e-5)


def test_gbstats_relative_fixture_through_analyze_summary_file(tmp_path):
    """The same fixture as a summary file through `experiment analyze --summary`'s code path."""
    case = _gbstats_cases()["test_two_sided_ttest"]
    path = tmp_path / "gb.csv"
    path.write_text("variant;n;sum;sum_squares\n"  # semicolons: the delimiter is sniffed
                    + "".join(f"{v};{s['n']};{s['sum']};{s['sum_squares']}\n" for v, s in (("a", case["a"]), ("b", case["b"]))))
    summary, metrics, weights = read_summary(path)
    r = analyze_stats(summary, metrics, weights=weights, cuped=False).results.iloc[0]
    assert [r.lift_ci_low, r.lift_ci_high] == pytest.approx(case["ci"], abs=1e-5)
    assert r.lift_p_value == pytest.approx(case["p_value"], abs=1e-5)
    absolute = _gbstats_cases()["test_two_sided_ttest_absolute"]
    assert [r.ci_low, r.ci_high] == pytest.approx(absolute["ci"], abs=1e-5)
    assert r.p_value == pytest.approx(absolute["p_value"], abs=1e-5)


def test_gbstats_srm():
    tree = ast.parse(GBSTATS_SRM.read_text())
    fn = next(f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "test_srm")
    call = next(c for c in ast.walk(fn) if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "check_srm")
    users, weights = (_literal(a) for a in call.args)
    expected = next(_literal(c.args[1]) for c in ast.walk(fn)
                    if isinstance(c, ast.Call) and getattr(c.func, "attr", "") == "assertEqual")
    _, p = stats.chi_square_gof(users, weights)
    assert round(p, 9) == expected  # gbstats rounds to 9 decimals: 0.000020079


# --------------------------------------------------------------------------- ChannelAttribution
CA_VERSION = "2.2.5"
CA_SDIST_SHA256 = "01c597dabdcd436e358a6c05a191151db2eaabf7c12a6875fb3a087dcf609448"
CA_DATA_SHA256 = "ebf235abf93a7fe0d1918a61ad30cfe39f4ef3fe2ed73784ced25b9120c3138d"
CA_REFERENCE = REFS / "channelattribution" / f"channelattribution-{CA_VERSION}-Data.json"


def _cache_dir() -> Path:
    base = os.environ.get("MICROMOMENTS_REFERENCE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "micromoments-references")
    return Path(base)


def _channelattribution_data() -> Path:
    """ChannelAttribution's own Data.csv, from its PyPI sdist (downloaded once, hash-checked, cached)."""
    target = _cache_dir() / f"ChannelAttribution-{CA_VERSION}" / "Data.csv"
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == CA_DATA_SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                           "--no-binary", "ChannelAttribution", f"ChannelAttribution=={CA_VERSION}",
                           "-d", str(target.parent)], capture_output=True, text=True, timeout=600)
    sdists = list(target.parent.glob("[cC]hannel[aA]ttribution-*.tar.gz"))
    if done.returncode != 0 or not sdists:
        pytest.skip(f"cannot download ChannelAttribution {CA_VERSION} from PyPI: {done.stderr.strip()[-300:]}")
    sdist = sdists[0]
    assert hashlib.sha256(sdist.read_bytes()).hexdigest() == CA_SDIST_SHA256, "the sdist on PyPI changed"
    with tarfile.open(sdist) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/data/Data.csv"))
        target.write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
    assert hashlib.sha256(target.read_bytes()).hexdigest() == CA_DATA_SHA256
    return target


@pytest.fixture(scope="module")
def ca_data() -> Path:
    return _channelattribution_data()


@pytest.mark.slow  # the first run downloads the sdist (~1 min); later runs read the cache
def test_channelattribution_data_csv_is_read_as_shipped(ca_data):
    """The package's own file is semicolon-separated: the delimiter is sniffed."""
    from micromoments.measure.attribution import read_paths

    p = read_paths(ca_data)
    with ca_data.open() as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    assert len(p) == len(rows) == 10_000
    assert p.conversions.sum() == pytest.approx(sum(float(r["total_conversions"]) for r in rows))


@pytest.mark.slow
def test_channelattribution_heuristics(ca_data):
    from micromoments.measure.attribution import attribute, read_paths

    ref = json.loads(CA_REFERENCE.read_text())
    table = attribute(read_paths(ca_data), ["first_touch", "last_touch", "linear"])
    ours = table.pivot_table(index="channel", columns="model", values="conversions", aggfunc="sum")
    ours_value = table.pivot_table(index="channel", columns="model", values="value", aggfunc="sum")
    for model, column in (("first_touch", "first_touch_conversions"), ("last_touch", "last_touch_conversions"),
                          ("linear", "linear_touch_conversions")):
        expected = pd.Series(ref["heuristic_models"][column], name=model)
        assert ours[model].reindex(expected.index).to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-9, abs=1e-9), model
        value = pd.Series(ref["heuristic_models"][column.replace("conversions", "value")])
        assert ours_value[model].reindex(value.index).to_numpy() == pytest.approx(value.to_numpy(), rel=1e-9, abs=1e-9)


@pytest.mark.slow
def test_channelattribution_markov(ca_data):
    """ChannelAttribution's Markov model simulates paths; ours computes the removal effects exactly.
    Against its converged run (conv_par 0.002, 5M paths) the credited shares agree within 0.1 %
    (total variation distance), and every channel with 250+ conversions within 0.5 %: what is left
    is the simulation's own noise (its default run differs from the converged one by up to 50 %)."""
    from micromoments.measure.attribution import attribute, read_paths

    ref = pd.Series(json.loads(CA_REFERENCE.read_text())["markov_model_converged"]["total_conversions"])
    table = attribute(read_paths(ca_data), ["markov"])
    ours = table.set_index("channel").conversions.reindex(ref.index)
    assert ours.sum() == pytest.approx(ref.sum(), rel=1e-3)
    distance = 0.5 * (ours / ours.sum() - ref / ref.sum()).abs().sum()
    assert distance < 1e-3
    big = ref >= 250
    assert ours[big].to_numpy() == pytest.approx(ref[big].to_numpy(), rel=5e-3)


# --------------------------------------------------------------------------- lifetimes / CDNOW
def _lifetimes_file(name: str) -> Path:
    lifetimes = pytest.importorskip("lifetimes")
    return Path(lifetimes.__file__).parent / "datasets" / name


FHL_2005 = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # Fader, Hardie & Lee (2005), CDNOW, weeks


def test_bgnbd_on_the_cdnow_summary():
    from micromoments.personas.clv import BetaGeoModel

    s = pd.read_csv(_lifetimes_file("cdnow_customers_summary.csv"))
    params = BetaGeoModel().fit(s.frequency, s.recency, s["T"]).params
    for key, published in FHL_2005.items():
        assert params[key] == pytest.approx(published, abs=1e-3), key


def _cdnow_log_csv(tmp_path: Path) -> tuple[Path, int]:
    """lifetimes' CDNOW sample transaction log (customer, date, CDs, dollars; no order id) as CSV."""
    rows = [line.split() for line in _lifetimes_file("CDNOW_sample.txt").read_text().splitlines() if line.strip()]
    path = tmp_path / "cdnow.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "timestamp", "quantity", "revenue", "event"])
        for customer, _, day, cds, dollars in rows:
            w.writerow([customer, f"{day[:4]}-{day[4:6]}-{day[6:]}", cds, dollars, "Order Completed"])
    return path, len(rows)


@pytest.mark.slow
def test_cdnow_log_without_ids_keeps_every_row_and_refits(tmp_path):
    from micromoments.personas.clv_fit import fit_store_clv
    from micromoments.store import Store
    from micromoments.store.ingest import ingest_file

    from micromoments.config import Config

    path, n_rows = _cdnow_log_csv(tmp_path)
    store = Store(str(tmp_path / "cdnow.duckdb"))
    config = Config()
    config.ingest.min_timestamp = "1990-01-01"  # CDNOW is from 1997-98; the default range starts in 2000
    result = ingest_file(store, path, config=config)
    assert (result.loaded, result.duplicates, result.quarantined) == (n_rows, 0, 0)
    assert result.repeats_kept > 0  # same customer, day, CDs and dollars: real repeat purchases
    assert ingest_file(store, path, config=config).loaded == 0
    dollars = sum(float(r.split()[4]) for r in _lifetimes_file("CDNOW_sample.txt").read_text().splitlines() if r.strip())
    assert store.duck.execute("SELECT sum(revenue) FROM events").fetchone()[0] == pytest.approx(dollars)
    import datetime as dt

    fit = fit_store_clv(store, as_of=dt.date(1997, 9, 30), unit_days=7.0)  # FHL's 39-week calibration
    assert fit.customers == 2357
    for key, published in FHL_2005.items():
        assert fit.bgnbd.params[key] == pytest.approx(published, abs=1e-3), key
    assert fit.bgnbd.log_likelihood_ == pytest.approx(-9582.4, abs=0.1)  # FHL 2005's LL


def test_numpy_is_the_one_in_the_lock():
    """The statistics above ran on the locked scientific stack (requirements.lock)."""
    lock = (Path(__file__).parents[1] / "requirements.lock").read_text()
    assert f"numpy=={np.__version__}" in lock and f"pandas=={pd.__version__}" in lock
