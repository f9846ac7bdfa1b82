"""The chapters as notebooks: found in ``_toc.yml``, their declared parameters and the chapters they
read, their error outputs, their prose refreshed into an executed copy, their run-time line."""

from __future__ import annotations

from pathlib import Path

import yaml

from idc_utils.chapters.params import assigned_names
from idc_utils.core.paths import project_root

#: the markdown cell of a chapter that the runner fills with how long the chapter ran, and where
RUN_TIME_TAG = "run-time"


class ChapterError(RuntimeError):
    """A chapter failed to execute, or executed with error output."""


def chapter_notebooks(root: Path | None = None) -> list[Path]:
    """The notebooks of ``_toc.yml``, in reading order."""
    root = root or project_root()
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            f = node.get("file")
            if isinstance(f, str) and f.startswith("notebooks/"):
                found.append(f)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    paths = []
    for f in found:
        p = root / (f if f.endswith(".ipynb") else f + ".ipynb")
        if not p.exists():
            raise FileNotFoundError(f"_toc.yml lists {f} but {p} does not exist")
        paths.append(p)
    return paths


def error_outputs(nb) -> list[str]:
    """Tracebacks and error outputs in an executed notebook (cell number and first line)."""
    problems = []
    for k, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"cell {k}: {out.get('ename')}: {out.get('evalue')}")
            elif out.get("output_type") == "stream" and out.get("name") == "stderr":
                text = out.get("text", "")
                if "Traceback (most recent call last)" in text:
                    last = text.strip().splitlines()[-1]
                    problems.append(f"cell {k}: traceback on stderr: {last}")
    return problems


def declared_parameters(nb) -> list[str]:
    """Names assigned in the notebook's ``parameters`` cell, in order."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return assigned_names(cell.source)
    raise ValueError("the notebook has no cell tagged 'parameters'")


def chapter_needs(nb) -> list[str]:
    """The chapters whose artefacts this one reads (``metadata.idc_book.needs``)."""
    return list(nb.metadata.get("idc_book", {}).get("needs", []))


#: the line :func:`code_source` puts between two code cells
CELL_BREAK = "# ---- cell"


def code_source(nb) -> str:
    """The notebook's code cells as one program (what its dependencies are read from)."""
    return f"\n{CELL_BREAK}\n".join(c.source for c in nb.cells if c.cell_type == "code")


def cell_and_line(code: str, line: int) -> tuple[int, int]:
    """Where line ``line`` of :func:`code_source`'s program is: ``(code cell, line in it)``,
    both counted from 1."""
    cell, start = 1, 0
    for k, text in enumerate(code.splitlines()[: line - 1], start=1):
        if text == CELL_BREAK:
            cell, start = cell + 1, k
    return cell, line - start


def refresh_prose(source_nb, executed_nb):
    """The executed notebook with the source's markdown cells (same code cells, same outputs).
    Returns ``None`` when the code cells do not line up (then the chapter must run)."""
    import copy

    executed = [
        c
        for c in executed_nb.cells
        if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])
    ]
    injected = [c for c in executed_nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    src_code = [c for c in source_nb.cells if c.cell_type == "code"]
    if [c.source for c in src_code] != [c.source for c in executed]:
        return None
    out = copy.deepcopy(executed_nb)
    run_time = [c for c in executed_nb.cells if RUN_TIME_TAG in c.metadata.get("tags", [])]
    cells, k = [], 0
    for cell in source_nb.cells:
        if cell.cell_type == "code":
            cells.append(executed[k])
            k += 1
            if "parameters" in cell.metadata.get("tags", []):
                cells.extend(injected)
        elif RUN_TIME_TAG in cell.metadata.get("tags", []) and run_time:
            cells.append(copy.deepcopy(run_time[0]))  # written by the run, not the source
        else:
            cells.append(copy.deepcopy(cell))
    out.cells = cells
    return out


def run_time_text(entry: dict, profile: str) -> str:
    """The chapter's run-time line, from what the runner recorded."""
    minutes = entry["seconds"] / 60
    took = f"{minutes:.1f} min" if minutes >= 1 else f"{entry['seconds']:.0f} s"
    return (
        f"**Run time.** This chapter ran in {took} with the profile `{profile}` "
        f"({entry['finished'][:10]}), on a machine with {entry['machine'].replace('; ', ', ')}. "
        "The {doc}`status page <../book/status>` lists every chapter of this build."
    )


def fill_run_time(nb, text: str) -> bool:
    """Write ``text`` into the cell tagged ``run-time``; False when the chapter has none."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and RUN_TIME_TAG in cell.metadata.get("tags", []):
            cell.source = text
            return True
    return False


def update_prose(source, out: Path) -> bool:
    """Put the source's markdown into the executed copy at ``out`` if it differs; True when it
    did."""
    import nbformat

    done = nbformat.read(out, as_version=4)

    def prose(nb):
        return [
            c.source
            for c in nb.cells
            if c.cell_type != "code" and RUN_TIME_TAG not in c.metadata.get("tags", [])
        ]

    src_md, old_md = prose(source), prose(done)
    if src_md == old_md:
        return False
    fresh = refresh_prose(source, done)
    if fresh is None:
        return False
    nbformat.write(fresh, out)
    return True
