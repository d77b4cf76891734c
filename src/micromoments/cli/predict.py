"""`micromoments predict train | evaluate | score`: next-moment and propensity models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from micromoments.cli._app import CONFIG_OPTION, DB_OPTION, app, console, friendly_errors

predict_app = typer.Typer(help="Predict the next micro-moment and the chance to buy (train, evaluate, score).",
                          no_args_is_help=True)
app.add_typer(predict_app, name="predict")

MODEL_OPTION = typer.Option(None, "--model", "-m", help="Model folder (default: [predict] model_path, 'predict_model').")


def _open(db: Optional[Path], config_path: Optional[Path], model: Optional[Path]) -> tuple[Any, Any, Path]:
    from micromoments.config import load_config
    from micromoments.store import open_configured

    cfg = load_config(config_path)
    return cfg, open_configured(cfg, db), Path(model or cfg.predict.model_path)


def _fmt(v: Any) -> str:
    return "—" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def _auc(t: dict[str, Any]) -> str:
    """'0.84 [0.81, 0.87]', or '—' when no AUC could be measured."""
    if t.get("auc") is None:
        return "—"
    if t.get("auc_low") is None:
        return f"{t['auc']:.3f}"
    return f"{t['auc']:.3f} [{t['auc_low']:.2f}, {t['auc_high']:.2f}]"


def print_metrics(metrics: dict[str, Any]) -> None:
    """The test-period table: AUC and ECE per target, then the next-moment baselines."""
    table = Table(title=f"test period ({metrics.get('events', 0):,} events, {metrics.get('people', 0):,} people)")
    # Fits 80 columns: names never wrap; train rows and trees are in --metrics-json.
    for col in ("target", "AUC [95% CI]", "verdict", "ECE", "test rows", "test rate"):
        table.add_column(col, no_wrap=col in ("target", "AUC [95% CI]"))
    for name, t in metrics["targets"].items():
        status = t.get("status", "ok")
        table.add_row(name, _auc(t), "" if status == "ok" else f"[bold yellow]{status}[/]", _fmt(t["ece"]),
                      f"{t['n_test']:,}", _fmt(t["test_rate"]))
    console.print(table)
    for name, t in metrics["targets"].items():  # say why, per target, instead of a silent "—"
        if t.get("status", "ok") != "ok":
            console.print(f"[bold yellow]warning:[/] {name}: {t.get('note', '')}", highlight=False)
    nm = metrics.get("next_moment") or {}
    if nm:
        console.print("next-moment macro AUC: model {m} | repeat the last moment {r} | global frequencies {g} | "
                      "the person's own frequencies {p}".format(
                          m=_fmt(nm.get("model")), r=_fmt(nm.get("repeat_last")),
                          g=_fmt(nm.get("global_frequency")), p=_fmt(nm.get("person_frequency"))))


@predict_app.command("train")
@friendly_errors
def train_cmd(
    model: Optional[Path] = MODEL_OPTION,
    next_hours: Optional[float] = typer.Option(None, help="Next-moment horizon in hours (default 24)."),
    buy_days: Optional[float] = typer.Option(None, help="Purchase horizon in days (default 7)."),
    test_fraction: Optional[float] = typer.Option(None, help="Share of the time range held out as the test period."),
    max_iter: Optional[int] = typer.Option(None, help="Boosting rounds at most (early stopping on the validation period)."),
    metrics_json: Optional[Path] = typer.Option(None, "--metrics-json", help="Also write the metrics here."),
    db: Optional[Path] = DB_OPTION, config_path: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Train the next-moment and propensity models on the store (time-based split) and save them."""
    from micromoments.predict.pipeline import train_from_store

    cfg, store, path = _open(db, config_path, model)
    with console.status("training…") as status:
        _, metrics = train_from_store(store, cfg, path, progress=lambda msg: status.update(msg),
                                      next_hours=next_hours, buy_days=buy_days, test_fraction=test_fraction,
                                      max_iter=max_iter)
    store.close()
    print_metrics(metrics)
    if metrics_json:
        metrics_json.write_text(json.dumps(metrics, indent=2, default=float), encoding="utf-8")
    console.print(f"[bold green]model:[/] {path}")


@predict_app.command("evaluate")
@friendly_errors
def evaluate_cmd(
    model: Optional[Path] = MODEL_OPTION,
    metrics_json: Optional[Path] = typer.Option(None, "--metrics-json", help="Also write the metrics here."),
    db: Optional[Path] = DB_OPTION, config_path: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Evaluate a saved model on the store's test period: AUC, calibration, baselines."""
    from micromoments.predict.pipeline import evaluate_from_store

    _, store, path = _open(db, config_path, model)
    with console.status("evaluating…"):
        metrics = evaluate_from_store(store, path)
    store.close()
    print_metrics(metrics)
    if metrics_json:
        metrics_json.write_text(json.dumps(metrics, indent=2, default=float), encoding="utf-8")


@predict_app.command("score")
@friendly_errors
def score_cmd(
    output: Path = typer.Option(Path("scores.parquet"), "--output", "-o",
                                help="Where to write the scores: .parquet or .csv (one row per person)."),
    where: Optional[str] = typer.Option(None, help="Keep only people matching this pandas query, to export a "
                                                   "segment, e.g. \"p_buy_7d > 0.6\"."),
    model: Optional[Path] = MODEL_OPTION,
    db: Optional[Path] = DB_OPTION, config_path: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Score everyone as of their last event and export the scores (optionally as a segment)."""
    from micromoments.errors import InputError
    from micromoments.predict.pipeline import score_from_store

    _, store, path = _open(db, config_path, model)
    with console.status("scoring…"):
        frame = score_from_store(store, path)
    store.close()
    total = len(frame)
    if where:
        try:
            frame = frame.query(where)
        except Exception as exc:  # pandas raises many kinds for a bad expression
            raise InputError(f"cannot apply --where {where!r}: {exc}", where="--where",
                             hint=f"columns: {', '.join(frame.columns)}") from exc
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix.lower() == ".csv":
        frame.to_csv(output, index=False)
    elif output.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(output, index=False)
    else:
        raise InputError("unknown output type", where=str(output), hint="use .parquet or .csv")
    console.print(f"scored {total:,} people; wrote {len(frame):,} rows to {output}")
