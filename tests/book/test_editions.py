"""The student edition drops gated solutions, code and outputs included."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT
from notebook_helpers import notebook

from idc_utils.book import editions, notebooks


def test_the_student_copy_drops_each_gated_solution_with_its_code():
    nb = notebook(
        [
            ("markdown", "```{exercise}\n:label: ex-a\nHow many?\n```"),
            ("markdown", "```{solution-start} ex-a\n:class: dropdown\n```"),
            ("code", "answer = 42"),
            ("markdown", "```{solution-end}\n```"),
            ("markdown", "After the exercise."),
        ]
    )
    kept, removed = editions.without_solutions(nb, "a.ipynb")
    assert removed == 1
    assert ["".join(c["source"]) for c in kept["cells"]] == [
        "```{exercise}\n:label: ex-a\nHow many?\n```",
        "After the exercise.",
    ]
    assert len(nb.cells) == 5  # the teacher's notebook is untouched


@pytest.mark.parametrize(
    "cells, problem",
    [
        ([("markdown", "```{solution-start} ex-a\n```")], "never closed"),
        ([("markdown", "```{solution-end}\n```")], "never opened"),
        (
            [
                ("markdown", "```{solution-start} ex-a\n```"),
                ("markdown", "```{solution-start} ex-b\n```"),
            ],
            "inside the one opened at cell 0",
        ),
    ],
)
def test_unbalanced_solution_markers_name_the_notebook(cells, problem):
    with pytest.raises(notebooks.ChapterError, match=rf"a\.ipynb: .*{problem}"):
        editions.without_solutions(notebook(cells), "a.ipynb")


def test_every_chapter_has_balanced_solutions_and_exercises():
    for path in notebooks.chapter_notebooks(ROOT):
        nb = json.loads(path.read_text())
        kept, removed = editions.without_solutions(nb, path.name)
        assert removed >= 3, path.name
        assert not any("{solution" in "".join(c["source"]) for c in kept["cells"]), path.name
