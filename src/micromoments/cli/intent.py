"""`micromoments classify`, `micromoments evaluate` and `micromoments classify-store`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from micromoments.cli._app import CONFIG_OPTION, DB_OPTION, app, console, friendly_errors

CHUNK = 20_000


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=console)


@app.command()
@friendly_errors
def classify(
    input: Path = typer.Option(..., "--input", "-i", help="CSV, TSV (by extension) or JSONL file."),
    text_column: str = typer.Option("query", "--text-column", help="Column holding the text to classify."),
    url_column: Optional[str] = typer.Option(None, "--url-column", help="Optional landing-page URL column."),
    title_column: Optional[str] = typer.Option(None, "--title-column", help="Optional landing-page title column."),
    output: Path = typer.Option(Path("predictions.csv"), "--output", "-o", help="Where to write (.csv/.tsv/.jsonl)."),
    cues: bool = typer.Option(False, "--cues/--no-cues", help="Also write the cues and per-class scores."),
    config_path: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Classify every row's text into a micro-moment: writes the input columns + moment, go_type, confidence."""
    import json

    from micromoments.config import load_config
    from micromoments.intent.classifier import get_classifier
    from micromoments.intent.tables import read_table, require_column, table_format, write_table

    table_format(output)  # fail before the work if the output type is unknown
    df = read_table(input)
    require_column(df, text_column, input, "--text-column")
    for col, opt in ((url_column, "--url-column"), (title_column, "--title-column")):
        if col:
            require_column(df, col, input, opt)
    clf = get_classifier(load_config(config_path))
    texts = df[text_column].tolist()
    results = []
    with _progress() as bar:
        task = bar.add_task(f"classifying {input.name}", total=len(texts))
        for start in range(0, len(texts), CHUNK):
            end = start + CHUNK
            results += clf.predict(
                texts[start:end],
                df[url_column].tolist()[start:end] if url_column else None,
                df[title_column].tolist()[start:end] if title_column else None,
                explain=cues,
            )
            bar.update(task, completed=min(end, len(texts)))
    out = df.copy()
    new = {"moment": [r.moment for r in results], "go_type": [r.go_type or "" for r in results],
           "confidence": [r.confidence for r in results]}
    if cues:
        new["cues"] = [json.dumps(r.cues, ensure_ascii=False) for r in results]
        new["scores"] = [json.dumps(r.scores) for r in results]
    for name, values in new.items():
        # Never overwrite an input column (e.g. a labelled `go_type`): suffix ours instead.
        out[f"{name}_predicted" if name in df.columns else name] = values
    write_table(out, output)
    counts = out["moment"].value_counts().to_dict()
    console.print(f"wrote {len(out)} rows to [bold]{output}[/]: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])))


@app.command()
@friendly_errors
def evaluate(
    input: Path = typer.Option(..., "--input", "-i", help="Labelled CSV, TSV or JSONL file."),
    label_column: str = typer.Option("label", "--label-column", help="Column with the true moment."),
    text_column: str = typer.Option("query", "--text-column", help="Column with the text."),
    prediction_column: Optional[str] = typer.Option(
        None, "--prediction-column", help="Score an existing prediction column instead of classifying."),
    config_path: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Accuracy, per-class precision/recall/F1, macro-F1 with a bootstrap 95% CI and the confusion matrix."""
    from micromoments.config import load_config
    from micromoments.errors import InputError
    from micromoments.intent.classifier import get_classifier
    from micromoments.intent.evaluate import evaluate_labels
    from micromoments.intent.tables import read_table, require_column

    df = read_table(input)
    require_column(df, label_column, input, "--label-column")
    labels = [str(x).strip().lower() for x in df[label_column]]
    if not labels:
        raise InputError("no rows to evaluate", where=str(input), hint="the file has a header but no data")
    if prediction_column:
        require_column(df, prediction_column, input, "--prediction-column")
        preds = [str(x).strip().lower() for x in df[prediction_column]]
    else:
        require_column(df, text_column, input, "--text-column")
        preds = [r.moment for r in get_classifier(load_config(config_path)).predict(df[text_column].tolist(), explain=False)]
    ev = evaluate_labels(labels, preds)

    console.print(f"[bold]{input}[/]: n={ev.n}  accuracy [bold]{ev.accuracy:.3f}[/]  macro-F1 "
                  f"[bold]{ev.macro_f1:.3f}[/] (95% bootstrap CI {ev.macro_f1_ci[0]:.3f}–{ev.macro_f1_ci[1]:.3f})")
    per_class = Table(title="Per class")
    for col in ("moment", "precision", "recall", "F1", "support"):
        per_class.add_column(col, justify="left" if col == "moment" else "right")
    for lab in ev.labels:
        per_class.add_row(lab, f"{ev.precision[lab]:.3f}", f"{ev.recall[lab]:.3f}", f"{ev.f1[lab]:.3f}",
                          str(ev.support[lab]))
    console.print(per_class)
    confusion = Table(title="Confusion matrix (rows: true, columns: predicted)")
    confusion.add_column("true \\ predicted")
    for col in ev.confusion_columns:
        confusion.add_column(col, justify="right")
    for lab, row in zip(ev.labels, ev.confusion):
        confusion.add_row(lab, *[f"[bold]{c}[/]" if lab == col else str(c) for c, col in zip(row, ev.confusion_columns)])
    console.print(confusion)


@app.command("classify-store")
@friendly_errors
def classify_store_command(
    db: Optional[Path] = DB_OPTION,
    config_path: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Give every event in the store its moment: distinct texts classified once (cached), then joined back."""
    from micromoments.config import load_config
    from micromoments.intent.store_step import classify_store
    from micromoments.store import engine_of, open_configured

    cfg = load_config(config_path)
    store = open_configured(cfg, db)
    if engine_of(store) == "spark":  # the DuckDB step's SQL per partition, then Spark joins
        from micromoments.intent.lake_step import classify_lake as classify_store  # noqa: F811
    with _progress() as bar:
        task = bar.add_task("classifying distinct texts", total=None)
        stats = classify_store(store, cfg, progress=lambda done, total: bar.update(task, completed=done, total=total))
        bar.update(task, total=bar.tasks[task].total or 1, completed=bar.tasks[task].total or 1)
    em = store.table("event_moments")
    frame = store.ibis.execute(em.group_by("moment").aggregate(n=em.count()))
    counts = sorted(zip(frame.moment, frame.n), key=lambda mn: (-mn[1], str(mn[0])))
    console.print(
        f"{stats['events']} events, {stats['distinct_texts']} distinct texts "
        f"({stats['classified']} classified, {stats['cached']} cached) -> {stats['event_moments']} event moments "
        f"in {stats['seconds']} s: " + ", ".join(f"{m} {n}" for m, n in counts)
    )
    store.close()
