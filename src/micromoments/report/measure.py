"""Report sections for measurement: metrics by moment/stage/channel (Wilson intervals), attribution
compared across models, experiments, and the monitoring alerts and drift checks.

>>> # sections = measure_sections(store, config)
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from micromoments.errors import MicromomentsError
from micromoments.report import charts
from micromoments.report.markup import plot_text
from micromoments.report.sections import Section, figure_html, section_provider

MODEL_NAMES = {"first_touch": "first touch", "last_touch": "last touch", "linear": "linear",
               "time_decay": "time decay", "position_based": "position 40/20/40", "markov": "Markov (data-driven)",
               "shapley": "Shapley (data-driven)"}


def whole(v: float) -> str:
    """Credited conversions, counts: whole numbers with separators (`1,716`), one convention per table."""
    return f"{v:,.0f}"


def p_value(p: Any) -> str:
    """A p-value as the pages write it: three decimals, `<0.001` below (never a bare `0.00`).

    >>> p_value(0.0004), p_value(0.2834)
    ('<0.001', '0.283')
    """
    if p is None or pd.isna(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _number(v: Any) -> str:
    """A cell: integers with separators, whole floats as integers, others with two decimals."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "—" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)
    if isinstance(v, float) and pd.isna(v):
        return "—"
    if isinstance(v, int) or float(v).is_integer():
        return f"{v:,.0f}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"


