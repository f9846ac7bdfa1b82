"""``python -m idc_utils run compare``: two runs' glued numbers, chapter by chapter. The executed
chapters are made here, with outputs in the form ``myst_nb.glue`` writes them."""

from __future__ import annotations

import json

import pytest

from idc_utils import cli
from idc_utils.book import run_comparison


def _glue_output(name: str, value, markdown: bool = False) -> dict:
    kind = "text/markdown" if markdown else "text/plain"
    text = value if markdown else repr(value)
    return {
        "data": {f"application/papermill.record/{kind}": text},
        "metadata": {"scrapbook": {"mime_prefix": "application/papermill.record/", "name": name}},
        "output_type": "display_data",
    }


def _chapter(folder, name: str, outputs: list) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cells = [
        {"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": outputs},
        {"cell_type": "markdown", "source": "prose", "metadata": {}},
        {
            "cell_type": "code",
            "source": "print(1)",
            "metadata": {},
            "outputs": [{"name": "stdout", "output_type": "stream", "text": "1\n"}],
        },
    ]
    (folder / f"{name}.ipynb").write_text(json.dumps({"cells": cells, "nbformat": 4}))


def _runs(tmp_path, auc_second: str = "0.946", sentence_second: str = "AUC 0.946, recall 0.93."):
    for run, auc, sentence in (
        ("a", "0.946", "AUC 0.946, recall 0.93."),
        ("b", auc_second, sentence_second),
    ):
        _chapter(tmp_path / run / "notebooks", "01_eda", [_glue_output("n_patients", "209")])
        _chapter(
            tmp_path / run / "notebooks",
            "07_evaluation",
            [_glue_output("eff_auc", auc), _glue_output("verdict", sentence, markdown=True)],
        )
    return tmp_path / "a", tmp_path / "b"


def test_glued_values_reads_what_the_book_shows(tmp_path):
    _chapter(
        tmp_path,
        "c",
        [_glue_output("rate", "62,154"), _glue_output("why", "**Why** no gain?", markdown=True)],
    )
    values = run_comparison.glued_values(tmp_path / "c.ipynb")
    assert values == {"rate": "62,154", "why": "**Why** no gain?"}


def test_identical_runs_are_the_same(tmp_path, capsys):
    a, b = _runs(tmp_path)
    comp = run_comparison.compare_runs(a, b)
    assert comp.same and comp.counts() == (3, 3)
    assert cli.main(["run", "compare", str(a), str(b)]) == 0
    assert "3 of 3 values the same" in capsys.readouterr().out


def test_a_moved_number_is_named_with_both_values(tmp_path, capsys):
    a, b = _runs(tmp_path, auc_second="0.942", sentence_second="AUC 0.942, recall 0.93.")
    comp = run_comparison.compare_runs(a, b)
    assert not comp.same
    assert comp.counts() == (1, 3)
    chapter = {c.chapter: c for c in comp.chapters}["07_evaluation"]
    assert chapter.differ["eff_auc"] == ("0.946", "0.942")
    assert cli.main(["run", "compare", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "eff_auc: 0.946 -> 0.942" in out
    assert "01_eda: 1 compared, all the same" in out
    assert "AUC 0.946, recall" in out and "AUC 0.942, recall" in out  # the window shows the change


def test_a_long_sentence_is_shown_where_it_changes():
    start = "x" * 200
    x, y = run_comparison._where_they_differ(start + " 0.946 end", start + " 0.942 end")
    assert "0.946" in x and "0.942" in y and x.startswith("…")


def test_missing_chapters_and_names_are_reported(tmp_path, capsys):
    a, b = _runs(tmp_path)
    (b / "notebooks" / "01_eda.ipynb").unlink()
    _chapter(b / "notebooks", "07_evaluation", [_glue_output("eff_auc", "0.946")])
    comp = run_comparison.compare_runs(a, b)
    assert comp.missing == ["01_eda"] and not comp.same
    assert cli.main(["run", "compare", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "01_eda: not executed in" in out
    assert "glued in the first run only: verdict" in out


def test_a_folder_without_executed_chapters_is_refused(tmp_path, capsys):
    a, _ = _runs(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="empty: no executed chapters here"):
        cli.main(["run", "compare", str(a), str(tmp_path / "empty")])
    # a folder of executed chapters (not a run folder) is accepted as it is
    assert cli.main(["run", "compare", str(a), str(a / "notebooks")]) == 0
