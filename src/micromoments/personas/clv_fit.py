"""`personas clv`: fit BG/NBD and Gamma-Gamma on the store's purchases and show the parameters.

Purchases are the conversion events of the journey vocabulary (`Order Completed`, `purchase`, ...)
with their revenue. The observation window runs from each customer's first purchase to `as_of`
(default: the day of the store's last event); purchases after it are left out, as in a
calibration/holdout split. Only customers who bought in the window are fitted, the lifetimes
convention (purchases on one day are one purchase; see `clv.rfm_summary`). Times are in days, or
weeks with `unit_days=7` (the unit of the published CDNOW fits).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any



from micromoments.errors import InputError
from micromoments.personas.clv import BetaGeoModel, GammaGammaModel, rfm_summary

__all__ = ["ClvFit", "fit_store_clv"]


@dataclass
class ClvFit:
    """The fitted models and the window they saw."""

    bgnbd: BetaGeoModel
    gamma_gamma: GammaGammaModel | None
    gamma_gamma_note: str
    customers: int
    repeat_customers: int
    first_day: dt.date
    as_of: dt.date
    unit: str

    def lines(self) -> list[str]:
        """The parameters as printed by `micromoments personas clv --params`."""
        b = self.bgnbd.params
        out = [f"observation window: {self.first_day} to {self.as_of} (times in {self.unit}); "
               f"{self.customers:,} customers, {self.repeat_customers:,} with repeat purchases",
               f"BG/NBD       r = {b['r']:.4f}  alpha = {b['alpha']:.4f}  a = {b['a']:.4f}  b = {b['b']:.4f}  "
               f"log-likelihood = {self.bgnbd.log_likelihood_:,.2f}"
               + ("" if self.bgnbd.converged_ else "  (the optimiser did not converge)")]
        if self.gamma_gamma is not None:
            g = self.gamma_gamma.params
            out.append(f"Gamma-Gamma  p = {g['p']:.4f}  q = {g['q']:.4f}  v = {g['v']:.4f}  "
                       f"log-likelihood = {self.gamma_gamma.log_likelihood_:,.2f}")
        else:
            out.append(f"Gamma-Gamma  not fitted: {self.gamma_gamma_note}")
        return out


def fit_store_clv(store: Any, config: Any = None, *, as_of: dt.date | None = None, unit_days: float = 1.0) -> ClvFit:
    """Fit both models on the store's purchases up to `as_of` (see the module doc)."""
    from micromoments.journey.pipeline import JourneySettings

    vocab = JourneySettings.from_config(config).vocab
    t = store.table("events")
    last_ts = store.ibis.execute(t.ts.max().name("m"))
    if last_ts is None or last_ts != last_ts:
        raise InputError("the store has no events", where=str(store.path), hint="ingest some first")
    end = as_of or last_ts.date()
    cutoff = dt.datetime.combine(end + dt.timedelta(days=1), dt.time())
    buys = store.ibis.execute(t.filter(vocab.is_conversion(t) & (t.ts < cutoff))
                              .select("person_id", "ts", revenue=t.revenue.fill_null(0.0)))
    if buys.empty:
        raise InputError(f"no purchases up to {end}", where=str(store.path),
                         hint="purchases are the journey vocabulary's conversion events ([journey] conversion_events)")
    day = (buys["ts"].astype("datetime64[s]").astype("int64") // 86400).to_numpy()
    end_day = (end - dt.date(1970, 1, 1)).days
    s = rfm_summary(buys["person_id"].astype(str).to_numpy(), day, buys["revenue"].to_numpy(float), end_day)
    x, t_x, T = s["frequency"], s["recency"] / unit_days, s["T"] / unit_days
    bg = BetaGeoModel().fit(x, t_x, T)
    gg, note = None, ""
    try:
        gg = GammaGammaModel().fit(x, s["monetary"])
    except InputError as exc:
        note = str(exc)
    first = dt.date(1970, 1, 1) + dt.timedelta(days=int(day.min()))
    return ClvFit(bg, gg, note, int(len(x)), int((x > 0).sum()), first, end,
                  "weeks" if unit_days == 7 else "days" if unit_days == 1 else f"units of {unit_days:g} days")


def parse_as_of(text: str | None) -> dt.date | None:
    """`--as-of` as a date.

    >>> parse_as_of("1997-09-30")
    datetime.date(1997, 9, 30)
    """
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"not a date: {text!r}", where="--as-of", hint="use YYYY-MM-DD") from exc
