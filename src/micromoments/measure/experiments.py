"""Experiments: deterministic assignment (live and batch) and a complete, correct analysis.

Assignment hashes `salt:person_id` (BLAKE2b) to a point in [0, 1) and maps it through the cumulative
variant weights, so the same person always sees the same variant, in `/v1/decide` and in the batch
analysis alike, with no state to share.

Analysis works on *sufficient statistics per variant* (counts, sums, sums of squares and
cross-products), which the store computes with one Ibis aggregation; numpy does the rest. So a test
with 10M exposures is analysed in seconds. For each metric and each variant against control:

* difference with a Welch interval; relative lift with the delta method (ratio metrics such as
  CTR use the delta method for their variance too, since events within a person correlate);
* CUPED (Deng, Xu, Kohavi & Walker 2013) when a pre-period covariate is given;
* Bayesian chance-to-win and expected loss;
* an always-valid p-value and confidence sequence (mixture SPRT), so people may peek;
* a sample-ratio-mismatch chi-square on the assignment counts;
* Holm (or any `statsmodels.multipletests` method) correction across metrics.

>>> from micromoments.config import ExperimentConfig
>>> exp = ExperimentConfig(name="hero-banner", variants=["control", "new"], weights=[0.5, 0.5])
>>> assign("person-1", exp) == assign("person-1", exp)
True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sst

from micromoments.errors import ConfigError, InputError
from micromoments.measure import stats

# metric name -> (numerator column, denominator column or None for a per-person mean).
METRICS: dict[str, tuple[str, str | None]] = {
    "conversion": ("converted", None),          # share of people who converted after assignment
    "revenue": ("revenue", None),               # revenue per person
    "conversions": ("conversions", None),       # conversions per person
    "exposures": ("exposures", None),           # exposures per person (a guardrail)
    "ctr": ("clicks", "exposures"),             # clicks per exposure (ratio metric)
    "conversion_rate": ("conversions", "exposures"),
    "revenue_per_exposure": ("revenue", "exposures"),
}
BINARY = {"converted"}
PRE_PREFIX = "pre_"  # CUPED covariate column for metric column c: f"pre_{c}"


# --------------------------------------------------------------------------- assignment
def _weights(exp: Any) -> np.ndarray:
    variants = list(exp.variants)
    w = np.asarray(exp.weights if getattr(exp, "weights", None) else [1.0] * len(variants), dtype=float)
    if len(variants) < 2 or len(w) != len(variants) or (w < 0).any() or w.sum() <= 0:
        raise ConfigError(f"experiment '{exp.name}' needs ≥2 variants and one non-negative weight per variant",
                          where=f"[[experiments]] name = '{exp.name}'",
                          hint="e.g. variants = ['control', 'treatment'], weights = [0.5, 0.5]")
    return w / w.sum()


def bucket(person_id: str, salt: str) -> float:
    """The person's point in [0, 1) for this salt (first 8 bytes of BLAKE2b, uniform)."""
    digest = hashlib.blake2b(f"{salt}:{person_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def assign(person_id: str, experiment: Any) -> str:
    """The variant `person_id` gets in `experiment` (an `ExperimentConfig` or anything with
    `name`, `variants`, `weights`, `salt`). Deterministic, stateless, microseconds per call.

    >>> from micromoments.config import ExperimentConfig
    >>> assign("p-42", ExperimentConfig(name="t", variants=["a", "b"], weights=[0.0, 1.0]))
    'b'
    """
    cum = np.cumsum(_weights(experiment))
    u = bucket(str(person_id), getattr(experiment, "salt", "") or experiment.name)
    idx = int(np.searchsorted(cum, u, side="right"))
    return str(experiment.variants[min(idx, len(cum) - 1)])


def assign_many(person_ids: list[str] | np.ndarray, experiment: Any) -> np.ndarray:
    """`assign` for many people at once (same result, one cumulative-weight lookup)."""
    cum = np.cumsum(_weights(experiment))
    salt = getattr(experiment, "salt", "") or experiment.name
    u = np.fromiter((bucket(str(p), salt) for p in person_ids), dtype=float, count=len(person_ids))
    idx = np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)
    return np.asarray(experiment.variants, dtype=object)[idx]


