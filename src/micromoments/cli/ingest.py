"""`micromoments ingest` and `micromoments quarantine`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from micromoments.cli._app import CONFIG_OPTION, DB_OPTION, app, console, friendly_errors


def byte_progress() -> Progress:
    """A Rich progress bar over bytes, used by every command that reads big files."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
        TransferSpeedColumn(), TimeRemainingColumn(), console=console, transient=False,
    )


@app.command()
@friendly_errors
def ingest(
    files: list[Path] = typer.Argument(..., help="Files to load: .jsonl/.json (Segment, PostHog, GA4), .csv/.tsv, .parquet; maybe .gz."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="segment, posthog, ga4, csv, tsv, parquet, or rees46 (CSV with the REES46 columns) (default: guessed)."),
    mapping: Optional[str] = typer.Option(None, "--map", help="CSV/Parquet columns: user_id=uid,event=action,timestamp=ts"),
    db: Optional[Path] = DB_OPTION,
    config_path: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Load event files into the store. Bad rows go to quarantine; re-ingesting is harmless."""
    from micromoments.config import load_config
    from micromoments.store import Store
    from micromoments.store.ingest import ingest_file

    cfg = load_config(config_path)
    if fmt == "rees46":  # a preset: CSV with the REES46 column mapping (see predict/rees46.py)
        from micromoments.predict.rees46 import REES46_MAPPING

        fmt, mapping = "csv", mapping or REES46_MAPPING
    store = Store(db or cfg.store.path)
    failed = False
    with byte_progress() as bar:
        for path in files:
            task = bar.add_task(path.name, total=None)
            result = ingest_file(store, path, fmt=fmt, mapping=mapping, config=cfg,
                                 on_progress=lambda done, total, t=task: bar.update(t, completed=done, total=total))
            bar.update(task, completed=bar.tasks[task].total or 0)
            console.print(f"[bold]{path}[/] ({result.format}): {result.summary()}"
                          + (f", {result.restitched} events re-keyed to known people" if result.restitched else ""))
            console.print(f"  {result.keying()}")
            for reason, n in sorted(result.reasons.items(), key=lambda kv: -kv[1])[:5]:
                console.print(f"  quarantined {n} × {reason}")
            failed = failed or (result.read > 0 and result.loaded + result.duplicates == 0)
    console.print(f"store {store.path}: {store.count('events')} events, "
                  f"{store.count('quarantine')} quarantined rows in all")
    store.close()
    if failed:
        raise typer.Exit(1)


@app.command()
@friendly_errors
def quarantine(
    limit: int = typer.Option(20, help="How many rows to show."),
    source: Optional[str] = typer.Option(None, help="Only rows from this file."),
    db: Optional[Path] = DB_OPTION,
) -> None:
    """Show quarantined rows: file, line, field and reason."""
    from micromoments.store import open_store

    store = open_store(db, read_only=True)
    where, params = ("WHERE source = ?", [source]) if source else ("", [])
    rows = store.duck.execute(
        f"SELECT source, line, field, reason, left(raw, 80) FROM quarantine {where} ORDER BY source, line LIMIT ?",
        [*params, limit],
    ).fetchall()
    table = Table("file", "line", "field", "reason", "raw")
    for row in rows:
        table.add_row(*(str(v) if v is not None else "" for v in row))
    console.print(table)
