"""Profiles, chapter parameters and the run folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from idc_utils.chapters import params, profiles, run_folder


def test_chapter_params_lists_parameters_once(tmp_path, monkeypatch):

    ns = {
        "profile": "smoke",
        "data_dir": None,
        "run_dir": str(tmp_path),
        "seed": None,
        "image_size": 77,
        "np": object(),
        "P": None,
    }
    monkeypatch.setenv("IDC_DATA_DIR", "/somewhere/data")
    P = params.chapter_params("x", ns)
    assert P.seed == profiles.profile_params("smoke")["seed"] and P.image_size == 77
    assert set(P.values) == {"data_dir", "run_dir", "seed", "image_size"}
    t = P.table()
    assert (
        t.loc["data_dir", "value"] == "$IDC_DATA_DIR"
        and t.loc["image_size", "source"] == "papermill / caller"
    )
    assert Path(tmp_path).name in t.loc["run_dir", "value"]


def test_profiles_exist_and_differ():
    every = profiles.load_profiles()
    assert {"smoke", "sample", "full"} <= set(every)
    assert every["smoke"]["max_patients"] and every["sample"]["max_patients"] is None


def test_chapter_params_fill_from_profile_and_keep_given(tmp_path):
    p = params.chapter_params(
        "99_test", profile="smoke", run_dir=str(tmp_path), seed=7, max_patients=None
    )
    assert p.seed == 7 and "seed" in p.given
    assert p.max_patients == profiles.profile_params("smoke")["max_patients"]
    assert p.run.dir == tmp_path and (tmp_path / "models").is_dir()
    rec = json.loads((tmp_path / "params.json").read_text())["99_test"]
    assert rec["parameters"]["seed"] == 7 and rec["profile"] == "smoke"
    t = p.table()
    assert t.loc["seed", "source"] == "papermill / caller"
    assert t.loc["max_patients", "source"] == "profile 'smoke'"


def test_relative_run_dir_is_made_absolute(tmp_path, monkeypatch):
    # chapters execute with notebooks/ as their working folder: a relative run folder given on
    # the command line must still mean the folder under the caller's working folder
    monkeypatch.chdir(tmp_path)
    run = run_folder.Run.for_profile("smoke", "runs/mine")
    assert run.dir == tmp_path / "runs" / "mine" and run.dir.is_absolute()


def test_chapter_params_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown profile"):
        params.chapter_params("x", profile="nope", run_dir=str(tmp_path))
    with pytest.raises(ValueError, match="no default"):
        params.chapter_params("x", profile="smoke", run_dir=str(tmp_path), not_a_param=None)
    p = params.chapter_params("x", profile="smoke", run_dir=str(tmp_path))
    with pytest.raises(AttributeError, match="not defined"):
        _ = p.epochs_that_do_not_exist


def test_record_metrics_merges_sections(tmp_path):
    run = run_folder.Run(tmp_path)
    run.record_metrics("a", {"x": np.float64(0.5), "n": np.int64(3), "nan": float("nan")})
    run.record_metrics("b", {"y": [1, 2]})
    m = run.metrics()
    assert m["a"] == {"x": 0.5, "n": 3, "nan": None} and m["b"] == {"y": [1, 2]}


def test_overrides_make_an_experiment_that_reads_the_books_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IDC_BOOK_ROOT", str(tmp_path))
    book = tmp_path / "runs" / "smoke"
    (book / "models").mkdir(parents=True)
    (book / "split.csv").write_text("patient,split\n1,train\n")
    (book / "models" / "cnn.keras").write_bytes(b"the book's model")
    (book / "figures").mkdir()
    (book / "figures" / "f.png").write_bytes(b"png")
    epochs = profiles.profile_params("smoke")["cnn_epochs"]

    same = params.chapter_params("04_x", profile="smoke", cnn_epochs=epochs)
    assert same.run.dir == book  # a value equal to the profile's is no experiment

    p = params.chapter_params("04_x", profile="smoke", cnn_epochs=epochs + 1)
    exp = p.run.dir
    assert exp.parent == book / "experiments" and exp.name.startswith("04_x-")
    assert f"Experiment (cnn_epochs={epochs + 1})" in capsys.readouterr().out
    assert (exp / "split.csv").read_text() == (book / "split.csv").read_text()
    assert not (exp / "figures" / "f.png").exists()  # what the chapter draws is its own
    (exp / "models" / "cnn.keras").write_bytes(b"a 1-epoch model")  # the experiment trains
    assert (book / "models" / "cnn.keras").read_bytes() == b"the book's model"
    recorded = json.loads((exp / "params.json").read_text())["04_x"]["parameters"]
    assert recorded["cnn_epochs"] == epochs + 1 and recorded["run_dir"] == str(exp)

    (book / "split.csv").write_text("patient,split\n1,val\n")  # the book moved on
    again = params.chapter_params("04_x", profile="smoke", cnn_epochs=epochs + 1)
    assert again.run.dir == exp  # the same overrides, the same folder
    assert (exp / "split.csv").read_text().endswith("1,val\n")  # an untouched copy follows
    assert (exp / "models" / "cnn.keras").read_bytes() == b"a 1-epoch model"  # its own stays
    given = params.chapter_params("04_x", profile="smoke", cnn_epochs=1, run_dir=tmp_path / "r")
    assert given.run.dir == tmp_path / "r"  # a folder the user names is used as it is


def test_an_injected_key_the_chapter_does_not_declare_is_named(tmp_path):
    cells = ["import os", 'profile = "smoke"\nrun_dir = None\nseed = None\n']
    ns = {"In": [*cells, "# Parameters\nseed = 3\nnot_a_key = 1\n"], "seed": 3, "profile": "smoke"}
    with pytest.raises(ValueError, match="unknown parameter 'not_a_key'.*profile, run_dir, seed"):
        params.chapter_params("01_x", {**ns, "run_dir": str(tmp_path)})
    ns["In"][-1] = "# Parameters\nseed = 3\n"
    assert params.chapter_params("01_x", {**ns, "run_dir": str(tmp_path)}).seed == 3
