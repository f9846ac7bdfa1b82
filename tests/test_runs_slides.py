"""Profiles and chapter parameters; mosaics placed from coordinates."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from idc_utils import figures, runs, slides


def test_profiles_exist_and_differ():
    profiles = runs.load_profiles()
    assert {"smoke", "sample", "full"} <= set(profiles)
    assert profiles["smoke"]["max_patients"] and profiles["sample"]["max_patients"] is None


def test_chapter_params_fill_from_profile_and_keep_given(tmp_path):
    p = runs.chapter_params(
        "99_test", profile="smoke", run_dir=str(tmp_path), seed=7, max_patients=None
    )
    assert p.seed == 7 and "seed" in p.given
    assert p.max_patients == runs.profile_params("smoke")["max_patients"]
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
    run = runs.Run.for_profile("smoke", "runs/mine")
    assert run.dir == tmp_path / "runs" / "mine" and run.dir.is_absolute()


def test_chapter_params_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown profile"):
        runs.chapter_params("x", profile="nope", run_dir=str(tmp_path))
    with pytest.raises(ValueError, match="no default"):
        runs.chapter_params("x", profile="smoke", run_dir=str(tmp_path), not_a_param=None)
    p = runs.chapter_params("x", profile="smoke", run_dir=str(tmp_path))
    with pytest.raises(AttributeError, match="not defined"):
        _ = p.epochs_that_do_not_exist


def test_record_metrics_merges_sections(tmp_path):
    run = runs.Run(tmp_path)
    run.record_metrics("a", {"x": np.float64(0.5), "n": np.int64(3), "nan": float("nan")})
    run.record_metrics("b", {"y": [1, 2]})
    m = run.metrics()
    assert m["a"] == {"x": 0.5, "n": 3, "nan": None} and m["b"] == {"y": [1, 2]}


def test_mosaic_places_patches_at_their_coordinates():
    imgs = np.stack([np.full((50, 50, 3), v, np.uint8) for v in (10, 20, 30)])
    x = np.array([101, 151, 101])
    y = np.array([51, 51, 151])
    canvas, grid = slides.mosaic(imgs, x, y)
    assert canvas.shape == (150, 100, 3)
    assert (canvas[:50, :50] == 10).all() and (canvas[:50, 50:] == 20).all()
    assert (canvas[50:100] == 255).all(), "no patch there: background"
    assert (canvas[100:, :50] == 30).all()
    vm = slides.value_map(grid, [0.1, 0.2, 0.3])
    assert vm.shape == (3, 2) and vm[0, 1] == pytest.approx(0.2) and np.isnan(vm[1, 0])


def test_patient_rows_names_alternatives():
    m = pd.DataFrame(
        {"patient_id": ["1", "1", "2"], "x": [1, 51, 1], "y": [1, 1, 1], "label": [0, 1, 0]}
    )
    assert len(slides.patient_rows(m, "1")) == 2
    with pytest.raises(ValueError, match=r"1 \(2\)"):
        slides.patient_rows(m, "77")


def test_write_zip_keeps_kaggle_paths(tmp_path):
    import zipfile

    from idc_utils import data

    (tmp_path / "7" / "1").mkdir(parents=True)
    (tmp_path / "7" / "1" / "a.png").write_bytes(b"x")
    z = data.write_zip(tmp_path, ["7/1/a.png"], tmp_path / "p.zip")
    assert zipfile.ZipFile(z).namelist() == ["7/1/a.png"]


def test_patient_overview_figure():
    imgs = np.full((2, 50, 50, 3), 100, np.uint8)
    rows = pd.DataFrame({"x": [1, 51], "y": [1, 1], "label": [0, 1]})
    fig, grid = figures.plot_patient_overview(imgs, rows, "p")
    assert (grid.rows, grid.cols) == (1, 2) and len(fig.axes) == 2