def find_experiment(config: Any, name: str) -> Any:
    """The `[[experiments]]` entry called `name`, or a ConfigError listing the known ones."""
    for exp in getattr(config, "experiments", []) or []:
        if exp.name == name:
            return exp
    known = ", ".join(e.name for e in getattr(config, "experiments", []) or []) or "none"
    raise ConfigError(f"no experiment named '{name}'", where=getattr(config, "source_path", None) or "micromoments.toml",
                      hint=f"add an [[experiments]] entry with name = '{name}' (known: {known})")


# --------------------------------------------------------------------------- sufficient statistics
def summarize(units: pd.DataFrame, metrics: list[str], variant_col: str = "variant") -> pd.DataFrame:
    """Per-variant sufficient statistics from one row per person: `n` and, for every column c used,
    `s_c` (sum), `ss_c` (sum of squares); for ratio metrics `x_num_den` (cross sum); for CUPED
    covariates `pre_c` the sums `s_pre_c`, `ss_pre_c`, `x_c_pre_c`."""
    cols: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    for m in metrics:
        num, den = metric_columns(m)
        cols.add(num)
        if den:
            cols.add(den)
            pairs.add((num, den))
        elif PRE_PREFIX + num in units.columns:
            cols.add(PRE_PREFIX + num)
            pairs.add((num, PRE_PREFIX + num))
    missing = sorted(c for c in cols if c not in units.columns)
    if missing:
        raise InputError(f"the per-person data has no column(s) {missing}", where="experiment analysis",
                         hint=f"metrics need: {', '.join(sorted(cols))}")
    codes, variants = pd.factorize(units[variant_col], sort=True)
    k = len(variants)
    out: dict[str, np.ndarray] = {"n": np.bincount(codes, minlength=k).astype(float)}
    for c in sorted(cols):
        v = units[c].to_numpy(dtype=float, na_value=0.0)
        out[f"s_{c}"] = np.bincount(codes, weights=v, minlength=k)
        out[f"ss_{c}"] = np.bincount(codes, weights=v * v, minlength=k)
    for a, b in sorted(pairs):
        va = units[a].to_numpy(dtype=float, na_value=0.0)
        vb = units[b].to_numpy(dtype=float, na_value=0.0)
        out[f"x_{a}_{b}"] = np.bincount(codes, weights=va * vb, minlength=k)
    return pd.DataFrame(out, index=pd.Index(variants, name="variant"))


def metric_columns(metric: str) -> tuple[str, str | None]:
    if metric in METRICS:
        return METRICS[metric]
    if "/" in metric:  # a custom ratio: "clicks/exposures"
        num, den = metric.split("/", 1)
        return num.strip(), den.strip()
    return metric, None  # any per-person column


