"""Write each chapter's Colab set-up cell (idc_utils.chapters.colab.SETUP_CELL) into the notebooks.

    python tools/setup_cells.py                      # after changing SETUP_CELL
    python tools/setup_cells.py --repository URL     # a fork: its repository, in the cells,
                                                     # colab.REPOSITORY and _config.yml

The cell goes right before the chapter's parameters cell, tagged remove-cell (the rendered book
does not show it; Colab, which opens the source notebook, runs it)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import nbformat

from idc_utils.book.notebooks import chapter_notebooks
from idc_utils.chapters import colab
from idc_utils.core.paths import project_root

TAG = "colab-setup"


def chapter_number(path: Path) -> int:
    return int(path.stem.split("_", 1)[0])


def write_cells(root: Path, repository: str) -> list[Path]:
    changed = []
    for path in chapter_notebooks(root):
        nb = nbformat.read(path, as_version=4)
        source = colab.setup_cell(chapter_number(path), repository)
        cells = [c for c in nb.cells if TAG not in c.metadata.get("tags", [])]
        at = next(k for k, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
        old = next((c for c in nb.cells if TAG in c.metadata.get("tags", [])), None)
        cell = old or nbformat.v4.new_code_cell()
        if old is not None and old.source == source and nb.cells.index(old) == at:
            continue
        cell.source = source
        cell.metadata["tags"] = [TAG, "remove-cell"]
        cell.outputs, cell.execution_count = [], None
        cells.insert(at, cell)
        nb.cells = cells
        nbformat.write(nb, path)
        changed.append(path)
    return changed


def set_repository(root: Path, url: str) -> None:
    """The repository in colab.REPOSITORY and in _config.yml's repository section."""
    module = root / "idc_utils" / "chapters" / "colab.py"
    text = re.sub(r'^REPOSITORY = ".*"$', f'REPOSITORY = "{url}"', module.read_text(), flags=re.M)
    module.write_text(text)
    config = root / "_config.yml"
    text = re.sub(r"^(  url: ).*$", rf"\g<1>{url}", config.read_text(), count=1, flags=re.M)
    config.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repository", help="https://github.com/<owner>/<name> of your copy")
    args = ap.parse_args()
    root = project_root()
    repository = args.repository or colab.REPOSITORY
    if args.repository:
        set_repository(root, args.repository)
    for path in write_cells(root, repository):
        print("wrote the set-up cell of", path.relative_to(root))


if __name__ == "__main__":
    main()
