"""Measure commands: metrics, experiment analyze/power/assign, attribution, monitor."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from micromoments.cli._app import CONFIG_OPTION, DB_OPTION, app, console, friendly_errors

experiment_app = typer.Typer(help="A/B tests: analyse, size, assign.", no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")
OUTPUT_OPTION = typer.Option(None, "--output", "-o", help="Also write the full result to this CSV file.")


def _store(db: Optional[Path], config_path: Optional[Path], read_only: bool = True) -> tuple[Any, Any]:
    from micromoments.config import load_config
    from micromoments.store import open_configured

    cfg = load_config(config_path)
    return open_configured(cfg, db, read_only=read_only), cfg


def _date(value: Optional[str], name: str) -> Optional[dt.datetime]:
    from micromoments.errors import InputError

    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"not a date: {value!r}", where=name, hint="use YYYY-MM-DD") from exc


def _compact(frame: Any) -> Any:
    """Rates with their Wilson interval in one column: '12.3% [10.1%, 14.5%]'."""
    out = frame.copy()
    for col in list(out.columns):
        if f"{col}_low" in out.columns and f"{col}_high" in out.columns:
            out[col] = [("" if v != v else f"{v:.1%} [{lo:.1%}, {hi:.1%}]")
                        for v, lo, hi in zip(out[col], out[f"{col}_low"], out[f"{col}_high"])]
            out = out.drop(columns=[f"{col}_low", f"{col}_high"])
    return out.drop(columns=[c for c in ("median_minutes_to_conversion",) if c in out.columns])


def _show(frame: Any, title: str, output: Optional[Path], limit: int = 40) -> None:
    shown = _compact(frame)
    table = Table(title=f"{title} ({len(frame)} rows)")
    for col in shown.columns:
        table.add_column(str(col), overflow="fold")
    for row in shown.head(limit).itertuples(index=False):
        table.add_row(*[((f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}") if isinstance(v, float) else ("" if v is None else str(v))) for v in row])
    console.print(table)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(output, index=False)
        console.print(f"wrote {output}")


@app.command("metrics")
@friendly_errors
def metrics_cmd(
    by: str = typer.Option("moment", help="Comma-separated: moment, stage, channel, content, playbook, persona, day."),
    start: Optional[str] = typer.Option(None, help="First day (YYYY-MM-DD)."),
    end: Optional[str] = typer.Option(None, help="Day after the last (YYYY-MM-DD)."),
    engagement: bool = typer.Option(False, help="Show engagement per session and return rate instead."),
    output: Optional[Path] = OUTPUT_OPTION, db: Optional[Path] = DB_OPTION, config_path: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Exposures, clicks, CTR, conversions, revenue (with Wilson intervals) by moment, stage, channel, ..."""
    from micromoments.measure.metrics import metrics_frame

    store, cfg = _store(db, config_path)
    dims = [b.strip() for b in by.split(",") if b.strip()]
    s, e = _date(start, "--start"), _date(end, "--end")
    if engagement:
        from micromoments.journey.pipeline import JourneySettings, build_journey, load_events
        from micromoments.journey.sessions import sessions
        from micromoments.measure.metrics import engagement as eng

        settings = JourneySettings.from_config(cfg)
        j = build_journey(load_events(store)[0], settings, con=store.ibis)
        sess = sessions(j.sessionized, settings.vocab)
        sess = sess.left_join(j.sessions.select("session_id", "stage", "moment"), "session_id").drop("session_id_right")
        personas = store.table("personas") if "persona" in dims and store.has_table("personas") else None
        frame = store.ibis.execute(eng(sess, dims, personas, s, e).order_by(dims) if dims else eng(sess, dims, personas, s, e))
        _show(frame, "engagement", output)
        return
    frame, source = metrics_frame(store, dims, config=cfg, start=s, end=e)
    note = "activation logs" if source == "activation" else "moment episodes (no activation logs yet)"
    _show(frame, f"metrics from {note}", output)


def _results_table(a: Any) -> Table:
    t = Table(title=f"experiment {a.experiment}: each variant vs {a.control}")
    cols = ["metric", "variant", "control_mean", "variant_mean", "lift", "ci", "lift p", "p_value", "p_adjusted",
            "always_valid_p", "chance_to_win", "expected_loss"]
    for c in cols:
        t.add_column(c)
    for r in a.results.itertuples():
        t.add_row(("★ " if r.primary else "") + r.metric, str(r.variant), f"{r.control_mean:.4g}", f"{r.variant_mean:.4g}",
                  f"{r.lift:+.2%}", f"[{r.lift_ci_low:+.2%}, {r.lift_ci_high:+.2%}]", f"{r.lift_p_value:.3g}",
                  f"{r.p_value:.3g}", f"{r.p_adjusted:.3g}", f"{r.always_valid_p:.3g}", f"{r.chance_to_win:.1%}",
                  f"{r.expected_loss:.3g}")
    return t


