"""`micromoments playbooks validate [DIR]`: check playbook YAML files and the content catalog.

Every error is printed as `file:line:column: message (fix)`, one per file; exit code 2 if any.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from micromoments.cli._app import CONFIG_OPTION, app, console, err_console, friendly_errors

playbooks_app = typer.Typer(help="Playbooks: validate the YAML files.", no_args_is_help=True)
app.add_typer(playbooks_app, name="playbooks")


@playbooks_app.command("validate")
@friendly_errors
def validate_cmd(
    directory: Optional[Path] = typer.Argument(None, help="Directory (or one file) of *.yaml playbooks "
                                               "(default: [activation] playbooks_dir, else the shipped examples)."),
    catalog: Optional[Path] = typer.Option(None, "--catalog", help="Content catalog (.yaml or .csv) "
                                           "the playbooks' content ids must exist in."),
    config_path: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Check the playbooks against the schema, the catalog, the moments and the stage rules."""
    from micromoments.activation.catalog import Catalog
    from micromoments.activation.engine import examples_dir
    from micromoments.activation.playbooks import validate_directory
    from micromoments.activation.stages import rule_stages
    from micromoments.config import load_config

    cfg = load_config(config_path)
    act = cfg.activation
    directory = directory or Path(act.playbooks_dir or examples_dir() / "playbooks")
    cat = Catalog.load(catalog or act.catalog or examples_dir() / "catalog.yaml")
    moments = ("know", "go", "do", "buy", "other", *(m.name for m in cfg.intent.custom_moments))
    n, errors = validate_directory(directory, moments=moments, catalog=cat,
                                   stages=rule_stages(cfg.journey.stage_rules or None),
                                   webhooks=list(act.webhook_urls))
    for exc in errors:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    if errors:
        raise typer.Exit(2)
    console.print(f"ok: {n} playbook(s) in {directory}, {len(cat)} content item(s) in {cat.source}")
