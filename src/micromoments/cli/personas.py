"""Persona commands: `personas build | import-survey | export | assign | update`, `segments export`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from micromoments.cli._app import CONFIG_OPTION, DB_OPTION, app, console, friendly_errors

personas_app = typer.Typer(help="Buyer personas from behaviour and surveys.", no_args_is_help=True)
segments_app = typer.Typer(help="Rule-based segments for activation.", no_args_is_help=True)
app.add_typer(personas_app, name="personas")
app.add_typer(segments_app, name="segments")

STORES_OPTION = typer.Option(None, "--stores", help="CSV of stores (store_id, lat, lon) for distance to store "
                             "(default: [personas] stores_path).")


def _open(db: Optional[Path], config_path: Optional[Path]):
    from micromoments.config import load_config
    from micromoments.store import open_configured

    cfg = load_config(config_path)
    return open_configured(cfg, db), cfg


@personas_app.command("build")
@friendly_errors
def build_cmd(clusters: int = typer.Option(0, "--clusters", "-k", help="Number of personas (0: choose automatically)."),
              stores: Optional[Path] = STORES_OPTION, db: Optional[Path] = DB_OPTION,
              config_path: Optional[Path] = CONFIG_OPTION) -> None:
    """Compute features and CLV, cluster people into personas, name them, and save the model."""
    from micromoments.personas.build import build_personas
    from micromoments.personas.describe import persona_card

    store, cfg = _open(db, config_path)
    with console.status("[bold]building personas…"):
        result = build_personas(store, cfg, stores_path=stores, n_clusters=clusters or None)
    console.print(result.summary())
    for row in result.descriptions.itertuples():
        console.print(f"• {persona_card(row)}")
    console.print(f"model: {result.model_path}")
    store.close()


@personas_app.command("clv")
@friendly_errors
def clv_cmd(params: bool = typer.Option(True, "--params/--no-params", help="Print the fitted parameters."),
            as_of: Optional[str] = typer.Option(None, "--as-of", help="End of the observation window (YYYY-MM-DD; "
                                                "default: the day of the store's last event)."),
            unit: str = typer.Option("days", help="Time unit of the fit: days or weeks."),
            db: Optional[Path] = DB_OPTION, config_path: Optional[Path] = CONFIG_OPTION) -> None:
    """Fit BG/NBD and Gamma-Gamma on the purchases up to --as-of; print the parameters and log-likelihoods."""
    from micromoments.errors import InputError
    from micromoments.personas.clv_fit import fit_store_clv, parse_as_of

    if unit not in ("days", "weeks"):
        raise InputError(f"unknown unit {unit!r}", where="--unit", hint="days or weeks")
    store, cfg = _open(db, config_path)
    fit = fit_store_clv(store, cfg, as_of=parse_as_of(as_of), unit_days=7.0 if unit == "weeks" else 1.0)
    for line in fit.lines() if params else fit.lines()[:1]:
        console.print(line, highlight=False)
    store.close()


@personas_app.command("import-survey")
@friendly_errors
def import_survey_cmd(file: Path = typer.Argument(..., help="CSV with a header; one row per person."),
                      key: str = typer.Option("user_id", "--key", help="user_id or email."),
                      strict: bool = typer.Option(False, help="Stop at the first bad row instead of quarantining it."),
                      db: Optional[Path] = DB_OPTION, config_path: Optional[Path] = CONFIG_OPTION) -> None:
    """Import survey / interview / CRM answers keyed by user id or (salted, hashed) email."""
    from micromoments.personas.survey import import_survey

    store, cfg = _open(db, config_path)
    result = import_survey(store, file, key=key, config=cfg, on_bad="error" if strict else "quarantine")  # type: ignore[arg-type]
    console.print(result.summary())
    store.close()


@personas_app.command("export")
@friendly_errors
def export_cmd(output: Path = typer.Option(Path("personas.csv"), "--output", "-o"),
               format: Optional[str] = typer.Option(None, "--format", help="csv or parquet (default: from --output)."),
               db: Optional[Path] = DB_OPTION, config_path: Optional[Path] = CONFIG_OPTION) -> None:
    """Export each person's persona (with P(alive), CLV and the persona description)."""
    from micromoments.personas.segments import export_frame, personas_frame

    store, _ = _open(db, config_path)
    if format and output == Path("personas.csv"):
        output = output.with_suffix(f".{format}")
    frame = personas_frame(store)
    console.print(f"wrote {len(frame):,} people to {export_frame(frame, output, format)}")
    store.close()


@personas_app.command("assign")
@friendly_errors
def assign_cmd(stores: Optional[Path] = STORES_OPTION, db: Optional[Path] = DB_OPTION,
               config_path: Optional[Path] = CONFIG_OPTION) -> None:
    """Give people with new data the nearest persona of the saved model (no re-clustering)."""
    from micromoments.personas.segments import assign_incremental

    store, cfg = _open(db, config_path)
    rows = assign_incremental(store, cfg, stores_path=stores)
    console.print(f"assigned {len(rows):,} people to their nearest persona")
    store.close()


@personas_app.command("update")
@friendly_errors
def update_cmd(stores: Optional[Path] = STORES_OPTION, db: Optional[Path] = DB_OPTION,
               config_path: Optional[Path] = CONFIG_OPTION) -> None:
    """The scheduled job: re-cluster if the model is older than [personas] recluster_days, else assign."""
    from micromoments.personas.segments import update_personas

    store, cfg = _open(db, config_path)
    action, n = update_personas(store, cfg, stores_path=stores)
    console.print(f"{action}: {n:,} people")
    store.close()


@segments_app.command("export")
@friendly_errors
def segments_export_cmd(rules: list[str] = typer.Argument(..., help="Rules such as "
                                                          "'abandoners=moment:buy<=7d & !purchase<=7d'."),
                        output: Path = typer.Option(Path("segments.csv"), "--output", "-o"),
                        format: Optional[str] = typer.Option(None, "--format", help="csv or parquet."),
                        db: Optional[Path] = DB_OPTION, config_path: Optional[Path] = CONFIG_OPTION) -> None:
    """Export the members of rule-based segments (one row per segment and person)."""
    import pandas as pd

    from micromoments.personas.segments import export_frame, segment_members

    store, _ = _open(db, config_path)
    from micromoments.personas.segments import parse_rule

    parsed = [parse_rule(r) for r in rules]
    frames = [segment_members(store, r) for r in parsed]
    for r, f in zip(parsed, frames):
        console.print(f"segment {r.name}: {len(f):,} people")
    if format and output == Path("segments.csv"):
        output = output.with_suffix(f".{format}")
    frame = pd.concat(frames, ignore_index=True)
    console.print(f"wrote {len(frame):,} rows to {export_frame(frame, output, format)}")
    store.close()
