"""Chapters made by hand for the tests: sources with tagged cells and declared needs (the
runner, the editions), and executed chapters with outputs in the forms ``myst_nb.glue`` writes
(``python -m idc_utils run compare``, ``run publish``)."""

from __future__ import annotations

import json

import nbformat

RECORD = "application/papermill.record/"


def notebook(cells, needs=()) -> nbformat.NotebookNode:
    """A chapter source: ``cells`` are ``(kind, source, *tags)`` with kind "code" or
    "markdown"; ``needs`` are the chapters it reads (its ``idc_book`` metadata)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["idc_book"] = {"needs": list(needs)}
    for kind, src, *tags in cells:
        cell = (
            nbformat.v4.new_code_cell(src) if kind == "code" else nbformat.v4.new_markdown_cell(src)
        )
        if tags:
            cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    return nb


def glue_output(name: str, value, markdown: bool = False, display: bool = False) -> dict:
    """An output as ``glue(name, value, display=...)`` writes it: ``display=False`` keys its forms
    under papermill's record prefix, ``display=True`` keeps them plain; a markdown value (a glued
    ``Markdown`` object) has a plain-text form too, its repr."""
    prefix = "" if display else RECORD
    data = {f"{prefix}text/plain": repr(value)}
    if markdown:
        data = {f"{prefix}text/markdown": value, f"{prefix}text/plain": "<Markdown object>"}
    return {
        "data": data,
        "metadata": {"scrapbook": {"mime_prefix": prefix, "name": name}},
        "output_type": "display_data",
    }


def figure_output(name: str) -> dict:
    """A glued figure: an image, and its repr as text."""
    data = {f"{RECORD}image/png": "iVBORw0KGgo=", f"{RECORD}text/plain": "<Figure size 640x480>"}
    return {
        "data": data,
        "metadata": {"scrapbook": {"mime_prefix": RECORD, "name": name}},
        "output_type": "display_data",
    }


def executed_chapter(folder, name: str, outputs: list) -> None:
    """``folder/name.ipynb``: a code cell with ``outputs``, prose, and a cell that printed."""
    folder.mkdir(parents=True, exist_ok=True)
    stream = {"name": "stdout", "output_type": "stream", "text": "1\n"}
    cells = [
        {"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": outputs},
        {"cell_type": "markdown", "source": "prose", "metadata": {}},
        {"cell_type": "code", "source": "print(1)", "metadata": {}, "outputs": [stream]},
    ]
    (folder / f"{name}.ipynb").write_text(json.dumps({"cells": cells, "nbformat": 4}))
