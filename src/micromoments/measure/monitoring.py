"""Monitoring: a daily job that compares each moment type's volume, CTR and conversion with a seasonal
baseline, raises alerts for significant shifts, and checks the moment mix and the classifier's
confidence for drift.

Method, per series (moment type × metric) and day:

* expected value from the trailing `baseline_days` (default 28) before the day — a rate's pooled
  numerator / denominator; a volume's mean scaled by its day-of-week factor (the seasonal part);
* noise = the binomial (rates) or Poisson (volumes) variance, inflated by the over-dispersion the
  baseline days themselves show (φ = mean squared Pearson residual, at least 1 — a quasi-likelihood
  correction, McCullagh & Nelder 1989 §4.5), so ordinary day-to-day wobble does not alert;
* alert when the two-sided p-value is below α / (number of series checked that day) — Bonferroni,
  so α bounds the chance of any false alert per day — and the change is at least
  `min_relative_change` (default 20%), so huge volumes do not alert on trivial shifts.

Drift: the moment mix of the last 7 days against the baseline (chi-square + Jensen–Shannon distance),
and the classifier's confidence (share of low-confidence texts, two-proportion z-test; KS distance).
A rise in low-confidence texts means people ask things the intent model has not seen: add examples.

>>> # result = run_monitor(store, config); send_alerts(result.alerts, config)
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import ibis
import numpy as np
import pandas as pd
from scipy import stats as sst

from micromoments.journey.periods import complete_until, daily_tail
from micromoments.measure import stats

log = logging.getLogger("micromoments.monitoring")
CHECKOUT_EVENTS = ("checkout started", "begin_checkout")
LOW_CONFIDENCE = 0.5


@dataclass
class Alert:
    day: str
    series: str          # e.g. "buy" (a moment type) or "checkout"
    metric: str          # volume / conversion / ctr / checkout_conversion / moment_mix / confidence
    observed: float
    expected: float
    low: float           # the expected range at the alert threshold
    high: float
    p_value: float
    direction: str       # up / down
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MonitorResult:
    alerts: list[Alert]
    series: pd.DataFrame                       # day, series, metric, num, den (the inputs)
    checks: pd.DataFrame                       # one row per series × day checked, with z and p
    drift: list[dict[str, Any]] = field(default_factory=list)

    @property
    def alert_frame(self) -> pd.DataFrame:
        return pd.DataFrame([a.to_dict() for a in self.alerts], columns=list(Alert.__dataclass_fields__))


# --------------------------------------------------------------------------- the daily series
def daily_series_expr(episodes: Any, sessionized: Any, vocab: Any = None) -> Any:
    """Ibis: day, series, metric, num, den — moment volume and conversion per moment type, and the
    checkout → order conversion of sessions that started a checkout."""
    from micromoments.journey.vocab import EventVocabulary

    vocab = vocab or EventVocabulary()
    ep = episodes.mutate(day=episodes.start.date(), series=episodes.moment.fill_null("(none)"))
    per = ep.group_by(["day", "series"]).aggregate(n=ep.count(), conv=ep.converted.cast("int64").sum())
    vol = per.select("day", "series", metric=ibis.literal("volume"), num=per.n.cast("float64"),
                     den=ibis.literal(None).cast("float64"))
    conv = per.select("day", "series", metric=ibis.literal("conversion"), num=per.conv.cast("float64"),
                      den=per.n.cast("float64"))
    s = sessionized
    name = s.event.lower().strip()
    flags = s.group_by("session_id").aggregate(
        day=s.ts.min().date(),
        co=name.isin(list(CHECKOUT_EVENTS)).fill_null(False).cast("int64").max(),
        buy=vocab.is_conversion(s).cast("int64").max())
    flags = flags.filter(flags.co == 1)
    co = flags.group_by("day").aggregate(num=flags.buy.sum().cast("float64"), den=flags.count().cast("float64"))
    co = co.select("day", series=ibis.literal("checkout"), metric=ibis.literal("checkout_conversion"),
                   num=co.num, den=co.den)
    return ibis.union(vol, conv, co)



def ctr_series_expr(decisions: Any, exposures: Any, outcomes: Any) -> Any:
    """Ibis: day, series (moment), metric='ctr', num (clicks), den (exposures) from activation logs."""
    e = exposures.join(decisions.select("decision_id", "moment"), "decision_id")
    e = e.group_by([e.ts.date().name("day"), e.moment.fill_null("(none)").name("series")]).aggregate(
        den=e.count().cast("float64"))
    o = outcomes.filter(outcomes.kind == "click").join(decisions.select("decision_id", "moment"), "decision_id")
    o = o.group_by([o.ts.date().name("day"), o.moment.fill_null("(none)").name("series")]).aggregate(
        num=o.count().cast("float64"))
    j = e.left_join(o, ["day", "series"])
    return j.select("day", "series", metric=ibis.literal("ctr"), num=j.num.fill_null(0.0), den=j.den)


# --------------------------------------------------------------------------- detection
def _check_rate(num: np.ndarray, den: np.ndarray, t: int, base: np.ndarray) -> tuple[float, float, float]:
    """(observed, expected, z) for day t of a rate series, with over-dispersion from the baseline."""
    p0 = num[base].sum() / den[base].sum()
    if not 0 < p0 < 1:
        return num[t] / den[t], p0, 0.0
    res = (num[base] / den[base] - p0) / np.sqrt(p0 * (1 - p0) / den[base])
    phi = max(1.0, float(np.mean(res**2)))
    z = (num[t] / den[t] - p0) / np.sqrt(phi * p0 * (1 - p0) / den[t])
    return num[t] / den[t], p0, float(z)


def _check_volume(num: np.ndarray, dow: np.ndarray, t: int, base: np.ndarray) -> tuple[float, float, float]:
    """(observed, expected, z) for a daily count with a day-of-week seasonal factor."""
    level = num[base].mean()
    if level <= 0:
        return num[t], 0.0, 0.0
    # seasonal factor per weekday, shrunk toward 1 (4 weeks give only ~4 days per weekday)
    fac = np.ones(7)
    for d in range(7):
        same = base[dow[base] == d]
        if same.size:
            fac[d] = (num[same].sum() + 2 * level) / ((same.size + 2) * level)
    exp_base = level * fac[dow[base]]
    phi = max(1.0, float(np.mean((num[base] - exp_base) ** 2 / exp_base)))
    expected = level * fac[dow[t]]
    return num[t], expected, float((num[t] - expected) / np.sqrt(phi * expected))


def detect(series: pd.DataFrame, *, days: list[Any] | None = None, baseline_days: int = 28, alpha: float = 0.01,
           min_relative_change: float = 0.2, min_baseline_days: int = 14, min_den: float = 20) -> tuple[list[Alert], pd.DataFrame]:
    """Check `days` (default: the last day in `series`) of every series; return (alerts, checks).

    `series` has columns day, series, metric, num, den (den NaN for volumes). Days with no data in a
    series count as zero volume / no denominator.
    """
    if series.empty:
        return [], pd.DataFrame()
    frame = series.copy()
    frame["day"] = pd.to_datetime(frame["day"]).dt.normalize()
    all_days = pd.date_range(frame["day"].min(), frame["day"].max(), freq="D")
    check_days = sorted(pd.Timestamp(d).normalize() for d in (days or [all_days[-1]]))
    groups = list(frame.groupby(["series", "metric"], sort=True))
    # Bonferroni over the series checked each day; an alerted day leaves the later baselines,
    # so a two-day incident does not widen the expected range on its second day.
    threshold = alpha / max(len(groups), 1)
    zcrit = float(sst.norm.isf(threshold / 2))
    rows = []
    dow = all_days.day_of_week.to_numpy()
    for (name, metric), g in groups:
        g = g.set_index("day").reindex(all_days)
        num = g["num"].fillna(0.0).to_numpy(float)
        den = g["den"].to_numpy(float)
        is_vol = metric == "volume"
        usable = np.ones(len(all_days), bool) if is_vol else np.nan_to_num(den) >= 1
        for day in check_days:
            if day not in all_days:
                continue
            t = int(all_days.get_loc(day))
            base = np.arange(max(0, t - baseline_days), t)
            base = base[usable[base]]
            if base.size < min_baseline_days:
                continue
            if is_vol:
                obs, exp, z = _check_volume(num, dow, t, base)
            else:
                if not np.isfinite(den[t]) or den[t] < min_den:
                    continue
                obs, exp, z = _check_rate(num, np.nan_to_num(den), t, base)
            p = float(2 * sst.norm.sf(abs(z)))
            rel = obs / exp - 1 if exp > 0 else np.nan
            alert = p < threshold and abs(rel) >= min_relative_change
            if alert:
                usable[t] = False
            spread = abs((obs - exp) / z) if z else 0.0
            hi = exp + zcrit * spread
            rows.append({"day": day, "series": name, "metric": metric, "observed": obs, "expected": exp, "z": z,
                         "p_value": p, "den": den[t] if not is_vol else np.nan, "threshold": threshold,
                         "relative_change": rel, "alert": alert, "low": max(exp - zcrit * spread, 0.0),
                         "high": hi if is_vol else min(hi, 1.0)})
    checks = pd.DataFrame(rows)
    alerts: list[Alert] = []
    if checks.empty:
        return alerts, checks
    for r in checks[checks.alert].itertuples():
        what = {"volume": "moments", "conversion": "conversion rate", "ctr": "click-through rate",
                "checkout_conversion": "checkout → order conversion"}.get(r.metric, r.metric)
        fmt = (lambda v: f"{v:.0f}") if r.metric == "volume" else (lambda v: f"{v:.1%}")
        direction = "down" if r.observed < r.expected else "up"
        alerts.append(Alert(
            day=str(pd.Timestamp(r.day).date()), series=str(r.series), metric=str(r.metric),
            observed=float(r.observed), expected=float(r.expected), low=float(r.low), high=float(r.high),
            p_value=float(r.p_value), direction=direction,
            message=(f"{pd.Timestamp(r.day).date()}: {r.series} {what} {direction} to {fmt(r.observed)} "
                     f"(expected {fmt(r.expected)}, range {fmt(r.low)}–{fmt(r.high)}; "
                     f"{r.relative_change:+.0%}, p = {r.p_value:.1g})")))
    return alerts, checks


# --------------------------------------------------------------------------- drift
def mix_drift(counts_recent: pd.Series, counts_baseline: pd.Series, alpha: float = 0.01,
              min_js: float = 0.05) -> dict[str, Any]:
    """Moment-mix drift: chi-square test of recent counts against the baseline shares, and the
    Jensen–Shannon distance (Lin 1991) as the effect size; drift = significant and JS ≥ `min_js`."""
    from scipy.spatial.distance import jensenshannon

    idx = counts_recent.index.union(counts_baseline.index)
    r = counts_recent.reindex(idx, fill_value=0).to_numpy(float)
    b = counts_baseline.reindex(idx, fill_value=0).to_numpy(float) + 0.5  # no zero expected cells
    _, p = stats.chi_square_gof(r, b / b.sum()) if r.sum() > 0 else (0.0, 1.0)
    js = float(jensenshannon(r / max(r.sum(), 1), b / b.sum(), base=2)) if r.sum() > 0 else 0.0
    return {"check": "moment_mix", "p_value": p, "js_distance": js, "drift": bool(p < alpha and js >= min_js),
            "recent": dict(zip(map(str, idx), (r / max(r.sum(), 1)).round(4))),
            "baseline": dict(zip(map(str, idx), (b / b.sum()).round(4)))}


def confidence_drift(recent: np.ndarray, baseline: np.ndarray, alpha: float = 0.01, low: float = LOW_CONFIDENCE,
                     min_relative_change: float = 0.2) -> dict[str, Any]:
    """Classifier-confidence drift: the share of texts classified with confidence < `low`, recent vs
    baseline (pooled two-proportion z-test), plus the KS distance between the two distributions."""
    recent, baseline = np.asarray(recent, float), np.asarray(baseline, float)
    if recent.size == 0 or baseline.size == 0:
        return {"check": "confidence", "drift": False, "p_value": 1.0}
    xr, xb = int((recent < low).sum()), int((baseline < low).sum())
    z, p = stats.two_proportion_ztest(xb, baseline.size, xr, recent.size)
    share_r, share_b = xr / recent.size, xb / baseline.size
    ks = sst.ks_2samp(recent, baseline)
    rel = share_r / share_b - 1 if share_b > 0 else np.inf
    drift = bool(p < alpha and z > 0 and rel >= min_relative_change)
    return {"check": "confidence", "p_value": float(p), "low_share_recent": share_r, "low_share_baseline": share_b,
            "mean_recent": float(recent.mean()), "mean_baseline": float(baseline.mean()),
            "ks_distance": float(ks.statistic), "drift": drift,
            "advice": "the intent model meets texts it is unsure about: add labelled examples "
                      "(micromoments intent) for the new phrasings" if drift else ""}


# --------------------------------------------------------------------------- the job
def run_monitor(store: Any, config: Any = None, *, day: dt.date | None = None, backtest: bool = False,
                drift_days: int = 7, journey: Any = None) -> MonitorResult:
    """Build the daily series from the store and check `day` (default: the last day with data), or
    every day after the warm-up with `backtest=True`. Adds drift checks for the last `drift_days`."""
    from micromoments.journey.pipeline import JourneySettings, build_journey, load_events

    mon = getattr(config, "monitoring", None)
    baseline_days = int(getattr(mon, "baseline_days", 28))
    alpha = float(getattr(mon, "alpha", 0.01))
    min_change = float(getattr(mon, "min_relative_change", 0.2))
    settings = JourneySettings.from_config(config)
    events, has_moments = load_events(store)
    j = journey if journey is not None else build_journey(events, settings, con=store.ibis)
    series = store.ibis.execute(daily_series_expr(j.episodes, j.sessionized, settings.vocab))
    if store.has_table("decisions") and store.count("exposures") > 0:
        ctr = store.ibis.execute(ctr_series_expr(store.table("decisions"), store.table("exposures"),
                                                 store.table("outcomes")))
        series = pd.concat([series, ctr], ignore_index=True)
    if series.empty:
        return MonitorResult([], series, pd.DataFrame())
    series["day"] = pd.to_datetime(series["day"])
    # The first and last days with data are usually partial (the job runs mid-day; UTC cuts local
    # days), so they are neither checked nor used as baseline unless asked for explicitly; nor is any
    # trailing day the overview leaves out as incomplete (journey.periods, the same rule).
    all_days = sorted(series["day"].unique())
    if len(all_days) > 2 and day is None:
        until = min(pd.Timestamp(all_days[-1]), complete_until(daily_tail(store)))
        series = series[(series.day > all_days[0]) & (series.day < until)]
        all_days = sorted(series["day"].unique())
    if not all_days and day is None:  # not one complete day yet
        return MonitorResult([], series, pd.DataFrame())
    days = all_days[baseline_days // 2:] if backtest else [pd.Timestamp(day) if day else all_days[-1]]
    if not days:  # not enough history yet to check anything
        return MonitorResult([], series, pd.DataFrame())
    alerts, checks = detect(series, days=days, baseline_days=baseline_days, alpha=alpha,
                            min_relative_change=min_change)
    drift: list[dict[str, Any]] = []
    if has_moments:
        end = pd.Timestamp(days[-1]) + pd.Timedelta(days=1)
        cut = end - pd.Timedelta(days=drift_days)
        vol = series[series.metric == "volume"]
        recent = vol[(vol.day >= cut) & (vol.day < end)].groupby("series")["num"].sum()
        base = vol[(vol.day < cut) & (vol.day >= cut - pd.Timedelta(days=baseline_days))].groupby("series")["num"].sum()
        if base.sum() > 0:  # the window it compared, in complete days (the report names it)
            drift.append({**mix_drift(recent, base, alpha), "first_day": str(cut.date()),
                          "last_day": str((end - pd.Timedelta(days=1)).date())})
        if has_moments:
            # `load_events` gives the stamped moment columns (no join on a store classified now).
            since = (cut - pd.Timedelta(days=baseline_days)).to_pydatetime()
            conf = events.filter(events.confidence.notnull() & (events.ts >= since) & (events.ts < end.to_pydatetime()))
            c = store.ibis.execute(conf.select("ts", "confidence"))
            if not c.empty:
                is_recent = pd.to_datetime(c.ts) >= cut
                drift.append(confidence_drift(c.confidence[is_recent].to_numpy(), c.confidence[~is_recent].to_numpy(), alpha))
        for d in drift:
            if d.get("drift"):
                msg = (f"moment mix shifted (JS distance {d['js_distance']:.2f})" if d["check"] == "moment_mix" else
                       f"low-confidence share rose from {d['low_share_baseline']:.1%} to {d['low_share_recent']:.1%}: "
                       + d["advice"])
                alerts.append(Alert(str(pd.Timestamp(days[-1]).date()), "(all)", d["check"], 0.0, 0.0, 0.0, 0.0,
                                    float(d["p_value"]), "up", msg))
    return MonitorResult(alerts, series, checks, drift)


def send_alerts(alerts: list[Alert], config: Any = None, *, timeout: float = 5.0) -> dict[str, int]:
    """Send alerts to the log (always), the `[monitoring] webhook_url` (JSON POST) and `email_to`
    (through the `[activation]` SMTP settings). Returns how many went where; a failing channel is
    logged, never raised, so the daily job finishes."""
    import smtplib
    import urllib.request
    from email.message import EmailMessage

    sent = {"log": 0, "webhook": 0, "email": 0}
    for a in alerts:
        log.warning("micromoments alert: %s", a.message)
        sent["log"] += 1
    if not alerts:
        return sent
    mon = getattr(config, "monitoring", None)
    url = getattr(mon, "webhook_url", "")
    if url:
        body = json.dumps({"alerts": [a.to_dict() for a in alerts]}).encode()
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (configured URL)
                sent["webhook"] = len(alerts) if resp.status < 300 else 0
        except OSError as exc:
            log.error("alert webhook %s failed: %s", url, exc)
    to = getattr(mon, "email_to", "")
    if to:
        act = getattr(config, "activation", None)
        msg = EmailMessage()
        msg["Subject"] = f"micromoments: {len(alerts)} alert(s)"
        msg["From"] = getattr(act, "smtp_from", "micromoments@localhost")
        msg["To"] = to
        msg.set_content("\n".join(a.message for a in alerts))
        try:
            with smtplib.SMTP(getattr(act, "smtp_host", "localhost"), getattr(act, "smtp_port", 25), timeout=timeout) as s:
                if getattr(act, "smtp_starttls", False):
                    s.starttls()
                if getattr(act, "smtp_user", ""):
                    s.login(act.smtp_user, act.smtp_password)
                s.send_message(msg)
                sent["email"] = len(alerts)
        except OSError as exc:
            log.error("alert email to %s failed: %s", to, exc)
    return sent
