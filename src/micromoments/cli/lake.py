"""`micromoments lake compact`: few files per partition, no duplicate events, identities re-stitched.

Runs on Spark (`[spark]`: local mode or a cluster) over `[store] lake` (or `--db`), whatever the
configured engine; see docs/deploy.md for when to schedule it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from micromoments.cli._app import CONFIG_OPTION, DB_OPTION, app, console, friendly_errors

lake_app = typer.Typer(help="The Spark lake: compact the live loader's small files.", no_args_is_help=True)
app.add_typer(lake_app, name="lake")


@lake_app.command("compact")
@friendly_errors
def compact(
    max_rows_per_file: int = typer.Option(5_000_000, "--max-rows-per-file", min=1000,
                                          help="Split a partition into files of at most this many rows."),
    db: Optional[Path] = DB_OPTION,
    config_path: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Rewrite each lake table into few files, drop duplicate message_ids, recompute identities (idempotent)."""
    from micromoments.config import load_config
    from micromoments.store.lake import LakeStore, prepare_lake
    from micromoments.store.lake_compact import compact_lake
    from micromoments.store.spark_session import get_spark

    cfg = load_config(config_path)
    lake = str(db) if db else cfg.store.lake
    prepare_lake(lake, create=False)
    store = LakeStore(lake, get_spark(cfg.spark), create=False)
    done = compact_lake(store, max_rows_per_file=max_rows_per_file)
    table = Table(title=f"lake compact: {lake}")
    for col in ("table", "files", "rows", "duplicates dropped", "done"):
        table.add_column(col, justify="left" if col in ("table", "done") else "right")
    for t in done:
        table.add_row(t.table, f"{t.files_before:,} -> {t.files_after:,}", f"{t.rows_before:,} -> {t.rows_after:,}",
                      f"{t.duplicates:,}", "rewritten" if t.rewritten else "already compact")
    console.print(table)
    before, after = sum(t.files_before for t in done), sum(t.files_after for t in done)
    console.print(f"{len([t for t in done if t.rewritten])} of {len(done)} tables rewritten; files {before:,} -> {after:,}; "
                  f"{sum(t.duplicates for t in done):,} duplicate rows dropped")
