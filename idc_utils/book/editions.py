"""The student edition: executed chapters without their gated solutions (the cells between a
``solution-start`` and a ``solution-end`` marker, code and outputs included)."""

from __future__ import annotations

from idc_utils.book.notebooks import ChapterError

EDITIONS = ("teacher", "student")


SOLUTION_START = "{solution-start}"


SOLUTION_END = "{solution-end}"


def without_solutions(nb: dict, name: str = "notebook") -> tuple[dict, int]:
    """A copy of an executed notebook without its gated solutions: every cell from the one that
    opens a ``solution-start`` block to the one that closes it, the code cells and their outputs
    between included. Returns the copy and how many solutions it removed; unbalanced markers are
    an error naming the notebook and the cell."""
    kept, removed, opened_at = [], 0, None
    for i, cell in enumerate(nb.get("cells", [])):
        text = "".join(cell.get("source", ""))
        if opened_at is None and SOLUTION_START in text:
            if cell.get("cell_type") != "markdown":
                raise ChapterError(f"{name}: cell {i} opens a solution but is not markdown")
            opened_at = i
        if opened_at is None:
            if SOLUTION_END in text:
                raise ChapterError(f"{name}: cell {i} closes a solution that was never opened")
            kept.append(cell)
            continue
        if i > opened_at and SOLUTION_START in text:
            raise ChapterError(
                f"{name}: cell {i} opens a solution inside the one opened at cell {opened_at}; "
                "close it with a ```{solution-end}``` cell first"
            )
        if SOLUTION_END in text:
            opened_at, removed = None, removed + 1
    if opened_at is not None:
        raise ChapterError(
            f"{name}: the solution opened at cell {opened_at} is never closed; add a markdown "
            "cell with ```{solution-end}```"
        )
    return {**nb, "cells": kept}, removed
