"""The generated reference pages of the docs site, and the MkDocs hook that adds them at build time.

The code already knows its own reference, so the pages are written from it on every build and can
never go stale:
- `reference/cli.md`: every command of the Typer app, with its usage, help and options;
- `reference/config.md`: every `micromoments.toml` key with its default, from `config.py` (the
  comment beside or above a field is its description);
- `reference/http-api.md` and `reference/openapi.json`: every route of the server's OpenAPI document.

`mkdocs.yml` names this file under `hooks:`; `tests/test_docs.py` checks that every command and
every key is in the pages. Also usable alone: `python scripts/docs_reference.py OUT_DIR`.

>>> "| `session_gap_minutes` | `30` |" in config_markdown()
True
"""

from __future__ import annotations

import ast
import html
import io
import json
import sys
import tempfile
import tokenize
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any

GENERATED = {"reference/cli.md", "reference/config.md", "reference/http-api.md", "reference/openapi.json"}


# --- CLI ----------------------------------------------------------------------------------------------
def cli_commands() -> list[tuple[str, Any]]:
    """(full name, click command) for every command and group of `micromoments`, depth first."""
    import typer

    from micromoments.cli import app

    out: list[tuple[str, Any]] = []

    def walk(cmd: Any, name: str) -> None:
        out.append((name, cmd))
        if getattr(cmd, "commands", None):  # a group (Typer ships its own copy of click's classes)
            for sub in sorted(cmd.commands):
                walk(cmd.commands[sub], f"{name} {sub}")

    walk(typer.main.get_command(app), "micromoments")
    return out


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _help_text(cmd: Any) -> str:
    # Typer's help may hold Rich escapes ("\\[server]") and click's no-rewrap marks ("\\b").
    return (cmd.help or "").replace("\b\n", "").replace("\\[", "[").strip()


def cli_markdown() -> str:
    """The CLI reference page."""
    lines = ["# CLI reference", "",
             "Every command of `micromoments`, generated from the Typer app when the docs are built. "
             "`micromoments COMMAND --help` prints the same help.", ""]
    commands = cli_commands()
    lines += ["| command | what it does |", "|---|---|"]
    for name, cmd in commands[1:]:
        first = _help_text(cmd).split("\n\n")[0]
        lines.append(f"| [`{name}`](#{_anchor(name)}) | {_cell(first)} |")
    lines.append("")
    for name, cmd in commands:
        ctx = cmd.context_class(cmd, info_name=name)
        usage = " ".join([name, *cmd.collect_usage_pieces(ctx)])
        lines += [f"## `{name}` {{#{_anchor(name)}}}", "", "```text", usage, "```", ""]
        help_text = _help_text(cmd)
        if help_text:
            lines += [html.escape(help_text, quote=False), ""]
        rows = []
        for p in cmd.params:
            if p.hidden:
                continue
            record = p.get_help_record(ctx)
            shown, text = record if record else (p.name, "")
            kind = "argument" if p.param_type_name == "argument" else "option"
            if kind == "argument" and not p.required:
                kind = "argument, optional"
            rows.append(f"| `{_cell(shown)}` | {kind} | {_cell((text or p.help or '').replace(chr(92) + '[', '['))} |")
        if rows:
            lines += ["| name | kind | help |", "|---|---|---|", *rows, ""]
    return "\n".join(lines)


def _anchor(name: str) -> str:
    return name.replace(" ", "-")


# --- config -------------------------------------------------------------------------------------------
def _comments(source: str) -> dict[int, str]:
    """line number -> the comment text on that line."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string.lstrip("#").strip()
    return out


def field_help() -> dict[tuple[str, str], str]:
    """(dataclass name, field) -> its description: the comment on its line, else the comments just above."""
    import micromoments.config as config_module

    source = Path(config_module.__file__).read_text(encoding="utf-8")
    comments = _comments(source)
    out = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                text = comments.get(stmt.end_lineno or stmt.lineno, "")
                if not text:
                    above, line = [], stmt.lineno - 1
                    while line in comments and source.splitlines()[line - 1].strip().startswith("#"):
                        above.insert(0, comments[line])
                        line -= 1
                    text = " ".join(above)
                out[(node.name, stmt.target.id)] = text
    return out


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:_}"
    return repr(value)


def config_sections() -> list[tuple[str, type, str]]:
    """(TOML table, dataclass, kind) for every table of `micromoments.toml`; kind is "table" or "array"."""
    from micromoments.config import Config, CustomMoment, ExperimentConfig

    out: list[tuple[str, type, str]] = []
    for f in fields(Config):
        if f.name == "source_path":  # set by load_config, not a key of the file
            continue
        if f.name == "experiments":
            out.append(("experiments", ExperimentConfig, "array"))
            continue
        default = f.default_factory() if f.default_factory is not MISSING else f.default  # type: ignore[misc]
        if is_dataclass(default):
            out.append((f.name, type(default), "table"))
            if f.name == "intent":
                out.append(("intent.custom_moments", CustomMoment, "array"))
    return out


def config_keys() -> list[tuple[str, str, Any]]:
    """(table, key, default) for every key; an entry of an array of tables has no default (`MISSING`)."""
    out = []
    for table, cls, _kind in config_sections():
        for f in fields(cls):
            if f.default is not MISSING:
                default = f.default
            elif f.default_factory is not MISSING:
                default = f.default_factory()
            else:
                default = MISSING
            out.append((table, f.name, default))
    return out


def config_markdown() -> str:
    """The config reference page."""
    helps = field_help()
    lines = ["# Configuration reference", "",
             "Every key of `micromoments.toml`, with its default, generated from `config.py` when the docs "
             "are built. Every key is optional; an unknown key is an error that lists the known ones. "
             "Commands read `micromoments.toml` in the working directory, or the file given with `--config`.", ""]
    keys = config_keys()
    for table, cls, kind in config_sections():
        header = f"[[{table}]]" if kind == "array" else f"[{table}]"
        lines += [f"## `{header}` {{#{table.replace('.', '-')}}}", ""]
        doc = (cls.__doc__ or "").strip()
        if doc and not doc.startswith(cls.__name__ + "("):
            lines += [doc, ""]
        lines += ["| key | default | meaning |", "|---|---|---|"]
        for t, key, default in keys:
            if t != table:
                continue
            shown = "required" if default is MISSING else f"`{_cell(_toml(default))}`"
            if isinstance(default, list) and default and is_dataclass(default[0]):
                shown = "`[]`"
            lines.append(f"| `{key}` | {shown} | {_cell(helps.get((cls.__name__, key), ''))} |")
        lines.append("")
    return "\n".join(lines)


# --- HTTP API -----------------------------------------------------------------------------------------
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of `micromoments serve` (the app built over a throwaway folder)."""
    from micromoments.config import Config
    from micromoments.server.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        return create_app(Config(), db_path=str(Path(tmp) / "docs.duckdb"), data_dir=tmp).openapi()


