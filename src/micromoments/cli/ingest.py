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
    from micromoments.store import engine_of, open_configured
    from micromoments.store.ingest import ingest_file

    cfg = load_config(config_path)
    if fmt == "rees46":  # a preset: CSV with the REES46 column mapping (see predict/rees46.py)
        from micromoments.predict.rees46 import REES46_MAPPING

        fmt, mapping = "csv", mapping or REES46_MAPPING
    store = open_configured(cfg, db, create=True)
    if engine_of(store) == "spark":  # the same reading and keying, then the lake's Spark jobs
        from micromoments.store.lake_ingest import ingest_to_lake as ingest_file  # noqa: F811
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
    config_path: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Show quarantined rows: file, line, field and reason."""
    from micromoments.config import load_config
    from micromoments.store import open_configured

    store = open_configured(load_config(config_path), db, read_only=True)
    q = store.table("quarantine")
    q = q.filter(q.source == source) if source else q
    frame = store.ibis.execute(q.select("source", "line", "field", "reason", raw=q.raw.substr(0, 80))
                               .order_by(["source", "line"]).limit(limit))
    rows = list(frame.astype(object).where(frame.notna(), None).itertuples(index=False))
    table = Table("file", "line", "field", "reason", "raw")
    for row in rows:
        table.add_row(*(str(v) if v is not None else "" for v in row))
    console.print(table)
