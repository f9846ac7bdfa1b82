"""The package seen from above: which module imports which (imports inside functions
included), grouped by layer; import cycles; functions longer than a reader can hold.
``tools/package_map.py`` prints it, the tests hold the package to it, and ``book/package.md``
explains it."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from idc_utils.book.dependencies import imported_modules

#: the layers, bottom first, as ``pyproject.toml``'s import contract lists them; layers on one
#: level are siblings that may not import each other
LEVELS = (
    ("core",),
    ("data",),
    ("models",),
    ("evaluation",),
    ("training", "serving"),
    ("studies",),
    ("chapters",),
    ("book",),
    ("cli",),
)
LAYERS = tuple(layer for level in LEVELS for layer in level)
#: the longest function the package allows, in lines (signature and docstring included)
MAX_FUNCTION_LINES = 80


def package_dir() -> Path:
    """The folder of the installed ``idc_utils`` package."""
    return Path(__file__).resolve().parents[1]


def modules(root: Path | None = None) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    root = root or package_dir()
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def import_graph(root: Path | None = None) -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in its code)."""
    root = root or package_dir()
    graph = {}
    for name, path in modules(root).items():
        current = name + ".__init__" if path.name == "__init__.py" else name
        found = imported_modules(ast.parse(path.read_bytes()), root, current)
        graph[name] = {m for m in found if m != name}
    return graph


def layer_of(module: str) -> str:
    """The layer a module belongs to (``idc_utils.serving.app.ui`` -> ``serving``); the
    package's own ``__init__`` and ``__main__`` are ``package``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "package"


def level_of(layer: str) -> int:
    """How high a layer sits (0: core)."""
    return next(k for k, level in enumerate(LEVELS) if layer in level)


def breaks_layers(module: str, target: str) -> bool:
    """Whether ``module`` importing ``target`` goes against the layers: up a level, or sideways
    into a sibling layer."""
    low, high = layer_of(module), layer_of(target)
    if low not in LAYERS or high not in LAYERS or low == high:
        return False
    return level_of(high) >= level_of(low)


def layer_imports(graph: dict[str, set[str]]) -> dict[str, dict[str, int]]:
    """Layer -> layer it imports -> how many module-to-module imports (within a layer
    included)."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for module, targets in graph.items():
        for target in targets:
            counts[layer_of(module)][layer_of(target)] += 1
    return {k: dict(v) for k, v in counts.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles: strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def long_functions(root: Path | None = None, limit: int = MAX_FUNCTION_LINES) -> list[tuple]:
    """``(lines, module, function)`` for every function (or method) longer than ``limit``."""
    out = []
    for name, path in modules(root).items():
        for node in ast.walk(ast.parse(path.read_bytes())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                lines = node.end_lineno - start + 1
                if lines > limit:
                    out.append((lines, name, node.name))
    return sorted(out, reverse=True)


def subpackages(root: Path | None = None) -> list[str]:
    """The subpackages directly under the package."""
    root = root or package_dir()
    return sorted(p.parent.name for p in root.glob("*/__init__.py"))
