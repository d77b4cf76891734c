"""The shape of the code, read from the source with `ast`: no import circle inside micromoments, no
import running up against the layering of DEVELOPERS.md, and no module over 500 lines without a reason
written at its top (its docstring says "Over 500 lines because ...")."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "micromoments"

# DEVELOPERS.md "Rules": data flows one way; a package imports only from tiers at or below its own.
TIERS: dict[str, int] = {
    "errors": 0, "config": 1, "events": 1, "frames": 1,
    "sources": 2, "demo": 2,
    "store": 3,
    "intent": 4, "journey": 4, "personas": 4, "seo": 4,
    "activation": 5, "measure": 5, "predict": 5,
    "report": 6, "server": 6, "cli": 7,
}
# The package root only holds `__version__` (importable from anywhere) and the `classify` facade.
ROOT_MAY_IMPORT = {"micromoments.intent"}
LONG_MODULE = 500
REASON_MARK = "Over 500 lines because"


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the import nodes under `if TYPE_CHECKING:` (they never run)."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The micromoments modules `name` imports anywhere in its file (module level or inside functions).

    `from pkg import sub` counts as importing `pkg.sub` when that is a module, else `pkg`.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_only(tree)
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "micromoments"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + (path.name == "__init__.py")]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "micromoments":
                continue
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                out.add(sub if sub in modules else mod)
    return {m for m in out if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def _tier(module: str) -> int | None:
    parts = module.split(".")
    return TIERS.get(parts[1]) if len(parts) > 1 else None


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for src, targets in graph.items():
        for dst in targets:
            if src == "micromoments":
                if dst not in ROOT_MAY_IMPORT:
                    bad.append(f"{src} -> {dst}")
                continue
            s, d = _tier(src), _tier(dst)
            if d is None or src.split(".")[1] == dst.split(".")[1]:
                continue  # the root's __version__, or inside one package
            if s is None or d > s or (d == s and dst.split(".")[1] == "cli"):
                bad.append(f"{src} (tier {s}) -> {dst} (tier {d})")
    return sorted(bad)


def test_every_package_has_a_tier() -> None:
    packages = {p.name if p.is_dir() else p.stem for p in PACKAGE.iterdir()
                if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")}
    assert packages - set(TIERS) == set(), "add the new package to TIERS here and to DEVELOPERS.md's layering"


def test_no_import_circle() -> None:
    assert circles(import_graph()) == []


def test_no_import_runs_up_the_layers() -> None:
    assert upward_imports(import_graph()) == []


def test_the_checks_can_fail() -> None:
    graph = {"micromoments.journey.a": {"micromoments.server.b"}, "micromoments.server.b": {"micromoments.journey.a"},
             "micromoments.errors": set()}
    assert circles(graph) == [["micromoments.journey.a", "micromoments.server.b"]]
    assert upward_imports(graph) == ["micromoments.journey.a (tier 4) -> micromoments.server.b (tier 6)"]



def long_modules_without_reason(limit: int = LONG_MODULE) -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > limit:
            doc = ast.get_docstring(ast.parse(text)) or ""
            if REASON_MARK not in doc:
                out.append(f"{path.relative_to(PACKAGE.parent)} ({text.count(chr(10))} lines)")
    return out


def test_no_long_module_without_a_reason() -> None:
    """A module over 500 lines says why in its docstring: "Over 500 lines because ..."."""
    assert long_modules_without_reason() == []


def test_the_length_check_can_fail() -> None:
    assert long_modules_without_reason(limit=100)
