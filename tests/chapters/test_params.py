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