def _rows(frame: pd.DataFrame, columns: dict[str, str], fmt: Any = None) -> str:
    """An HTML table of `columns` (name -> header); `fmt(value) -> str` for every number when given."""
    head = "".join(f"<th>{html.escape(v)}</th>" for v in columns.values())
    body = []
    for _, r in frame.iterrows():
        cells = []
        for c in columns:
            v = r[c]
            number = isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_))
            text = fmt(v) if fmt is not None and number and not pd.isna(v) else _number(v)
            cells.append(f"<td class=\"num\">{html.escape(text)}</td>" if number else f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _with_interval(frame: pd.DataFrame, col: str) -> pd.Series:
    # Rates as everywhere else in the report (charts.pct: whole percents, one decimal under 1%).
    return pd.Series([f"{charts.pct(v)} ({charts.pct(lo)}–{charts.pct(hi)})" if pd.notna(v) else "—"
                      for v, lo, hi in zip(frame[col], frame[f"{col}_low"], frame[f"{col}_high"])], index=frame.index)


def rate_chart(frame: pd.DataFrame, dim: str, rate: str, title: str) -> go.Figure:
    """Bars of a rate per group with Wilson 95% error bars."""
    f = frame.sort_values(rate)
    fig = go.Figure(go.Bar(
        x=f[rate], y=[plot_text(v) for v in f[dim]], orientation="h", marker_color="#4C78A8",
        error_x=dict(type="data", symmetric=False, array=f[f"{rate}_high"] - f[rate], arrayminus=f[rate] - f[f"{rate}_low"]),
        hovertemplate="%{y}: %{x:.1%}<extra></extra>"))
    fig.update_layout(**charts.LAYOUT, title=title, xaxis_tickformat=".0%")
    return fig


def attribution_chart(table: pd.DataFrame) -> go.Figure:
    """Grouped bars: conversions credited to each channel by each model."""
    fig = go.Figure()
    for model, g in table.groupby("model", sort=False):
        fig.add_bar(name=plot_text(MODEL_NAMES.get(model, model)), x=[plot_text(c) for c in g["channel"]], y=g["conversions"],
                    hovertemplate="%{x}: %{y:,.0f} conversions<extra>" + plot_text(MODEL_NAMES.get(model, model)) + "</extra>")
    fig.update_layout(**charts.LAYOUT, barmode="group", yaxis_title="conversions credited", legend_orientation="h")
    return fig


@section_provider(order=20)
def measure_sections(store: Any, config: Any | None = None) -> list:
    """`Section`s for the report (metrics, attribution, experiments, monitoring); [] without events."""

    if not store.has_table("events") or store.count("events") == 0:
        return []
    out = []
    from micromoments.journey.pipeline import JourneySettings, build_journey, load_events
    from micromoments.measure.metrics import metrics_frame

    from micromoments.journey.conversion import add_conversions, explanation, window_days_of, window_text

    settings = JourneySettings.from_config(config)
    j = build_journey(load_events(store)[0], settings, con=store.ibis)  # once, for every section below
    days = window_days_of(config)
    j = add_conversions(j, settings.vocab, days)  # both conversion definitions, as in the rest of the report

    sec = Section("measure-metrics", "Metrics by moment, stage and channel", intro=(
        "How often each kind of micro-moment (or each piece of content shown, once playbooks run) leads to a "
        "purchase, with a 95% interval (Wilson): the range the true rate most likely lies in; where two "
        "ranges do not overlap, the difference is real, not chance."))
    try:
        by_moment, source = metrics_frame(store, ["moment"], config=config, journey=j)
        by_stage, _ = metrics_frame(store, ["stage"], config=config, journey=j)
        by_channel, _ = metrics_frame(store, ["channel"], config=config, journey=j)
        count = "exposures" if source == "activation" else "moments"
        for name, frame, dim in (("moment", by_moment, "moment"), ("stage", by_stage, "stage"),
                                 ("channel", by_channel, "channel")):
            if frame.empty:
                continue
            sec.figure += f"<h3>By {name}</h3>" + figure_html(
                rate_chart(frame, dim, "conversion_rate", f"bought in the same visit, by {name}"),
                f"chart-measure-{name}")
        same = "bought same visit (95% interval)" if source == "journeys" else "conversion rate (95% interval)"
        cols = {"moment": "moment", count: count, "conversions": "conversions", "rate": same}
        if "window_rate" in by_moment.columns:
            by_moment = by_moment.assign(window=_with_interval(by_moment, "window_rate"))
            cols["window"] = f"bought within {window_text(days)} (95% interval)"
        cols["revenue"] = "revenue"
        if "median_minutes_to_conversion" in by_moment.columns:
            by_moment = by_moment.assign(to_purchase=[charts.duration(m * 60 if pd.notna(m) else None)
                                                      for m in by_moment.median_minutes_to_conversion])
            cols["to_purchase"] = "median time to purchase"
        if by_moment.empty:
            sec.note = ("Micro-moments have not been classified yet, so there is nothing to measure by moment. Run "
                        "<code>micromoments classify-store</code> and build the report again.")
        else:
            sec.table = _rows(by_moment.assign(rate=_with_interval(by_moment, "conversion_rate")), cols)
        if source == "journeys":
            sec.notes.append("No content has been activated yet, so these are moment episodes found in the events; "
                             "exposures, clicks and CTR appear once playbooks log decisions.")
            sec.notes.append(explanation(days))
        elif j is not None:  # content was shown: the moments found in the events too, both definitions
            from micromoments.measure.metrics import moment_metrics

            found = store.ibis.execute(moment_metrics(j.episodes, j.sessionized, ["moment"], settings.vocab)
                                       .order_by("moment"))
            if not found.empty and "window_rate" in found:
                found = found.assign(rate=_with_interval(found, "conversion_rate"),
                                     window=_with_interval(found, "window_rate"))
                sec.table += "<h3>Micro-moments found in the events</h3>" + _rows(found, {
                    "moment": "moment", "moments": "moments", "rate": "bought same visit (95% interval)",
                    "window": f"bought within {window_text(days)} (95% interval)"})
                sec.notes.append(explanation(days))
    except MicromomentsError as exc:
        sec.note = str(exc)
    out.append(sec)

    from micromoments.measure import attribution as at

    att = Section("measure-attribution", "Attribution: which channels earn the conversions", intro=(
        "Each model shares the same conversions among the channels people came through before buying. Rules of thumb "
        "(first, last, linear, time decay, 40/20/40) against the data-driven models: <b>Markov</b> (how much "
        "conversion is lost if a channel is removed, solved exactly) and <b>Shapley</b> (fair shares of every "
        "combination of channels). Every model sums to the observed conversions; shares are rounded to whole "
        "conversions."))
    try:
        from micromoments.journey.sessions import sessions

        s = store.ibis.execute(sessions(j.sessionized, settings.vocab).select(
            "person_id", "session_no", "channel", "conversions", "revenue"))
        paths = at.store_paths(s)
        if paths.conversions.sum() > 0:
            table = at.attribute(paths)
            att.figure = figure_html(attribution_chart(table), "chart-measure-attribution")
            wide = table.pivot_table(index="channel", columns="model", values="conversions").reset_index()
            att.table = _rows(wide, {"channel": "channel", **{m: MODEL_NAMES[m] for m in MODEL_NAMES if m in wide}},
                              fmt=whole)
            mk = table[table.model == "markov"].set_index("channel").conversions
            lt = table[table.model == "last_touch"].set_index("channel").conversions
            gain = (mk - lt).sort_values()
            att.notes.append(f"Last touch under-credits <b>{gain.index[-1]}</b> by "
                             f"{gain.iloc[-1]:,.0f} conversions compared with the Markov model; "
                             f"it over-credits <b>{gain.index[0]}</b> by {-gain.iloc[0]:,.0f}.")
            ep = store.ibis.execute(j.episodes.select("person_id", "start", "moment", "conversions", "revenue"))
            mpaths = at.store_paths(ep, touch="moment", order="start", missing="other") if len(ep) else None
            if mpaths is not None and mpaths.conversions.sum() > 0:
                mt = at.attribute(mpaths, ["first_touch", "last_touch", "linear", "markov", "shapley"])
                mw = mt.pivot_table(index="channel", columns="model", values="conversions").reset_index()
                att.table += ("<h3>Which micro-moments earn the purchase</h3><p>The same models over the sequence of "
                              "moments (know, go, do, buy) before each purchase: last touch gives everything to the "
                              "final buy moment; the data-driven models credit the moments that led there.</p>")
                att.table += _rows(mw.rename(columns={"channel": "moment"}),
                                   {"moment": "moment", **{m: MODEL_NAMES[m] for m in MODEL_NAMES if m in mw}},
                                   fmt=whole)
        else:
            att.note = "No conversions yet."
    except MicromomentsError as exc:
        att.note = str(exc)
    out.append(att)

    exps = list(getattr(config, "experiments", []) or [])
    # e.g. the demo's test: read back from the store (a DuckDB one: the demo writes no lake)
    if not exps and store.has_table("assignments") and getattr(store, "engine", "duckdb") == "duckdb":
        from micromoments.demo.experiment import stored_experiments

        exps = stored_experiments(lambda q: store.duck.execute(q).df())
    if exps and store.has_table("assignments") and store.count("assignments") > 0:
        from micromoments.measure.experiments import analyze_store

        ex = Section("measure-experiments", "Experiments", intro=(
            "Each configured A/B test against its control: relative lift with a 95% interval, the p-value corrected "
            "across metrics, an always-valid p-value that stays honest when you look every day, and the Bayesian "
            "chance that the variant is better. In plain words: <b>lift</b> is how much better the variant did, "
            "as a share of the control; the <b>interval</b> is the range the true lift most likely lies in; a "
            "<b>p-value</b> is how likely a difference this big would be if the variant changed nothing (below "
            "0.05 counts as real); <b>chance to win</b> is how likely the variant is really better."))
        for e in exps:
            try:
                a = analyze_store(store, e)
            except MicromomentsError as exc:
                ex.notes.append(f"{e.name}: {exc}")
                continue
            r = a.results.assign(
                lift_ci=[f"{x:+.1%} ({lo:+.1%} to {hi:+.1%})" for x, lo, hi in
                         zip(a.results.lift, a.results.lift_ci_low, a.results.lift_ci_high)],
                ctw=a.results.chance_to_win.map(lambda v: f"{v:.0%}"),
                **{c: a.results[c].map(p_value) for c in ("p_adjusted", "always_valid_p") if c in a.results})
            ex.table += f"<h3>{html.escape(e.name)}</h3><p>{html.escape(e.hypothesis)}</p>" + _rows(
                r, {"metric": "metric", "variant": "variant", "lift_ci": "lift (95% CI)", "p_adjusted": "p (Holm)",
                    "always_valid_p": "always-valid p", "ctw": "chance to win"})
            ex.notes += list(a.notes)
        out.append(ex)

    if store.has_table("decisions") and store.count("decisions") > 0:
        from micromoments.measure.ope import evaluate_policy, greedy_policy, logged_decisions_expr

        ope = Section("measure-ope", "What if: a better content policy, evaluated off-policy", intro=(
            "From the decisions already logged (with the probability each content had of being chosen), what "
            "showing the best content for each moment type would have earned per decision: IPW, self-normalised "
            "IPW and doubly robust estimates with 95% bootstrap intervals. In plain words: each estimate re-weights "
            "the logged decisions as if the better policy had made them; the interval is the range the true value "
            "most likely lies in."))
        try:
            logs = store.ibis.execute(logged_decisions_expr(store.table("decisions"), store.table("outcomes")))
            pol = greedy_policy(logs) if not logs.empty else None
            if pol is not None and not pol.empty:
                ope.table = _rows(pol, {"moment": "moment", "content_id": "content to show"})
                ope.table += _rows(evaluate_policy(logs, pol, n_boot=500), {"estimator": "estimator", "value": "conversions per decision",
                                                                            "ci_low": "95% low", "ci_high": "95% high"})
            else:
                ope.note = "Not enough logged decisions with propensities yet (30 per moment and content)."
        except MicromomentsError as exc:
            ope.note = str(exc)
        out.append(ope)

    from micromoments.measure.monitoring import run_monitor

    mon = Section("measure-monitoring", "Monitoring", intro=(
        "Each moment type's daily volume and conversion, and the checkout step, against what the previous four weeks "
        "(same weekday) lead us to expect. Alerts are shifts too large to be day-to-day noise."))
    try:
        r = run_monitor(store, config, backtest=True, journey=j)
        recent = r.alert_frame.tail(15)
        mon.kpis = [("days checked", f"{r.checks.day.nunique() if len(r.checks) else 0}"), ("alerts", f"{len(r.alerts)}")]
        if not recent.empty:
            mon.table = _rows(recent, {"day": "day", "series": "series", "metric": "metric", "message": "what happened"})
        elif r.checks.empty:
            mon.note = "Not enough history yet: monitoring needs at least two weeks of data to learn what is normal."
        else:
            mon.note = "No alerts: every series stayed within its expected range."
        for d in r.drift:
            if d["check"] == "moment_mix":
                days = f" ({d['first_day']} to {d['last_day']})" if d.get("last_day") else ""
                mon.notes.append(f"Moment mix, last 7 complete days{days} vs the 4 weeks before: Jensen–Shannon distance "
                                 f"{d['js_distance']:.2f} ({'drift' if d['drift'] else 'stable'}); the distance "
                                 "runs from 0 (the same mix of know, go, do and buy) to 1 (nothing in common).")
            else:
                mon.notes.append(f"Intent classifier: {d.get('low_share_recent', 0):.1%} of recent texts classified with "
                                 f"low confidence, against {d.get('low_share_baseline', 0):.1%} before "
                                 f"({'add examples' if d['drift'] else 'stable'}).")
    except MicromomentsError as exc:
        mon.note = str(exc)
    out.append(mon)
    return out
