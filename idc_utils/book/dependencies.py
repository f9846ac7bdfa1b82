"""What a chapter's outputs depend on, each part hashed so that a change can be named: its code
cells, its resolved parameters, the package modules it imports (transitively, imports inside
functions included), the data's fingerprint, the chapters it reads, and the stored studies it
shows. A chapter re-runs when one of them changed; a DICOMweb edit re-runs the chapters that
import the DICOMweb code, not the others."""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from idc_utils.book.notebooks import (
    cell_and_line,
    chapter_needs,
    code_source,
    declared_parameters,
)
from idc_utils.chapters.profiles import PROFILE_FILE, profile_params
from idc_utils.core.paths import project_root

PACKAGE = "idc_utils"


def _digest(*parts) -> str:
    """A short hash of bytes or JSON-able values."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _code_lines(source: str) -> str:
    """Cell source without IPython magics and shell escapes, so that ``ast`` can read it."""
    return "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines())


class UnresolvedImportError(ValueError):
    """Code imports a module of the package that does not exist (a renamed or deleted module):
    the rebuild tracking cannot know what the chapter depends on."""


def _defined_names(tree: ast.AST) -> set[str]:
    """Names a module defines at its top level (assignments, functions, classes, imports),
    those under a top-level ``if``, ``try`` or ``with`` included."""
    names = set()
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            for block in ("body", "orelse", "finalbody", "handlers"):
                todo.extend(getattr(node, block, []))
            continue
        if isinstance(node, ast.ExceptHandler):
            todo.extend(node.body)
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def module_file(dotted: str, package_dir: Path) -> Path | None:
    """The file of module ``dotted`` (``idc_utils.data.dataset``) under ``package_dir``: its
    ``.py`` file or its package's ``__init__.py``; None when there is none."""
    parts = dotted.split(".")[1:]
    base = package_dir.joinpath(*parts)
    for path in (base.with_suffix(".py") if parts else None, base / "__init__.py"):
        if path is not None and path.is_file():
            return path
    return None


def imported_modules(
    tree: ast.AST, package_dir: Path, current: str | None = None, where=None
) -> set[str]:
    """The modules of the package (dotted names) that a module or notebook imports, inside
    functions too. ``current``: the importing module's dotted name (for relative imports; a
    package's own ``__init__`` included). An import that names no module of the package raises
    :class:`UnresolvedImportError`; ``where(line)`` names the place for its message (default:
    the module and the line)."""
    package = package_dir.name
    where = where or (lambda line: f"{current or 'the code'}, line {line}")
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [(a.name, None) for a in node.names if a.name.split(".")[0] == package]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, current)
            if base is None or base.split(".")[0] != package:
                continue
            targets = [(base, a.name) for a in node.names]
        else:
            continue
        for module, name in targets:
            found.add(_resolve(module, name, package_dir, where, node.lineno))
    return found


def _absolute(node: ast.ImportFrom, current: str | None) -> str | None:
    """The absolute module an ``ImportFrom`` reads from (``from ..data import x`` in
    ``idc_utils.models.cards`` -> ``idc_utils.data``)."""
    if node.level == 0:
        return node.module
    if current is None:
        return None
    parts = current.split(".")[: len(current.split(".")) - node.level]
    return ".".join(parts + ([node.module] if node.module else []))


def _resolve(module: str, name: str | None, package_dir: Path, where, line: int) -> str:
    """The module an import needs: ``module.name`` when that is a module, else ``module``
    (``name`` then has to be defined there)."""
    if name is not None and module_file(f"{module}.{name}", package_dir) is not None:
        return f"{module}.{name}"
    path = module_file(module, package_dir)
    if path is not None and (name is None or name in _defined_names(ast.parse(path.read_bytes()))):
        return module
    what = f"{module}.{name}" if name else module
    raise UnresolvedImportError(
        f"{where(line)}: imports {what}, which is neither a module of {package_dir} nor "
        "a name one defines. Was it moved or renamed? Update the import (the map of the "
        "package is book/package.md)."
    )


def _with_parents(dotted: str) -> list[str]:
    """A module and the packages above it: importing it runs their ``__init__`` too."""
    parts = dotted.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts) + 1)]