@experiment_app.command("analyze")
@friendly_errors
def experiment_analyze(
    name: Optional[str] = typer.Argument(None, help="The [[experiments]] name in micromoments.toml "
                                                    "(not needed with --summary)."),
    metrics: Optional[str] = typer.Option(None, help="Comma-separated metrics (default: primary + guardrails)."),
    summary: Optional[Path] = typer.Option(None, "--summary", help="Analyse per-variant summary statistics from this "
                                                                   "file instead of the store: variant,n,sum,sum_squares "
                                                                   "or variant,n,conversions (optional metric, weight)."),
    control: Optional[str] = typer.Option(None, help="With --summary: the control variant (default: the first row's)."),
    delimiter: Optional[str] = typer.Option(None, "--delimiter", help="With --summary: the column separator "
                                                                      "(default: sniffed)."),
    alpha: float = typer.Option(0.05, help="Significance level."),
    correction: str = typer.Option("holm", help="Multiple-comparison method (statsmodels multipletests)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    db: Optional[Path] = DB_OPTION, config_path: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Lift with Welch/delta-method intervals, CUPED, chance-to-win, always-valid p, SRM check."""
    from micromoments.errors import InputError
    from micromoments.measure.experiments import analyze_stats, analyze_store, find_experiment

    exp = None
    if summary is not None:
        from micromoments.measure.summary_stats import read_summary

        stats_frame, found, weights = read_summary(summary, delimiter)
        ms = [m.strip() for m in metrics.split(",")] if metrics else found
        a = analyze_stats(stats_frame, ms, control=control, weights=weights, alpha=alpha, correction=correction,
                          cuped=False, experiment=name or summary.stem)
    else:
        if not name:
            raise InputError("no experiment named", where="experiment analyze",
                             hint="give the [[experiments]] name, or --summary FILE with per-variant statistics")
        store, cfg = _store(db, config_path)
        exp = find_experiment(cfg, name)
        ms = [m.strip() for m in metrics.split(",")] if metrics else None
        a = analyze_store(store, exp, ms, alpha=alpha, correction=correction)
    if as_json:
        console.print_json(json.dumps({"experiment": a.experiment, "control": a.control, "srm_p_value": a.srm_p_value,
                                       "counts": a.srm_counts, "notes": a.notes,
                                       "results": json.loads(a.results.to_json(orient="records"))}))
        return
    if exp is not None and exp.hypothesis:
        console.print(f"[bold]hypothesis:[/] {exp.hypothesis}")
    console.print(f"people per variant: {a.srm_counts} (expected shares {a.expected_shares}); SRM p = {a.srm_p_value:.3g}")
    console.print(_results_table(a))
    for n in a.notes:
        console.print(f"[bold red]warning:[/] {n}")


@experiment_app.command("power")
@friendly_errors
def experiment_power(
    baseline: float = typer.Option(..., help="Control value: a rate (0.04) or a mean (with --kind mean)."),
    mde: float = typer.Option(0.05, help="Smallest relative effect worth detecting (0.05 = +5%)."),
    alpha: float = typer.Option(0.05), power: float = typer.Option(0.8),
    kind: str = typer.Option("proportion", help="proportion or mean."),
    sd: Optional[float] = typer.Option(None, help="Standard deviation per person (means)."),
    ratio: float = typer.Option(1.0, help="Treatment size / control size."),
    daily: Optional[int] = typer.Option(None, help="People entering the test per day, to print the duration."),
) -> None:
    """People needed per variant (and days, with --daily) to detect the effect."""
    from micromoments.measure.experiments import sample_size

    n = sample_size(baseline, mde, alpha=alpha, power=power, kind=kind, sd=sd, ratio=ratio)
    total = n + int(round(n * ratio))
    console.print(f"control: {n:,} people; treatment: {int(round(n * ratio)):,}; total {total:,}")
    if daily:
        console.print(f"≈ {total / daily:.1f} days at {daily:,} people a day")


@experiment_app.command("assign")
@friendly_errors
def experiment_assign(name: str = typer.Argument(...), person_id: str = typer.Argument(...),
                      config_path: Optional[Path] = CONFIG_OPTION) -> None:
    """The variant a person gets (the same hash /v1/decide uses)."""
    from micromoments.config import load_config
    from micromoments.measure.experiments import assign, find_experiment

    console.print(assign(person_id, find_experiment(load_config(config_path), name)))


@app.command("attribution")
@friendly_errors
def attribution_cmd(
    paths: Optional[Path] = typer.Option(None, "--paths", help="ChannelAttribution CSV: path,total_conversions,"
                                                              "total_conversion_value,total_null (default: the store)."),
    models: str = typer.Option("first_touch,last_touch,linear,time_decay,position_based,markov,shapley"),
    sep: str = typer.Option(">", help="Separator between touches in --paths."),
    delimiter: Optional[str] = typer.Option(None, "--delimiter", help="Column separator of --paths (default: "
                                                                     "sniffed from the header: , ; tab |)."),
    half_life: float = typer.Option(7.0, help="Time-decay half-life, in touches."),
    order: int = typer.Option(1, help="Markov chain order (states = the last ORDER touches)."),
    touch: str = typer.Option("channel", help="From the store: channel (session entry channels) or moment "
                                             "(micro-moment episodes)."),
    output: Optional[Path] = OUTPUT_OPTION, db: Optional[Path] = DB_OPTION, config_path: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Conversions and value per channel under heuristic, Markov (exact) and Shapley models."""
    from micromoments.measure import attribution as at

    if paths is not None:
        p = at.read_paths(paths, sep=sep, delimiter=delimiter)
    else:
        store, cfg = _store(db, config_path)
        p = _store_paths(store, cfg, touch)
    table = at.attribute(p, [m.strip() for m in models.split(",") if m.strip()], half_life=half_life, order=order)
    wide = table.pivot_table(index="channel", columns="model", values="conversions", aggfunc="sum").reset_index()
    console.print(f"{len(p):,} distinct paths; {p.conversions.sum():,.0f} conversions; value {p.values.sum():,.2f}")
    label = touch if paths is None else "channel"
    _show(wide.rename(columns={"channel": label}), f"conversions credited per {label}", None)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(output, index=False)
        console.print(f"wrote {output}")


def _store_paths(store: Any, cfg: Any, touch: str = "channel") -> Any:
    from micromoments.errors import InputError
    from micromoments.journey.pipeline import JourneySettings, build_journey, load_events
    from micromoments.journey.sessions import sessions
    from micromoments.measure.attribution import store_paths

    if touch not in ("channel", "moment"):
        raise InputError(f"unknown touch '{touch}'", where="--touch", hint="use channel or moment")
    settings = JourneySettings.from_config(cfg)
    j = build_journey(load_events(store)[0], settings, con=store.ibis)
    if touch == "moment":
        ep = j.episodes.select("person_id", "start", "moment", "conversions", "revenue")
        return store_paths(store.ibis.execute(ep), touch="moment", order="start", missing="other")
    s = sessions(j.sessionized, settings.vocab)
    return store_paths(store.ibis.execute(s.select("person_id", "session_no", "channel", "conversions", "revenue")))


@app.command("monitor")
@friendly_errors
def monitor_cmd(
    day: Optional[str] = typer.Option(None, help="Day to check (default: the last complete day)."),
    backtest: bool = typer.Option(False, help="Check every day after the warm-up (to tune the thresholds)."),
    send: bool = typer.Option(False, help="Send alerts to the webhook / email in [monitoring]."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write every series-day checked "
                                          "(observed, expected, z, p, alert) to this CSV file."),
    db: Optional[Path] = DB_OPTION, config_path: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Daily check of volume, CTR and conversion per moment type against a seasonal baseline, plus drift."""
    from micromoments.measure.monitoring import run_monitor, send_alerts

    store, cfg = _store(db, config_path)
    d = _date(day, "--day")
    r = run_monitor(store, cfg, day=d.date() if d else None, backtest=backtest)
    console.print(f"checked {len(r.checks)} series-days over {r.checks.day.nunique() if len(r.checks) else 0} day(s)")
    for check in r.drift:
        console.print(f"drift check {check['check']}: p = {check['p_value']:.3g}, drift = {check['drift']}")
    if not r.alerts:
        console.print("[green]no alerts[/]")
    for a in r.alerts:
        console.print(f"[bold red]alert:[/] {a.message}")
    if send:
        console.print(f"sent: {send_alerts(r.alerts, cfg)}")
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        r.checks.to_csv(output, index=False)
        console.print(f"wrote {output}")


@app.command("ope")
@friendly_errors
def ope_cmd(
    policy: Path = typer.Option(..., "--policy", help="CSV: context columns (moment, stage, channel, persona, playbook),"
                                                     " content_id, probability — each context summing to 1."),
    reward: str = typer.Option("conversion", help="conversion, click or revenue."),
    n_boot: int = typer.Option(1000, help="Bootstrap resamples."),
    output: Optional[Path] = OUTPUT_OPTION,
    db: Optional[Path] = DB_OPTION, config_path: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Off-policy evaluation: what a new content policy would have earned, from the logged decisions."""
    from micromoments.errors import InputError
    from micromoments.measure.ope import evaluate_policy, logged_decisions_expr, read_policy

    pol = read_policy(policy)
    store, _ = _store(db, config_path)
    logs = store.ibis.execute(logged_decisions_expr(store.table("decisions"), store.table("outcomes"), reward))
    if logs.empty:
        raise InputError("no chosen decisions with a propensity in the store", where="decisions",
                         hint="run the live path (micromoments serve) so decisions are logged first")
    console.print(f"{len(logs):,} logged decisions; reward = {reward}")
    # In a fixed order: the bootstrap resamples rows by position, and engines return rows in any order.
    logs = logs.sort_values("decision_id", kind="stable").reset_index(drop=True)
    _show(evaluate_policy(logs, pol, n_boot=n_boot), "policy value per decision", output)
