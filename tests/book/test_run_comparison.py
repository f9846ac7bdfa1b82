"""``python -m idc_utils run compare``: two runs' glued numbers, chapter by chapter. The executed
chapters are made here, with outputs in the forms ``myst_nb.glue`` writes."""

from __future__ import annotations

import json
import shutil

import pytest
from notebook_helpers import executed_chapter, figure_output, glue_output

from idc_utils import cli
from idc_utils.book import run_comparison


def _runs(tmp_path, auc_second="0.946", sentence_second="AUC **0.946**, recall 0.93."):
    sentence_first = "AUC **0.946**, recall 0.93."
    for run, auc, sentence in (("a", "0.946", sentence_first), ("b", auc_second, sentence_second)):
        notebooks = tmp_path / run / "notebooks"
        executed_chapter(notebooks, "01_eda", [glue_output("n_patients", "209")])
        glued = [glue_output("eff_auc", auc), glue_output("verdict", sentence, markdown=True)]
        executed_chapter(notebooks, "07_evaluation", glued)
    return tmp_path / "a", tmp_path / "b"


def test_glued_values_reads_what_the_book_shows(tmp_path):
    outputs = [
        glue_output("rate", "62,154"),
        glue_output(
            "why", "**Why** no gain?", markdown=True
        ),  # the markdown, not "<Markdown object>"
        glue_output("shown", "0.5", display=True),  # glue(..., display=True): no record prefix
        glue_output("count", 12),  # a number glued as it is
        figure_output("fig"),
    ]
    executed_chapter(tmp_path, "c", outputs)
    values = run_comparison.glued_values(tmp_path / "c.ipynb")
    assert values == {
        "rate": "62,154",
        "why": "**Why** no gain?",
        "shown": "0.5",
        "count": "12",
        "fig": None,
    }


def test_identical_runs_are_the_same(tmp_path, capsys):
    a, b = _runs(tmp_path)
    comp = run_comparison.compare_runs(a, b)
    assert comp.same and comp.counts() == (3, 3)
    assert cli.main(["run", "compare", str(a), str(b)]) == 0
    assert "3 of 3 values the same" in capsys.readouterr().out


