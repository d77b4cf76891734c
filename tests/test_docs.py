"""The docs site: the generated reference covers every CLI command, config key and HTTP route, the nav
tolerates pages that come and go, and the whole site builds with warnings as errors."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _reference():
    spec = importlib.util.spec_from_file_location("docs_reference", ROOT / "scripts" / "docs_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ref = _reference()


def _commands() -> list[tuple[str, object]]:
    """Every command the CLI runs, read from the click tree Typer builds (not from the generator)."""
    import typer

    from micromoments.cli import app

    out = []
    stack = [("micromoments", typer.main.get_command(app))]
    while stack:
        name, cmd = stack.pop()
        out.append((name, cmd))
        stack += [(f"{name} {sub}", c) for sub, c in getattr(cmd, "commands", {}).items()]
    return out


def missing_commands(markdown: str) -> list[str]:
    """Commands without their section, or options of a command missing from its section."""
    missing = []
    sections = dict(re.findall(r"^## `([^`]+)`[^\n]*\n(.*?)(?=^## |\Z)", markdown, flags=re.M | re.S))
    for name, cmd in _commands():
        if name not in sections:
            missing.append(name)
            continue
        for param in cmd.params:
            if param.param_type_name == "option" and not param.hidden:
                if not any(opt in sections[name] for opt in param.opts):
                    missing.append(f"{name} {param.opts[0]}")
    return missing


def _config_keys() -> list[tuple[str, str]]:
    """(TOML table, key) for every key of micromoments.toml, walked from the dataclasses."""
    from micromoments.config import Config, CustomMoment, ExperimentConfig

    keys = []
    for f in fields(Config):
        if f.name == "source_path":
            continue
        if f.name == "experiments":
            keys += [("[[experiments]]", g.name) for g in fields(ExperimentConfig)]
            continue
        table = f.default_factory()
        assert is_dataclass(table), f"Config.{f.name} is neither a table nor known here"
        keys += [(f"[{f.name}]", g.name) for g in fields(table)]
        if f.name == "intent":
            keys += [("[[intent.custom_moments]]", g.name) for g in fields(CustomMoment)]
    return keys


def missing_config_keys(markdown: str) -> list[str]:
    sections = dict(re.findall(r"^## `([^`]+)`[^\n]*\n(.*?)(?=^## |\Z)", markdown, flags=re.M | re.S))
    return [f"{table} {key}" for table, key in _config_keys()
            if not re.search(rf"^\| `{re.escape(key)}` \|", sections.get(table, ""), flags=re.M)]


def test_cli_reference_has_every_command_and_option() -> None:
    markdown = ref.cli_markdown()
    assert len(_commands()) > 30
    assert missing_commands(markdown) == []


def test_a_missing_command_is_caught() -> None:
    markdown = ref.cli_markdown()
    cut = re.sub(r"^## `micromoments ingest`.*?(?=^## )", "", markdown, flags=re.M | re.S)
    assert "micromoments ingest" in missing_commands(cut)


def test_config_reference_has_every_key_with_its_default() -> None:
    markdown = ref.config_markdown()
    assert missing_config_keys(markdown) == []
    assert "| `session_gap_minutes` | `30` |" in markdown
    assert '| `memory_limit` | `"1GB"` |' in markdown
    cut = markdown.replace("| `fsync_interval_ms` |", "| `something_else` |")
    assert missing_config_keys(cut) == ["[server] fsync_interval_ms"]


def test_http_reference_has_every_route() -> None:
    doc = ref.openapi_document()
    markdown = ref.http_markdown(doc)
    routes = [f"`{method.upper()} {path}`" for path, ops in doc["paths"].items() for method in ops]
    assert "`POST /v1/track`" in routes and "`POST /v1/decide`" in routes
    assert [r for r in routes if f"## {r}" not in markdown] == []


def test_nav_drops_missing_and_repeated_pages_and_lists_unlisted_ones(tmp_path: Path) -> None:
    (tmp_path / "guides").mkdir()
    for page in ("index.md", "guides/a.md", "new-page.md"):
        (tmp_path / page).write_text("# x\n")
    config = {"docs_dir": str(tmp_path),
              "nav": [{"Home": "index.md"}, {"Guides": [{"A": "guides/a.md"}, {"Gone": "guides/gone.md"},
                                                        {"A again": "guides/a.md"}]},
                      {"Only missing": [{"X": "x.md"}]}, {"CLI": "reference/cli.md"}]}
    nav = ref.on_config(config)["nav"]
    assert nav == [{"Home": "index.md"}, {"Guides": [{"A": "guides/a.md"}]}, {"CLI": "reference/cli.md"},
                   {"More": ["new-page.md"]}]


@pytest.mark.slow
def test_docs_site_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or shutil.which("mkdocs")
    if mkdocs is None:
        pytest.fail("mkdocs is not installed: pip install -e '.[docs]' (make dev does)")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    site = tmp_path / "site"
    for page in ("index.html", "getting-started.html", "concepts.html", "reference/cli.html",
                 "reference/config.html", "reference/http-api.html", "reference/python.html"):
        assert (site / page).is_file(), page
    assert "micromoments ingest" in (site / "reference" / "cli.html").read_text(encoding="utf-8")
    assert "Activator" in (site / "reference" / "python.html").read_text(encoding="utf-8")
    # The site works offline: no page loads fonts or scripts from elsewhere.
    assert not re.search(r'(src|href)="https?://(?!127\.0\.0\.1)[^"]*\.(js|css)|fonts\.googleapis',
                         (site / "index.html").read_text(encoding="utf-8"))