def _schema_type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(_schema_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {_schema_type(schema.get('items', {}))}"
    return str(schema.get("type", "any"))


def http_markdown(doc: dict[str, Any] | None = None) -> str:
    """The HTTP API reference page."""
    doc = doc or openapi_document()
    info = doc.get("info", {})
    lines = ["# HTTP API reference", "",
             f"{info.get('summary', '')} Generated from the server's OpenAPI document when the docs are built; "
             "a running server serves the same at `/openapi.json` (download: [openapi.json](openapi.json)).", "",
             info.get("description", ""), ""]
    for path, methods in doc.get("paths", {}).items():
        for method, op in methods.items():
            lines += [f"## `{method.upper()} {path}`", "", f"**{op.get('summary', '')}**", ""]
            if op.get("description"):
                lines += [op["description"].strip(), ""]
            if "security" in op:
                names = sorted({name for req in op["security"] for name in req})
                lines += [f"Auth: {', '.join(f'[{n}](#auth-{n.lower()})' for n in names) or 'none'}", ""]
            params = op.get("parameters", [])
            if params:
                lines += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
                for p in params:
                    lines.append(f"| `{p['name']}` | {p.get('in', '')} | {_schema_type(p.get('schema', {}))} | "
                                 f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description', ''))} |")
                lines.append("")
            body = op.get("requestBody", {}).get("content", {})
            for media, spec in body.items():
                lines += [f"Body (`{media}`): {_schema_type(spec.get('schema', {}))}", ""]
            responses = op.get("responses", {})
            if responses:
                lines += ["| status | meaning |", "|---|---|"]
                lines += [f"| {code} | {_cell(r.get('description', ''))} |" for code, r in responses.items()]
                lines.append("")
    schemes = doc.get("components", {}).get("securitySchemes", {})
    if schemes:
        lines += ["## Authentication", ""]
        for name, scheme in schemes.items():
            kind = scheme.get("scheme") or f"{scheme.get('in', '')} `{scheme.get('name', '')}`"
            lines += [f"### `{name}` {{#auth-{name.lower()}}}", "", f"{kind}: {scheme.get('description', '')}", ""]
    schemas = doc.get("components", {}).get("schemas", {})
    if schemas:
        lines += ["## Schemas", ""]
        for name, schema in schemas.items():
            lines += [f"### `{name}`", ""]
            if schema.get("description"):
                lines += [_cell(schema["description"]), ""]
            props = schema.get("properties", {})
            if props:
                required = set(schema.get("required", []))
                lines += ["| field | type | required | description |", "|---|---|---|---|"]
                lines += [f"| `{k}` | {_cell(_schema_type(v))} | {'yes' if k in required else 'no'} | "
                          f"{_cell(v.get('description', ''))} |" for k, v in props.items()]
                lines.append("")
    return "\n".join(lines)


def generate() -> dict[str, str]:
    """Path under docs/ -> content, for every generated page."""
    doc = openapi_document()
    return {"reference/cli.md": cli_markdown(), "reference/config.md": config_markdown(),
            "reference/http-api.md": http_markdown(doc),
            "reference/openapi.json": json.dumps(doc, indent=2, ensure_ascii=False)}


# --- the MkDocs hook ----------------------------------------------------------------------------------
def on_config(config: Any) -> Any:
    """Keep only nav entries whose page exists (each page once), and list every other page under "More"."""
    docs = Path(config["docs_dir"])
    on_disk = {p.relative_to(docs).as_posix() for p in docs.rglob("*.md")}
    present = on_disk | GENERATED
    listed: set[str] = set()

    def prune(items: list[Any]) -> list[Any]:
        kept = []
        for item in items:
            if isinstance(item, dict):
                (title, value), = item.items()
                if isinstance(value, list):
                    value = prune(value)
                    if value:
                        kept.append({title: value})
                elif (value in present or "://" in str(value)) and value not in listed:
                    listed.add(str(value))
                    kept.append(item)
            elif isinstance(item, str) and item in present and item not in listed:
                listed.add(item)
                kept.append(item)
        return kept

    if config.get("nav"):
        config["nav"] = prune(config["nav"])
        extra = sorted(p for p in on_disk - listed if not p.startswith("_"))
        if extra:
            config["nav"].append({"More": extra})
    return config


def on_files(files: Any, config: Any) -> Any:
    """Add the generated reference pages to the build."""
    from mkdocs.structure.files import File

    for path, content in generate().items():
        files.append(File.generated(config, path, content=content))
    return files


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs-reference")
    for rel, text in generate().items():
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_text(text, encoding="utf-8")
        print(target / rel)