def test_a_moved_number_is_named_with_both_values(tmp_path, capsys):
    a, b = _runs(tmp_path, auc_second="0.942", sentence_second="AUC **0.942**, recall 0.93.")
    comp = run_comparison.compare_runs(a, b)
    assert not comp.same
    assert comp.counts() == (1, 3)
    chapter = {c.chapter: c for c in comp.chapters}["07_evaluation"]
    assert chapter.differ["eff_auc"] == ("0.946", "0.942")
    assert cli.main(["run", "compare", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "eff_auc: 0.946 -> 0.942" in out
    assert "07_evaluation: 2 compared, 2 differ" in out
    assert "01_eda: 1 compared, the same" in out
    assert "AUC **0.946**, recall" in out and "AUC **0.942**, recall" in out


def test_a_sentence_that_differs_in_spacing_only_is_the_same(tmp_path):
    a, b = _runs(tmp_path, sentence_second="AUC **0.946**,\n  recall 0.93.")
    assert run_comparison.compare_runs(a, b).same


def test_a_long_sentence_is_shown_where_it_changes():
    start = "x" * 200
    x, y = run_comparison._where_they_differ(start + " 0.946 end", start + " 0.942 end")
    assert "0.946" in x and "0.942" in y and x.startswith("…")


def test_figures_are_counted_apart_not_compared(tmp_path, capsys):
    a, b = _runs(tmp_path)
    for run in (a, b):
        executed_chapter(
            run / "notebooks", "05_cnn", [figure_output("curve"), glue_output("epochs", "12")]
        )
    comp = run_comparison.compare_runs(a, b)
    cnn = {c.chapter: c for c in comp.chapters}["05_cnn"]
    assert (cnn.compared, cnn.figures, comp.same) == (1, ["curve"], True)
    cli.main(["run", "compare", str(a), str(b)])
    assert "05_cnn: 1 compared, the same, 1 figure not compared" in capsys.readouterr().out


def test_speed_measurements_are_shown_but_not_counted(tmp_path, capsys):
    a, b = _runs(tmp_path)
    for run, rate in ((a, "62,154"), (b, "64,972")):
        glued = [
            glue_output("timing_pipe_rate", rate),
            glue_output("timing_steady", "12"),  # a speed that did not move: not listed
            glue_output("batch", "256"),
        ]
        glued.append(figure_output("timing_curve"))  # a speed shown as a figure: no text
        if run == a:  # a speed glued in one run only (say, a chapter older or newer)
            glued.append(glue_output("timing_aug_rate", "3,096"))
        executed_chapter(run / "notebooks", "02_preprocessing", glued)
    comp = run_comparison.compare_runs(a, b)
    pre = {c.chapter: c for c in comp.chapters}["02_preprocessing"]
    assert (pre.compared, pre.differ, pre.only_first, pre.only_second) == (1, {}, [], [])
    assert sorted(pre.timings) == [
        "timing_aug_rate",
        "timing_curve",
        "timing_pipe_rate",
        "timing_steady",
    ]
    assert pre.figures == []
    assert pre.timings_differ == {"timing_pipe_rate": ("62,154", "64,972")}
    assert pre.timings_one_run == {"timing_aug_rate": "first"}
    assert comp.same and comp.counts() == (4, 4)
    assert cli.main(["run", "compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "02_preprocessing: 1 compared, the same, 4 speed measurements not counted" in out
    assert "timing_pipe_rate (speed, not counted): 62,154 -> 64,972" in out
    assert "timing_aug_rate (speed, not counted): glued in the first run only" in out
    assert "timing_steady" not in out
    assert "4 of 4 values the same" in out
    # a moved number beside them still counts
    glued = [
        glue_output("timing_pipe_rate", "64,972"),
        glue_output("timing_steady", "12"),
        figure_output("timing_curve"),
        glue_output("batch", "128"),
    ]
    executed_chapter(b / "notebooks", "02_preprocessing", glued)
    comp = run_comparison.compare_runs(a, b)
    assert not comp.same and comp.counts() == (3, 4)
    assert cli.main(["run", "compare", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "02_preprocessing: 1 compared, 1 differ, 4 speed measurements not counted" in out
    assert "batch: 256 -> 128" in out


def test_chapters_and_names_in_one_run_only_are_differences(tmp_path, capsys):
    a, b = _runs(tmp_path)
    (b / "notebooks" / "01_eda.ipynb").unlink()
    executed_chapter(b / "notebooks", "07_evaluation", [glue_output("eff_auc", "0.946")])
    executed_chapter(b / "notebooks", "11_dicomweb", [glue_output("n_frames", "4")])
    comp = run_comparison.compare_runs(a, b)
    assert (comp.only_first, comp.only_second) == (["01_eda"], ["11_dicomweb"])
    assert not comp.same
    assert cli.main(["run", "compare", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert f"01_eda: not executed in {b}" in out
    assert f"11_dicomweb: not executed in {a}" in out
    assert "07_evaluation: 1 compared, none differ, 1 glued in one run only" in out
    assert "glued in the first run only: verdict" in out
    # either way round
    assert cli.main(["run", "compare", str(b), str(a)]) == 1


def test_trouble_is_exit_status_2_with_the_file_and_the_fix(tmp_path, capsys):
    a, _ = _runs(tmp_path)
    (tmp_path / "empty" / "notebooks").mkdir(parents=True)
    assert cli.main(["run", "compare", str(a), str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "empty: no executed chapters here" in err and "--run-dir" in err
    broken = tmp_path / "broken" / "notebooks"
    broken.mkdir(parents=True)
    (broken / "07_evaluation.ipynb").write_text('{"cells": [')  # cut off mid-write
    (broken / "01_eda.ipynb").write_bytes(b"\xff\xfe not text")
    assert cli.main(["run", "compare", str(a), str(tmp_path / "broken")]) == 2
    err = capsys.readouterr().err
    assert "01_eda.ipynb: not a readable executed notebook" in err
    assert "run its chapter again" in err
    # a folder of executed chapters (not a run folder) is accepted as it is
    assert cli.main(["run", "compare", str(a), str(a / "notebooks")]) == 0


def _built_run(tmp_path, auc="0.946"):
    """A run folder as the book leaves it: split, a model, and executed chapters."""
    a, b = _runs(tmp_path, auc_second=auc)
    for run in (a, b):
        (run / "models").mkdir()
        (run / "models" / "cnn.keras").write_bytes(b"model")
        (run / "split.csv").write_text("path,split\n")
    return a, b


def test_a_published_run_carries_its_numbers_and_is_compared_by_them(tmp_path, capsys):
    a, b = _built_run(tmp_path, auc="0.942")
    out = tmp_path / "site" / "run"
    assert cli.main(["run", "publish", "--run-dir", str(b), "--out", str(out)]) == 0
    assert "glued.json" in (out / "SHA256SUMS").read_text()
    assert not (out / "notebooks").exists()  # the numbers travel, not the notebooks
    published = json.loads((out / "glued.json").read_text())
    assert published["07_evaluation"]["eff_auc"] == "0.942"
    # compared as a folder holding glued.json, or as the file itself
    capsys.readouterr()
    assert cli.main(["run", "compare", str(a), str(out)]) == 1
    assert "eff_auc: 0.946 -> 0.942" in capsys.readouterr().out
    assert cli.main(["run", "compare", str(b), str(out / "glued.json")]) == 0


def test_a_run_without_executed_chapters_publishes_without_numbers(tmp_path):
    a, _ = _built_run(tmp_path)
    for p in (a / "notebooks").glob("*.ipynb"):
        p.unlink()
    (a / "notebooks").rmdir()
    files = run_comparison.publish_with_numbers(a, tmp_path / "out")
    assert "glued.json" not in files and "models/cnn.keras" in files


def test_a_damaged_glued_json_is_exit_status_2(tmp_path, capsys):
    a, _ = _runs(tmp_path)
    bad = tmp_path / "fetched"
    bad.mkdir()
    (bad / "glued.json").write_text('{"07_evaluation": ')
    assert cli.main(["run", "compare", str(a), str(bad)]) == 2
    assert "glued.json: not readable" in capsys.readouterr().err
    (bad / "glued.json").write_text('["not", "chapters"]')
    assert cli.main(["run", "compare", str(a), str(bad)]) == 2
    assert "not the glued.json of a published run" in capsys.readouterr().err
    (bad / "glued.json").write_text('{"07_evaluation": {"eff_auc": 0.946}}')  # a number, not text
    assert cli.main(["run", "compare", str(a), str(bad)]) == 2
    assert "not the glued.json of a published run" in capsys.readouterr().err


def test_a_fetched_run_compares_by_its_numbers_and_a_new_publication_replaces_them(
    tmp_path, capsys
):
    """Publish, fetch over a file: URL into a fresh folder, compare; then publish again with
    other numbers (every build measures chapter 2's speed anew) and fetch into the same folder:
    the new numbers replace the old without a clash, and the models stay as they were."""
    from idc_utils.chapters.published_run import fetch_run

    a, b = _built_run(tmp_path, auc="0.942")
    site = tmp_path / "site" / "run"
    run_comparison.publish_with_numbers(a, site)
    fetched = tmp_path / "laptop" / "runs" / "published"
    fetch_run(str(site), fetched)
    capsys.readouterr()
    assert cli.main(["run", "compare", str(a), str(fetched)]) == 0
    out = capsys.readouterr().out
    assert "(executed chapters) against" in out and "(published glued.json)" in out
    model = (fetched / "models" / "cnn.keras").read_bytes()
    run_comparison.publish_with_numbers(b, site)  # the same model, other numbers
    report = fetch_run(str(site), fetched)
    assert "glued.json" in report.downloaded
    assert (fetched / "models" / "cnn.keras").read_bytes() == model
    assert cli.main(["run", "compare", str(b), str(fetched)]) == 0
    # two published copies compared: said, so nobody takes it for a check of their own build
    assert cli.main(["run", "compare", str(fetched), str(site)]) == 0
    assert "neither is a build of your own" in capsys.readouterr().out


def test_a_damaged_chapter_stops_a_publication_instead_of_dropping_its_numbers(tmp_path):
    a, _ = _built_run(tmp_path)
    (a / "notebooks" / "01_eda.ipynb").write_text('{"cells": [')
    with pytest.raises(run_comparison.RunComparisonError, match="01_eda.ipynb: not a readable"):
        run_comparison.publish_with_numbers(a, tmp_path / "out")


def _card(run, name, sha, processor=None, onednn="unset"):
    card = {"name": name, "backbone": "cnn", "image_size": 50, "threshold": 0.4}
    card |= {"target_recall": 0.93, "device": "CPU (2 cores, x86_64)"}
    card["versions"] = {"tensorflow": "2.21.0"}
    if sha:
        card["model_sha256"] = sha
    if processor:
        card["trained_on"] = {"processor": processor, "TF_ENABLE_ONEDNN_OPTS": onednn}
    (run / "models").mkdir(parents=True, exist_ok=True)
    (run / "models" / f"{name}.json").write_text(json.dumps(card))
    (run / "models" / f"{name}.keras").write_bytes(b"weights")


def test_the_report_says_which_models_the_runs_share_and_where_the_others_were_trained(
    tmp_path, capsys
):
    a, b = _runs(tmp_path)
    _card(a, "cnn", "aa", "AMD EPYC")
    _card(b, "cnn", "aa", "AMD EPYC")  # fetched: the same file
    _card(a, "efficientnet", "e1", "AMD EPYC")
    _card(b, "efficientnet", "e2", "Intel Xeon", onednn="0")  # trained apart
    _card(a, "ensemble", None)  # no file hash of its own: left out
    _card(b, "lite", "l1")  # in one run only; a card from before the record
    (a / "models" / "generator.job.json").write_text("{half a job")  # not a card: passed over
    (b / "models" / "notes.json").write_text('{"what": "not a card"}')
    models = run_comparison.compare_runs(a, b).models
    assert models.same == ["cnn"]
    cpu = "; CPU (2 cores, x86_64)"
    assert models.apart == {
        "efficientnet": (
            "AMD EPYC, TensorFlow 2.21.0, TF_ENABLE_ONEDNN_OPTS unset" + cpu,
            "Intel Xeon, TensorFlow 2.21.0, TF_ENABLE_ONEDNN_OPTS 0" + cpu,
        )
    }
    assert models.one_run == {"lite": "second"}
    assert cli.main(["run", "compare", str(a), str(b)]) == 0  # the numbers still decide
    out = capsys.readouterr().out
    assert "models in the same file in both runs: cnn" in out
    assert "models in different files (the numbers read from them may move):" in out
    assert "efficientnet: AMD EPYC, TensorFlow 2.21.0, TF_ENABLE_ONEDNN_OPTS unset; CPU" in out
    assert "-> Intel Xeon, TensorFlow 2.21.0, TF_ENABLE_ONEDNN_OPTS 0; CPU" in out
    assert "model lite: in the second run only" in out
    # a published glued.json is read with the model cards beside it
    (tmp_path / "pub").mkdir()
    (tmp_path / "pub" / "glued.json").write_text(json.dumps(run_comparison.run_values(b)[0]))
    shutil.copytree(b / "models", tmp_path / "pub" / "models")
    assert run_comparison.compare_runs(a, tmp_path / "pub" / "glued.json").models.same == ["cnn"]
    # a run against the glued.json inside it: one set of cards, which says nothing
    (a / "glued.json").write_text(json.dumps(run_comparison.run_values(a)[0]))
    assert run_comparison.compare_runs(a, a / "glued.json").models.shared_folder == a / "models"
    assert cli.main(["run", "compare", str(a), str(a / "glued.json")]) == 0
    assert "so not compared" in capsys.readouterr().out
    # a classmate's chapters copied without their cards: said, not taken for models in one run
    theirs = tmp_path / "theirs"
    shutil.copytree(b / "notebooks", theirs / "notebooks")
    assert run_comparison.compare_runs(a, theirs).models.without == [str(theirs)]
    cli.main(["run", "compare", str(a), str(theirs)])
    assert f"models: {theirs} has no model cards" in capsys.readouterr().out
    # runs without models say nothing of them; an unreadable card names itself
    assert run_comparison.compare_runs(*_runs(tmp_path / "bare")).models is None
    (a / "models" / "cnn.json").write_text("{broken")
    assert cli.main(["run", "compare", str(a), str(b)]) == 2
    assert "cnn.json: not a readable model card" in capsys.readouterr().err
