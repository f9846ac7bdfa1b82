"""The chapters run under papermill with the smoke profile on the shared sample.

The chapters are executed once per session into a temporary run folder; with ``IDC_SMOKE_RUN``
set to the run folder of a smoke book just built (what ``.ci/run`` does after
``make book PROFILE=smoke``), the tests read that build instead of executing the chapters again."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import ROOT

from idc_utils.book import notebooks, runner
from idc_utils.data import dataset, split
from idc_utils.evaluation import thresholds
from idc_utils.models import cards, inference
from idc_utils.studies import synthetic_gain
from idc_utils.training import generator

pytestmark = pytest.mark.book


@pytest.fixture(scope="module")
def smoke_run(shared_sample, tmp_path_factory):
    given = os.environ.get("IDC_SMOKE_RUN")
    if given:
        run_dir = Path(given)
        record = json.loads((run_dir / "book.json").read_text())
        assert record["profile"] == "smoke", f"{run_dir} is not a smoke run"
        return run_dir, [run_dir / "notebooks" / p.name for p in notebooks.chapter_notebooks()]
    # a run folder that does not exist yet, as `--run-dir runs/mine` gives on a fresh clone
    run_dir = tmp_path_factory.mktemp("run-smoke") / "runs" / "smoke"
    executed = runner.run_chapters(
        "smoke", str(shared_sample), run_dir=run_dir, log=lambda *_: None
    )
    return run_dir, executed


def test_toc_lists_existing_notebooks_with_parameters_cells():
    nbs = notebooks.chapter_notebooks()
    assert nbs and nbs[0].name == "01_eda.ipynb"
    for nb in nbs:
        assert "profile" in notebooks.declared_parameters(nbformat.read(nb, as_version=4))
        cells = nbformat.read(nb, as_version=4).cells
        assert sum("parameters" in c.metadata.get("tags", []) for c in cells) == 1
        assert all(c.get("outputs", []) == [] for c in cells if c.cell_type == "code"), (
            f"{nb.name}: commit notebooks without outputs"
        )
        raw = json.loads(nb.read_text())  # as saved, before nbformat fills anything in
        assert all(c.get("id") for c in raw["cells"]), f"{nb.name}: a cell has no id"


def test_smoke_chapters_execute_without_errors(smoke_run):
    run_dir, executed = smoke_run
    assert [p.name for p in executed] == [p.name for p in notebooks.chapter_notebooks()]
    for path in executed:
        nb = nbformat.read(path, as_version=4)
        assert notebooks.error_outputs(nb) == []
        images = sum(
            1 for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
        )
        assert images >= 1, f"{path.name} shows no figure"
        assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)


def test_eda_chapter_writes_the_split_and_its_record(smoke_run):
    run_dir, _ = smoke_run
    df = split.load_split(run_dir / "split.csv")  # checks columns and leakage
    assert set(df["split"]) == {"train", "val", "test", "holdout"}
    assert set(df.loc[df["patient_id"] == "14082", "split"]) == {"holdout"}
    assert df["patient_id"].nunique() == 40  # the smoke profile keeps 40 patients
    params = json.loads((run_dir / "params.json").read_text())
    assert params["01_eda"]["profile"] == "smoke"
    metrics = json.loads((run_dir / "metrics.json").read_text())["eda"]
    assert (
        metrics["patients_used"] == 40
        and metrics["patch_split_leak"]["of them also in the training part"] > 0
    )
    assert (run_dir / "figures" / "01_mosaic.png").stat().st_size > 10_000


def test_training_chapters_save_models_with_cards(smoke_run, shared_sample):
    run_dir, _ = smoke_run

    ds = dataset.load_dataset(shared_sample)
    df = split.attach_split(ds.manifest, split.load_split(run_dir / "split.csv"))
    val = df[df.split == "val"]
    for name, backbone in (("cnn", "cnn"), ("efficientnet", "efficientnet_lite0")):
        model, card = cards.load_model(run_dir / "models" / f"{name}.keras")
        assert card["backbone"] == backbone and 0 < card["threshold"] < 1
        assert card["data"]["fingerprint"] == ds.fingerprint and card["seed"] == 1337
        # the saved threshold is what the saved model's validation scores give for the target
        p_val = inference.predict_proba(model, ds.images, val["i"], tta=card["tta"])
        expected = thresholds.choose_operating_point(
            val["label"],
            p_val,
            card["target_recall"],
            patients=val["patient_id"],
            method=card["threshold_method"],
            seed=card["seed"],
        ).threshold
        assert card["threshold"] == pytest.approx(expected, abs=1e-5), name
    assert (
        json.loads((run_dir / "models" / "efficientnet.json").read_text())["image_size"] == 64
    )  # smoke


def test_later_chapters_record_their_numbers(smoke_run):
    run_dir, _ = smoke_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"eda", "preprocessing", "balance", "cnn", "efficientnet", "evaluation", "demo"} <= set(
        metrics
    )
    assert (
        metrics["demo"]["demo_vs_predict_max_diff"] < 1e-3
        and "IDC+ area" in metrics["demo"]["tissue_summary"]
    )
    assert metrics["preprocessing"]["pipeline_patches_per_s"] > 0
    balance = {row["method"] for row in metrics["balance"]["table"]}
    assert balance == {"none", "class_weight", "smote"}
    ev = metrics["evaluation"]
    for model in ("cnn", "efficientnet"):
        auc = ev["models"][model]["ci"]["auc"]
        assert auc["low"] <= auc["estimate"] <= auc["high"]
    assert metrics["errors"]["mosaic"][0]["patches"] == 478  # the held-out complete patient
    import pandas as pd

    preds = pd.read_csv(run_dir / "test_predictions.csv")
    assert {"prob_cnn", "prob_efficientnet"} <= set(preds.columns) and preds["prob_cnn"].between(
        0, 1
    ).all()
    # the ensemble of chapter 5 is evaluated like the others, and is the mean of the two
    assert "ensemble" in ev["models"]
    np.testing.assert_allclose(
        preds["prob_ensemble"], (preds["prob_cnn"] + preds["prob_efficientnet"]) / 2, atol=1e-5
    )


def test_the_synthetic_patches_chapter_records_its_checks(smoke_run, shared_sample):
    run_dir, _ = smoke_run
    syn = json.loads((run_dir / "metrics.json").read_text())["synthetic"]
    gen = syn["generator"]
    # a fixed number of steps, trained in the run: the smoke profile publishes no generator
    chapter = json.loads((run_dir / "params.json").read_text())["10_synthetic_patches"]
    params = chapter["parameters"]
    assert gen["source"] == "trained in this run"
    assert gen["steps"] == params["gen_train_steps"] and 0 < gen["best_step"] <= gen["steps"]
    # the generator learned from the training patients of this run's split, and only them

    _, df = split.dataset_with_split(shared_sample, run_dir / "split.csv")

    train_rows = df[df.split == "train"]
    assert gen["training_rows_digest"] == split.training_rows_digest(train_rows)
    assert generator.load_generator(run_dir / "models" / "generator").steps == gen["steps"]
    methods = [row["method"] for row in syn["gain"]]
    assert methods == list(synthetic_gain.GAIN_METHODS)
    for row in syn["gain"]:
        if row["method"] != "none":
            assert row["auc_vs_none_low"] <= row["auc_vs_none"] <= row["auc_vs_none_high"]
    assert syn["verdict"]["sentence"] and syn["verdict"]["why"]
    assert all(0.5 <= v <= 1 for v in syn["probe_auc"].values())
    assert (run_dir / "figures" / "10_real_vs_synthetic.png").stat().st_size > 5_000


def test_book_refuses_to_start_without_data(tmp_path, monkeypatch):
    monkeypatch.delenv("IDC_DATA_DIR", raising=False)
    from idc_utils.core.errors import DataNotFoundError

    with pytest.raises(DataNotFoundError, match="make data"):
        runner.run_chapters("smoke", None, run_dir=tmp_path)


def files_of(folder):
    """Every file under ``folder``, by relative path, byte for byte."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_a_papermill_experiment_leaves_the_books_models_alone(smoke_run, tmp_path, monkeypatch):
    """README's invitation, `papermill 05_cnn_baseline.ipynb out.ipynb -p KEY VALUE`, lands in
    an experiment folder; the book's models stay byte-identical, and the output is quiet."""
    import papermill as pm

    run_dir, _ = smoke_run
    models = files_of(run_dir / "models")
    monkeypatch.setenv("IDC_BOOK_ROOT", str(run_dir.parents[1]))  # the book's run: runs/smoke
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(
        str(ROOT / "notebooks" / "05_cnn_baseline.ipynb"),
        str(out),
        parameters={"profile": "smoke", "cnn_width": 8},
        kernel_name="python3",
        cwd=str(ROOT / "notebooks"),
        progress_bar=False,
    )
    now = files_of(run_dir / "models")
    assert now == models
    [exp] = (run_dir / "experiments").glob("05_cnn_baseline-*")
    assert (exp / "models" / "cnn.keras").read_bytes() != models["cnn.keras"]
    card = json.loads((exp / "models" / "cnn.json").read_text())
    assert card["reuse_key"]["config"]["cnn_width"] == 8
    done = nbformat.read(out, as_version=4)
    streams = [o for c in done.cells for o in c.get("outputs", []) if o.get("name") == "stderr"]
    assert not [o for o in streams if "absl" in o["text"] or "oneDNN" in o["text"]], streams