def module_closure(code: str, package_dir: Path, chapter: str = "the chapter") -> dict[str, str]:
    """``{module file: content hash}`` for every package module the code needs, transitively
    (imports inside functions included; each module's parent ``__init__`` files too). Fails
    with :class:`UnresolvedImportError` on an import it cannot resolve, naming the module and
    line, or the ``chapter``, code cell and line (for a notebook's :func:`code_source`)."""

    def in_chapter(line: int) -> str:
        cell, at = cell_and_line(code, line)
        return f"{chapter}, code cell {cell}, line {at}"

    todo = set()
    for module in imported_modules(ast.parse(_code_lines(code)), package_dir, where=in_chapter):
        todo.update(_with_parents(module))
    seen: dict[str, str] = {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_file(name, package_dir)
        text = path.read_bytes()
        seen[name] = _digest(text)
        current = name + ".__init__" if path.name == "__init__.py" else name
        for module in imported_modules(ast.parse(text), package_dir, current):
            todo.update(m for m in _with_parents(module) if m not in seen)
    files = {
        module_file(n, package_dir).relative_to(package_dir).as_posix(): h for n, h in seen.items()
    }
    return dict(sorted(files.items()))


STORED_RESULTS = Path("book") / "data"  # studies too long for a build, read by chapters


def stored_results(code: str, root: Path, params: dict | None = None) -> dict[str, str]:
    """Hashes of the files in ``book/data`` whose names a chapter's code mentions (results of
    ``tools/recipe_study.py``, ``tools/learning_curve.py`` and ``tools/generator_study.py``),
    and of every file under a ``book/data`` path that a parameter names (the published
    generator, ``gen_checkpoint``): a new study re-runs the chapter."""
    folder = root / STORED_RESULTS
    if not folder.is_dir():
        return {}
    named = [f for f in sorted(folder.iterdir()) if f.is_file() and f.name in code]
    for value in (params or {}).values():
        if isinstance(value, str) and value.startswith(STORED_RESULTS.as_posix() + "/"):
            target = root / value
            if target.is_dir():
                named += sorted(g for g in target.rglob("*") if g.is_file())
            elif target.is_file():
                named.append(target)
    return {
        f.relative_to(folder).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()[:16]
        for f in named
    }


@dataclass
class Dependencies:
    """Everything a chapter's outputs depend on, each part hashed, so that a change can be named."""

    code: str
    params: dict
    modules: dict
    data: str
    upstream: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)  # stored study results the code reads (book/data)

    def key(self) -> str:
        parts = (self.code, self.params, self.modules, self.data, self.upstream)
        return _digest(*parts, self.files) if self.files else _digest(*parts)

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "params": self.params,
            "modules": self.modules,
            "data": self.data,
            "upstream": self.upstream,
            "files": self.files,
        }

    def changes_since(self, old: dict) -> list[str]:
        """Why the chapter must run again, in words (empty: nothing changed)."""
        why = []
        if old.get("code") != self.code:
            why.append("its code cells changed")
        before = old.get("params", {})
        changed = [
            k for k in sorted(set(before) | set(self.params)) if before.get(k) != self.params.get(k)
        ]
        if changed:
            shown = ", ".join(
                f"{k} {before.get(k)!r} -> {self.params.get(k)!r}" for k in changed[:4]
            )
            why.append("parameters changed: " + shown + (" ..." if len(changed) > 4 else ""))
        mods = old.get("modules", {})
        touched = sorted(
            k for k in set(mods) | set(self.modules) if mods.get(k) != self.modules.get(k)
        )
        if touched:
            why.append(f"{PACKAGE} changed: " + ", ".join(touched))
        if old.get("data") != self.data:
            why.append("the data changed")
        files = old.get("files", {})
        redone = sorted(
            k for k in set(files) | set(self.files) if files.get(k) != self.files.get(k)
        )
        if redone:
            why.append("stored results it reads changed: " + ", ".join(redone))
        ups = old.get("upstream", {})
        moved = [k for k in self.upstream if ups.get(k) != self.upstream[k]]
        if moved:
            why.append("it reads chapters that changed: " + ", ".join(moved))
        return why


def resolve_chapter_params(nb, profile: str, overrides: dict, root: Path | None = None) -> dict:
    """The values a chapter will run with: overrides win, the profile fills the rest (what
    :func:`idc_utils.chapters.params.chapter_params` does inside the kernel)."""
    prof = profile_params(profile, (root or project_root()) / PROFILE_FILE)
    out = {}
    for k in declared_parameters(nb):
        if k in ("data_dir", "run_dir"):
            continue  # the data enters by its fingerprint; the run folder is where book.json lives
        out[k] = profile if k == "profile" else overrides.get(k, prof.get(k))
    return out


def chapter_dependencies(
    source, name: str, profile: str, overrides: dict, root: Path, data: str, keys: dict, record
) -> Dependencies:
    """What the chapter notebook ``source`` (file ``name``) depends on in this build: ``data``
    is the data's digest, ``keys`` the keys of the chapters already seen in this build,
    ``record`` what the last build recorded per chapter."""
    code = code_source(source)
    params = resolve_chapter_params(source, profile, overrides, root)
    return Dependencies(
        code=_digest(code),
        params=params,
        modules=module_closure(code, root / PACKAGE, chapter=name),
        data=data,
        upstream={n: keys.get(n, record.get(n, {}).get("key", "")) for n in chapter_needs(source)},
        files=stored_results(code, root, params),
    )
