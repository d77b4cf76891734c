"""`micromoments demo-data`: write the Greenhaven demo data set (Segment JSONL + ground truth)."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from micromoments.cli._app import app, console, friendly_errors


@app.command("demo-data")
@friendly_errors
def demo_data(
    users: int = typer.Option(2000, "--users", "-u", min=1, help="How many people to simulate."),
    days: int = typer.Option(30, "--days", "-d", min=1, help="How many days of journeys."),
    out: Path = typer.Option(Path("demo-data"), "--out", "-o", help="Directory to write the files to."),
    seed: int = typer.Option(42, "--seed", help="Random seed; the same seed gives identical files."),
    start: str = typer.Option("2026-09-01", "--start", help="First day (YYYY-MM-DD)."),
    gzip_events: bool = typer.Option(False, "--gzip", help="Write events.jsonl.gz instead of events.jsonl."),
    workers: int = typer.Option(0, "--workers", "-w", help="Processes to use (0: one per CPU, at most 4). "
                                "The output is the same whatever this is."),
) -> None:
    """Generate demo events with hidden personas and labelled search queries (ground truth in CSV)."""
    from micromoments.demo import generate

    n_workers = workers or min(4, os.cpu_count() or 1)
    progress = Progress(
        TextColumn("[bold]simulating people"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[events]:,} events"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console,
    )
    with progress:
        task = progress.add_task("people", total=users, events=0)
        paths = generate(
            out, users=users, days=days, seed=seed, start=start, gzip_events=gzip_events, workers=n_workers,
            on_progress=lambda done, n_events: progress.update(task, completed=done, events=n_events),
        )
    console.print(
        f"wrote {paths.n_events:,} events for {paths.users:,} people over {paths.days} days "
        f"({paths.events_per_user:.1f} events/person, {paths.n_sessions:,} sessions, {paths.n_episodes:,} moment "
        f"episodes, {paths.n_queries:,} distinct queries) in {paths.seconds:.1f}s: "
        f"[bold]{paths.events_per_second:,.0f} events/s[/] with {n_workers} process(es)"
    )
    for label, path in (("events", paths.events), ("query labels", paths.truth_moments),
                        ("event truth", paths.truth_events), ("personas", paths.truth_personas),
                        ("stores", paths.stores)):
        console.print(f"  {label:<13} {path}")
