"""Read YAML and validate it with pydantic, so every error points to `file:line:column`.

PyYAML's node tree keeps the position of every key and value; a pydantic error's `loc`
(a path of keys and indexes) is walked down that tree to find the line to blame.

>>> from pydantic import BaseModel
>>> class M(BaseModel):
...     n: int
>>> try:
...     parse_yaml_model(M, "a:\\n  n: x\\n", "f.yaml", root=("a",))
... except Exception as e:
...     print(e)
f.yaml:2:6: a.n: Input should be a valid integer, unable to parse string as an integer (fix the value here)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from micromoments.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def compose(text: str, path: str) -> tuple[Any, yaml.Node | None]:
    """(data, node tree) of one YAML document; a syntax error names the line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise ConfigError(f"not valid YAML: {exc.problem}", where=where,
                          hint="check indentation, brackets and quotes at this spot") from None
    return data, node


def node_at(node: yaml.Node | None, loc: Sequence[Any], *, key: bool = False) -> yaml.Node | None:
    """The deepest node on `loc` (a key's node when `key` and the last step is a missing/extra key)."""
    for i, step in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            found = None
            for k, v in node.value:
                if k.value == str(step):
                    found = k if (key and i == len(loc) - 1) else v
                    break
            if found is None:
                return node
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
        else:
            return node
    return node


def where_of(path: str, node: yaml.Node | None) -> str:
    if node is None:
        return path
    return f"{path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def model_error(exc: ValidationError, path: str, node: yaml.Node | None,
                root: Sequence[Any] = ()) -> ConfigError:
    """The first pydantic error as a ConfigError at its file:line:column."""
    err = exc.errors()[0]
    loc = [*root, *[x for x in err["loc"] if not (isinstance(x, str) and x.startswith("function-"))]]
    extra = err["type"] == "extra_forbidden"
    target = node_at(node, loc, key=extra)
    dotted = ".".join(str(x) for x in loc) or "(top)"
    hint = "remove or rename this key" if extra else "fix the value here"
    if err["type"] == "missing":
        hint = f"add '{loc[-1]}'"
    return ConfigError(f"{dotted}: {err['msg']}", where=where_of(path, target), hint=hint)


def parse_yaml_model(model: type[M], text: str, path: str, root: Sequence[Any] = ()) -> M:
    """Validate the YAML `text` (or its part at `root`) as `model`; errors carry file:line:col."""
    data, node = compose(text, path)
    for step in root:
        data = data[step] if isinstance(data, (dict, list)) else None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise model_error(exc, path, node, root) from None


def read_text(path: str | Path) -> str:
    p = Path(path)
    if not p.exists():
        raise ConfigError("file not found", where=str(p), hint="check the path in [activation]")
    return p.read_text(encoding="utf-8")
