"""Two runs of the book, number by number: the values each executed chapter glued into its prose
(``myst_nb.glue``), compared as the book shows them. Two machines, two float paths (for example
``TF_ENABLE_ONEDNN_OPTS=0``) or two versions of the code give two run folders; this says which of
the book's numbers they share and which moved, chapter by chapter."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

#: where papermill's record (what ``glue`` writes) keeps a value, by the form the book shows
_RECORD = "application/papermill.record/"
_SHOWN_AS = ("text/markdown", "text/plain", "text/html")


def glued_values(notebook: Path) -> dict[str, str]:
    """The values an executed notebook glued, by name, as the book shows them (text, or markdown
    for a glued sentence); a figure or table is represented by its text form."""
    nb = json.loads(notebook.read_text())
    values = {}
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is None:
                continue
            data = out.get("data", {})
            kind = next((k for k in _SHOWN_AS if _RECORD + k in data), None)
            if kind is None:
                values[name] = json.dumps(data, sort_keys=True)
                continue
            text = data[_RECORD + kind]
            text = "".join(text) if isinstance(text, list) else str(text)
            values[name] = _unquoted(text) if kind == "text/plain" else text
    return values


def _unquoted(text: str) -> str:
    """A glued string's text form is its repr (``'0.946'``): the string itself, as shown."""
    if text[:1] in "'\"":
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(value, str):
            return value
    return text


@dataclass
class ChapterComparison:
    """One chapter in two runs: its glued values that differ (name: (first, second)), and the
    names glued in only one of them."""

    chapter: str
    glued: int
    differ: dict[str, tuple[str, str]] = field(default_factory=dict)
    only_first: list[str] = field(default_factory=list)
    only_second: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not (self.differ or self.only_first or self.only_second)


@dataclass
class RunComparison:
    first: Path
    second: Path
    chapters: list[ChapterComparison]
    missing: list[str]  # chapters executed in the first run only

    @property
    def same(self) -> bool:
        return not self.missing and all(c.same for c in self.chapters)

    def counts(self) -> tuple[int, int]:
        """(values identical, values compared)."""
        compared = sum(c.glued for c in self.chapters)
        return compared - sum(len(c.differ) for c in self.chapters), compared


def notebooks_folder(run: Path) -> Path:
    """A run folder's executed chapters (``run/notebooks``), or ``run`` if it holds them itself."""
    run = Path(run)
    if (run / "notebooks").is_dir():
        return run / "notebooks"
    if run.is_dir() and any(run.glob("*.ipynb")):
        return run
    raise FileNotFoundError(
        f"{run}: no executed chapters here (a run folder holds them in notebooks/; build one "
        "with python -m idc_utils book --run-dir ...)"
    )


def compare_runs(first: Path, second: Path) -> RunComparison:
    """Every chapter executed in ``first``, against the same chapter in ``second``."""
    a, b = notebooks_folder(first), notebooks_folder(second)
    chapters, missing = [], []
    for path in sorted(a.glob("*.ipynb")):
        other = b / path.name
        if not other.exists():
            missing.append(path.stem)
            continue
        va, vb = glued_values(path), glued_values(other)
        shared = [k for k in va if k in vb]
        chapters.append(
            ChapterComparison(
                chapter=path.stem,
                glued=len(shared),
                differ={k: (va[k], vb[k]) for k in shared if va[k] != vb[k]},
                only_first=[k for k in va if k not in vb],
                only_second=[k for k in vb if k not in va],
            )
        )
    return RunComparison(Path(first), Path(second), chapters, missing)


def _where_they_differ(x: str, y: str, width: int = 56) -> tuple[str, str]:
    """Both texts, shortened to a window that starts a little before their first difference."""
    x, y = " ".join(x.split()), " ".join(y.split())
    first = next((k for k, (a, b) in enumerate(zip(x, y)) if a != b), min(len(x), len(y)))
    start = max(0, first - 12)

    def window(t: str) -> str:
        part = t[start : start + width]
        return ("…" if start else "") + part + ("…" if start + width < len(t) else "")

    return window(x), window(y)


def comparison_report(comp: RunComparison) -> str:
    """The comparison as text: a line per chapter, then each value that moved, both ways."""
    lines = [f"glued values of {comp.first} against {comp.second}:"]
    for c in comp.chapters:
        moved = f"{len(c.differ)} differ" if c.differ else "all the same"
        lines.append(f"  {c.chapter}: {c.glued} compared, {moved}")
        for name, (x, y) in c.differ.items():
            x, y = _where_they_differ(x, y)
            lines.append(f"      {name}: {x} -> {y}")
        for side, names in (("first", c.only_first), ("second", c.only_second)):
            if names:
                lines.append(f"      glued in the {side} run only: {', '.join(names)}")
    for name in comp.missing:
        lines.append(f"  {name}: not executed in {comp.second}")
    same, compared = comp.counts()
    lines.append(f"{same} of {compared} values the same" + ("" if comp.same else "; see above"))
    return "\n".join(lines)