def test_chapter_7_runs_from_a_published_run_fetched_over_http(smoke_run, served, tmp_path):
    """Start from chapter 6: publish the run as the Pages workflow does, fetch it into an empty
    run folder over HTTP (every hash checked) and run the chapter there, without training. The
    published numbers come along: the run compares the same as the one that was published."""
    import papermill as pm

    from idc_utils import cli

    run_dir, _ = smoke_run
    site, url = served
    assert cli.main(["run", "publish", "--run-dir", str(run_dir), "--out", str(site / "run")]) == 0
    fresh = tmp_path / "laptop" / "runs" / "smoke"
    assert cli.main(["run", "fetch", "--from", f"{url}/run", "--run-dir", str(fresh)]) == 0
    assert cli.main(["run", "compare", str(run_dir), str(fresh)]) == 0
    fetched = files_of(fresh / "models")
    pm.execute_notebook(
        str(ROOT / "notebooks" / "07_evaluation.ipynb"),
        str(tmp_path / "06.ipynb"),
        parameters={"profile": "smoke", "run_dir": str(fresh)},
        kernel_name="python3",
        cwd=str(ROOT / "notebooks"),
        progress_bar=False,
    )
    assert "evaluation" in json.loads((fresh / "metrics.json").read_text())
    now = files_of(fresh / "models")
    assert now == fetched