def _mean_var(s: np.ndarray, ss: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = s / n
    var = np.maximum((ss - n * mean * mean) / np.maximum(n - 1, 1), 0.0)
    return mean, var


# --------------------------------------------------------------------------- analysis
@dataclass
class Analysis:
    """Everything `analyze` found: the SRM check and one row per (metric, variant vs control)."""

    experiment: str
    control: str
    srm_p_value: float
    srm_counts: dict[str, int]
    expected_shares: dict[str, float]
    results: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def srm(self) -> bool:
        """True when the split differs from the configured weights (p < 0.001, Kohavi et al. 2020 §21)."""
        return self.srm_p_value < 0.001


def analyze_stats(summary: pd.DataFrame, metrics: list[str], *, control: str | None = None,
                  weights: dict[str, float] | None = None, alpha: float = 0.05, mde: float = 0.05,
                  correction: str = "holm", cuped: bool = True, primary: str | None = None,
                  experiment: str = "") -> Analysis:
    """Analyse per-variant sufficient statistics (the output of `summarize` or of `unit_stats`).

    `mde` (relative) sets the mSPRT mixing prior: τ = mde × |control mean|, the effect size the
    sequential test is tuned to detect fastest (Johari et al. 2017 §4.2).
    """
    from statsmodels.stats.multitest import multipletests

    variants = list(summary.index)
    if len(variants) < 2:
        raise InputError(f"experiment '{experiment}' has data for {len(variants)} variant(s)",
                         where="assignments", hint="it needs people assigned to at least two variants")
    control = control if control is not None else variants[0]
    if control not in variants:
        raise InputError(f"control variant '{control}' has no data", where="assignments",
                         hint=f"variants seen: {', '.join(map(str, variants))}")
    if summary.loc[control, "n"] < 2:
        raise InputError(f"control variant '{control}' has fewer than 2 people", where="assignments",
                         hint="wait for more traffic, or check that the live path assigns people")
    n = summary["n"].to_numpy(float)
    shares = np.asarray([(weights or {}).get(v, 1.0) for v in variants], dtype=float)
    _, srm_p = stats.chi_square_gof(n, shares)
    ci = summary.loc[control]
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for metric in metrics:
        num, den = metric_columns(metric)
        for v in variants:
            t = summary.loc[v]
            if v == control or t["n"] < 2:  # an empty variant shows up in the SRM check instead
                continue
            if den is None:
                pre = PRE_PREFIX + num
                use_cuped = cuped and f"s_{pre}" in summary.columns
                row = _mean_metric(ci, t, num, pre if use_cuped else None, summary)
            else:
                row = _ratio_metric(ci, t, num, den)
            m_c, var_mc, m_t, var_mt = row.pop("_mc"), row.pop("_vmc"), row.pop("_mt"), row.pop("_vmt")
            diff = m_t - m_c
            var_diff = var_mc + var_mt
            se = float(np.sqrt(var_diff))
            if "df" in row and np.isfinite(row["df"]):  # Welch-Satterthwaite t
                q = float(sst.t.isf(alpha / 2, row["df"]))
                p = float(2 * sst.t.sf(abs(diff / se), row["df"])) if se > 0 else 1.0
            else:  # ratio metrics: normal approximation (delta method)
                q = stats.z_value(alpha)
                p = float(2 * sst.norm.sf(abs(diff / se))) if se > 0 else 1.0
            lift_df = row["df"] if "df" in row and np.isfinite(row["df"]) else None
            lift, lift_se, lift_lo, lift_hi = stats.relative_lift(m_c, var_mc, m_t, var_mt, alpha, df=lift_df)
            lift_p = float(stats.lift_p_value(lift, lift_se, lift_df))
            if num in BINARY and den is None and not row.get("cuped"):
                ctw, loss = stats.beta_chance_to_win(int(ci[f"s_{num}"]), int(ci["n"]), int(t[f"s_{num}"]), int(t["n"]))
            else:
                ctw, loss = (float(x) for x in stats.normal_chance_to_win(diff, se))
            tau2 = (mde * abs(m_c)) ** 2 if m_c != 0 else var_diff
            av_p = float(np.minimum(1.0, np.exp(-stats.msprt_log_lr(diff, var_diff, tau2)))) if se > 0 else 1.0
            cs_lo, cs_hi = stats.confidence_sequence(diff, var_diff, tau2, alpha) if se > 0 else (np.nan, np.nan)
            rows.append({
                "metric": metric, "variant": v, "control_mean": m_c, "variant_mean": m_t,
                "n_control": int(ci["n"]), "n_variant": int(t["n"]),
                "diff": diff, "ci_low": diff - q * se, "ci_high": diff + q * se, "p_value": p,
                "lift": float(lift), "lift_ci_low": float(lift_lo), "lift_ci_high": float(lift_hi),
                "lift_p_value": lift_p,
                "chance_to_win": ctw, "expected_loss": loss,
                "always_valid_p": av_p, "cs_low": float(cs_lo), "cs_high": float(cs_hi),
                **row,
            })
    results = pd.DataFrame(rows)
    if not results.empty:
        ok = results["p_value"].notna()
        adj = np.full(len(results), np.nan)
        if ok.sum() == 1:  # nothing to correct (and multipletests spends 0.1 s in gc.collect)
            adj[ok.to_numpy()] = results.loc[ok, "p_value"].to_numpy()
        elif ok.any():
            adj[ok.to_numpy()] = multipletests(results.loc[ok, "p_value"].to_numpy(), alpha=alpha, method=correction)[1]
        results["p_adjusted"] = adj
        results["significant"] = results["p_adjusted"] < alpha
        results["primary"] = results["metric"] == (primary or metrics[0])
    if srm_p < 0.001:
        notes.append(f"sample ratio mismatch (chi-square p = {srm_p:.2g}): the split differs from the weights; "
                     "check assignment and logging before trusting any result")
    counts = {str(v): int(c) for v, c in zip(variants, n)}
    exp_shares = {str(v): float(s / shares.sum()) for v, s in zip(variants, shares)}
    return Analysis(experiment, str(control), float(srm_p), counts, exp_shares, results, notes)


def _mean_metric(c: pd.Series, t: pd.Series, col: str, pre: str | None, summary: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {}
    mc, vc = _mean_var(c[f"s_{col}"], c[f"ss_{col}"], c["n"])
    mt, vt = _mean_var(t[f"s_{col}"], t[f"ss_{col}"], t["n"])
    if pre is not None:
        # CUPED: Y' = Y - θ(X - E[X]) with θ = cov(X, Y)/var(X) pooled over all variants
        # (Deng et al. 2013, eq. 3). The shift E[X] is common, so differences stay unbiased.
        N = summary["n"].sum()
        sx, sxx = summary[f"s_{pre}"].sum(), summary[f"ss_{pre}"].sum()
        sy, sxy = summary[f"s_{col}"].sum(), summary[f"x_{col}_{pre}"].sum()
        var_x = (sxx - sx * sx / N) / (N - 1)
        cov = (sxy - sx * sy / N) / (N - 1)
        theta = cov / var_x if var_x > 0 else 0.0
        mx_all = sx / N

        def adj(r: pd.Series, m: float, v: float) -> tuple[float, float]:
            n = r["n"]
            mx, vx = _mean_var(r[f"s_{pre}"], r[f"ss_{pre}"], n)
            cxy = (r[f"x_{col}_{pre}"] - n * mx * m) / max(n - 1, 1)
            return m - theta * (mx - mx_all), max(v - 2 * theta * cxy + theta * theta * vx, 0.0)

        raw_var = vc / c["n"] + vt / t["n"]
        mc, vc = adj(c, mc, vc)
        mt, vt = adj(t, mt, vt)
        out["cuped"] = True
        out["cuped_variance_reduction"] = float(1 - (vc / c["n"] + vt / t["n"]) / raw_var) if raw_var > 0 else 0.0
    qc, qt = vc / c["n"], vt / t["n"]
    df = (qc + qt) ** 2 / (qc**2 / max(c["n"] - 1, 1) + qt**2 / max(t["n"] - 1, 1)) if qc + qt > 0 else np.inf
    out.update(_mc=float(mc), _vmc=float(qc), _mt=float(mt), _vmt=float(qt), df=float(df))
    return out


def _ratio_metric(c: pd.Series, t: pd.Series, num: str, den: str) -> dict[str, Any]:
    def one(r: pd.Series) -> tuple[float, float]:
        m, v = stats.ratio_mean_var(r[f"s_{num}"], r[f"s_{den}"], r[f"ss_{num}"], r[f"ss_{den}"],
                                    r[f"x_{num}_{den}"], r["n"])
        return float(m), float(v)

    mc, vc = one(c)
    mt, vt = one(t)
    return {"_mc": mc, "_vmc": vc, "_mt": mt, "_vmt": vt, "delta_method": True}


def analyze(units: pd.DataFrame, experiment: Any, metrics: list[str] | None = None, **kwargs: Any) -> Analysis:
    """Analyse one row per person (`variant` plus metric columns, optional `pre_<col>` covariates).

    >>> import numpy as np, pandas as pd
    >>> from micromoments.config import ExperimentConfig
    >>> rng = np.random.default_rng(0)
    >>> units = pd.DataFrame({"variant": rng.choice(["control", "treatment"], 4000),
    ...                       "converted": rng.random(4000) < 0.1, "revenue": rng.exponential(5, 4000)})
    >>> a = analyze(units, ExperimentConfig(name="t"), ["conversion", "revenue"])
    >>> list(a.results.metric), a.srm
    (['conversion', 'revenue'], False)
    """
    metrics = metrics or [experiment.primary_metric, *experiment.guardrails]
    w = _weights(experiment)
    weights = dict(zip(map(str, experiment.variants), w))
    units = units.assign(variant=units["variant"].astype(str))
    summary = summarize(units, metrics)
    for v in experiment.variants:  # a configured variant with nobody in it is an SRM too
        if str(v) not in summary.index and weights[str(v)] > 0:
            summary.loc[str(v)] = 0.0
    summary = summary.loc[[str(v) for v in experiment.variants if str(v) in summary.index]]
    return analyze_stats(summary, metrics,
                         control=kwargs.pop("control", str(experiment.variants[0])), weights=weights,
                         mde=kwargs.pop("mde", getattr(experiment, "mde", 0.05)),
                         primary=experiment.primary_metric, experiment=experiment.name, **kwargs)


# --------------------------------------------------------------------------- power
def sample_size(baseline: float, mde: float, *, alpha: float = 0.05, power: float = 0.8, kind: str = "proportion",
                sd: float | None = None, ratio: float = 1.0, relative: bool = True) -> int:
    """People needed in the control arm (treatment = `ratio` × that) to detect `mde`
    (relative to `baseline` unless `relative=False`) with a two-sided test.

    Proportions use Cohen's h with the normal power function; means use the t-test power
    (`statsmodels.stats.power`; Cohen 1988).

    >>> sample_size(0.10, 0.10)  # 10% -> 11% conversion
    14745
    """
    from statsmodels.stats.power import NormalIndPower, TTestIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    target = baseline * (1 + mde) if relative else baseline + mde
    if kind == "proportion":
        if not (0 < baseline < 1 and 0 < target < 1):
            raise InputError("proportions must be between 0 and 1", where="--baseline/--mde",
                             hint="give the baseline conversion rate as a fraction, e.g. 0.1")
        es = abs(proportion_effectsize(target, baseline))
        n = NormalIndPower().solve_power(effect_size=es, alpha=alpha, power=power, ratio=ratio)
    elif kind == "mean":
        if not sd or sd <= 0:
            raise InputError("a mean metric needs its standard deviation", where="--sd", hint="pass --sd 12.5")
        n = TTestIndPower().solve_power(effect_size=abs(target - baseline) / sd, alpha=alpha, power=power, ratio=ratio)
    else:
        raise InputError(f"unknown metric kind '{kind}'", where="--kind", hint="use proportion or mean")
    return int(np.ceil(n))


def power_at(n_control: int, baseline: float, mde: float, *, alpha: float = 0.05, kind: str = "proportion",
             sd: float | None = None, ratio: float = 1.0) -> float:
    """The power of a test with `n_control` people in control (see `sample_size`)."""
    from statsmodels.stats.power import NormalIndPower, TTestIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    target = baseline * (1 + mde)
    if kind == "proportion":
        return float(NormalIndPower().power(abs(proportion_effectsize(target, baseline)), n_control, alpha, ratio))
    return float(TTestIndPower().power(abs(target - baseline) / float(sd or 1.0), n_control, alpha, ratio))


# --------------------------------------------------------------------------- from the store
def unit_stats_expr(store: Any, experiment: str, *, pre_days: int = 14, vocab: Any = None) -> Any:
    """Ibis expression: one row per assigned person with exposures, clicks, conversions, converted,
    revenue after assignment, and `pre_*` covariates from the `pre_days` before it (for CUPED).

    Exposures and clicks come from the activation logs; conversions and revenue from whichever of the
    conversion events and the logged conversion outcomes saw more for that person (never both).
    """
    import ibis

    from micromoments.journey.vocab import EventVocabulary

    vocab = vocab or EventVocabulary()
    a = store.table("assignments")
    a = a.filter(a.experiment == experiment).select("person_id", "variant", a_ts="ts")
    ex = store.table("exposures")
    oc = store.table("outcomes")
    ev = store.table("events")
    conv = ev.filter(vocab.is_conversion(ev)).select("person_id", "ts", revenue=ev.revenue.fill_null(0.0))

    def after(t: Any, **aggs: Any) -> Any:
        j = a.join(t, "person_id")
        post = j.filter(j.ts >= j.a_ts)
        return post.group_by("person_id").aggregate(**{k: f(post) for k, f in aggs.items()})

    expo = after(ex, exposures=lambda t: t.count())
    outc = after(oc, clicks=lambda t: (t.kind == "click").cast("int64").sum(),
                 conversions_log=lambda t: (t.kind == "conversion").cast("int64").sum(),
                 revenue_log=lambda t: t.revenue.fill_null(0.0).sum(where=t.kind == "conversion"))
    evc = after(conv, conversions_ev=lambda t: t.count(), revenue_ev=lambda t: t.revenue.sum())
    j = a.join(conv, "person_id")
    pre = j.filter((j.ts < j.a_ts) & (j.ts >= j.a_ts - ibis.interval(days=pre_days)))
    pre = pre.group_by("person_id").aggregate(pre_conversions=pre.count(), pre_revenue=pre.revenue.sum())
    t = a
    for part in (expo, outc, evc, pre):
        t = t.left_join(part, "person_id").drop("person_id_right")
    # Purchases after assignment count whether or not a decision got the credit: the events hold every
    # purchase, the logged outcomes only attributed ones. Take the source that saw more, never both.
    c_ev, c_log = t.conversions_ev.fill_null(0), t.conversions_log.fill_null(0)
    conversions = ibis.greatest(c_ev, c_log)
    revenue = ibis.ifelse(c_ev >= c_log, t.revenue_ev.fill_null(0.0), t.revenue_log.fill_null(0.0))
    return t.select(
        "person_id", "variant",
        exposures=t.exposures.fill_null(0), clicks=t.clicks.fill_null(0),
        conversions=conversions, converted=(conversions > 0).cast("int64"), revenue=revenue,
        pre_converted=(t.pre_conversions.fill_null(0) > 0).cast("int64"),
        pre_conversions=t.pre_conversions.fill_null(0), pre_revenue=t.pre_revenue.fill_null(0.0),
    )


def analyze_store(store: Any, experiment: Any, metrics: list[str] | None = None, **kwargs: Any) -> Analysis:
    """Analyse `experiment` (an ExperimentConfig) from the store's `assignments` and activity."""
    units = store.ibis.execute(unit_stats_expr(store, experiment.name))
    if units.empty:
        raise InputError(f"no assignments for experiment '{experiment.name}'", where="assignments",
                         hint="the live path writes them when /v1/decide assigns people")
    return analyze(units, experiment, metrics, **kwargs)


# --------------------------------------------------------------------------- peeking simulation
def simulate_peeking(n_tests: int = 2000, peeks: int = 100, batch: int = 200, p_control: float = 0.10,
                     p_variant: float | None = None, alpha: float = 0.05, mde: float = 0.1,
                     seed: int = 0) -> dict[str, float]:
    """Simulate `n_tests` two-arm conversion tests, each looked at `peeks` times (every `batch`
    people per arm), and return the share that ever 'win' under naive peeking (a z-test at every
    look) and under the always-valid mSPRT p-value. With `p_variant=None` the tests are A/A, so
    both shares are false-positive rates. Vectorised: one binomial draw per test, arm and look.

    >>> r = simulate_peeking(200, 20, seed=1)
    >>> r["always_valid"] <= 0.05
    True
    """
    rng = np.random.default_rng(seed)
    p_variant = p_control if p_variant is None else p_variant
    xc = rng.binomial(batch, p_control, (n_tests, peeks)).cumsum(axis=1)
    xt = rng.binomial(batch, p_variant, (n_tests, peeks)).cumsum(axis=1)
    n = batch * np.arange(1, peeks + 1)
    pc, pt = xc / n, xt / n
    var = (pc * (1 - pc) + pt * (1 - pt)) / n
    diff = pt - pc
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 0, diff / np.sqrt(var), 0.0)
    naive = (2 * sst.norm.sf(np.abs(z)) < alpha).any(axis=1)
    avp = stats.always_valid_p(diff, np.where(var > 0, var, np.inf), (mde * p_control) ** 2)
    return {"naive": float(naive.mean()), "always_valid": float((avp <= alpha).any(axis=1).mean()),
            "tests": n_tests, "peeks": peeks}


# --------------------------------------------------------------------------- live
def live_assignments(person_id: str, experiments: list[Any], ts: Any = None) -> list[dict[str, Any]]:
    """For the live path (`/v1/decide`): the person's variant in every configured experiment, as
    `assignments` table rows (experiment, person_id, variant, ts). Pure and stateless: the activator
    logs the first row it sees per (experiment, person) through its log sink.

    >>> from micromoments.config import ExperimentConfig
    >>> [r["experiment"] for r in live_assignments("p1", [ExperimentConfig(name="hero")])]
    ['hero']
    """
    return [{"experiment": e.name, "person_id": str(person_id), "variant": assign(person_id, e), "ts": ts}
            for e in experiments if e.name]