def test_run_compare_reads_the_numbers_the_chapters_glued(smoke_run, tmp_path, capsys):
    """``run compare`` on real executed chapters: a copy of the run is the same, number for number,
    and a number changed in the copy is named with both values."""
    from idc_utils import cli
    from idc_utils.book import run_comparison

    run_dir, _ = smoke_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir / "notebooks", copy / "notebooks")
    comp = run_comparison.compare_runs(run_dir, copy)
    same, compared = comp.counts()
    assert comp.same and same == compared and compared >= 100
    # chapter 2's speed measurements are marked as such (shown, not counted)
    speeds = {c.chapter: c.timings for c in comp.chapters}["02_preprocessing"]
    assert sorted(speeds) == ["timing_aug_cost", "timing_aug_rate", "timing_pipe_rate"]
    values = run_comparison.glued_values(copy / "notebooks" / "07_evaluation.ipynb")
    assert not [k for k, v in values.items() if "display.Markdown object" in v]  # the text shown
    auc = values["eff_auc"]
    path = copy / "notebooks" / "07_evaluation.ipynb"
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if out.get("metadata", {}).get("scrapbook", {}).get("name") == "eff_auc":
                out["data"]["application/papermill.record/text/plain"] = repr("0.123")
    path.write_text(json.dumps(nb))
    assert cli.main(["run", "compare", str(run_dir), str(copy)]) == 1
    assert f"eff_auc: {auc} -> 0.123" in capsys.readouterr().out
