"""The chapters' figures and tables draw what they are given."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import patient_data
from study_helpers import study_with

from idc_utils.chapters import (
    eda_figures,
    errors_figures,
    evaluation_figures,
    preprocessing_figures,
    style,
)
from idc_utils.data import pipeline
from idc_utils.evaluation import metrics
from idc_utils.models import stain
from idc_utils.models.augment import AugmentConfig
from idc_utils.studies import learning_curve


def asymmetric_batch(n=16):
    base = np.zeros((50, 50, 3), np.float32)
    base[5:15, 5:30] = 255  # a bar near the top-left: every rotation and flip looks different
    base[30:45, 40:45] = 128
    return np.repeat(base[None], n, axis=0), base


def test_threshold_drift_reports_each_split_at_the_chosen_threshold():
    y, p, _ = patient_data()
    card = {"threshold": 0.4, "target_recall": 0.9}
    fig, table = evaluation_figures.threshold_drift(
        {"m": (card, {"val": (y[:600], p[:600]), "test": (y[600:], p[600:])})}
    )
    assert list(table.index) == [("m", "val"), ("m", "test")]
    assert table.loc[("m", "test"), "recall"] == pytest.approx(
        metrics.binary_metrics(y[600:], p[600:], 0.4)["recall"]
    )


def test_learning_curve_figure_draws_the_measured_sizes_only():
    study = study_with(0.8, 0.93)
    fig = errors_figures.plot_learning_curve(study)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("test, 95% CI" in t for t in labels) and not any("paper" in t for t in labels)
    line = [ln for ln in ax.get_lines() if ln.get_label().startswith("power law")][0]
    assert "x 0.80 per doubling" in line.get_label()
    # nothing is extrapolated: the fitted line ends at the largest training set measured
    assert max(line.get_xdata()) == pytest.approx(4000)
    assert learning_curve.points_table(study)["train patients"].tolist() == [27, 54, 108]


def test_outcome_colours_are_the_colour_blind_safe_palette():
    assert style.OUTCOME_COLORS["true positive"] == "#0072B2"
    assert style.OUTCOME_COLORS["false negative"] == "#D55E00"
    assert style.OUTCOME_COLORS["false positive"] == "#E69F00"
    assert set(style.CLASS_COLORS.values()) <= set(style.OKABE_ITO.values())
    assert set(errors_figures.OUTCOMES) == set(style.OUTCOME_COLORS)


def test_outcome_map_and_mosaic_figure_code_each_patch_by_its_outcome():
    # four patches in a row: IDC+ found, IDC+ missed, IDC- alarmed, IDC- quiet
    imgs = np.full((4, 50, 50, 3), 200, np.uint8)
    rows = pd.DataFrame({"x": [1, 51, 101, 151], "y": [1] * 4, "label": [1, 1, 0, 0]})
    prob = np.array([0.9, 0.2, 0.8, 0.1])
    from idc_utils.data.mosaic import mosaic, value_map

    _, grid = mosaic(imgs, rows["x"], rows["y"])
    truth = value_map(grid, rows["label"], fill=0) > 0.5
    cat = errors_figures.outcome_map(prob, truth, grid, 0.5)
    assert cat[0].tolist() == [3, 1, 2, 0]
    fig = errors_figures.plot_mosaic_heatmap(imgs, rows, prob, 0.5, "toy")
    legend = [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    assert legend == list(errors_figures.OUTCOMES)


def test_outcome_grid_has_a_row_per_outcome():
    imgs = np.full((3, 50, 50, 3), 200, np.uint8)
    kinds = np.array(["true positive", "false positive", "true negative"])
    fig = errors_figures.outcome_grid(imgs, kinds, np.array([0.9, 0.8, 0.1]), 2)
    assert len(fig.axes) == 4 * 2
    assert "(none)" in fig.axes[2].get_ylabel()  # no false negative in this toy


def test_chapter_figures_and_tables():
    x, base = asymmetric_batch(2)
    patches = x.astype(np.uint8)
    t = preprocessing_figures.scaling_table(patches)
    assert t.loc["unit", "max"] == pytest.approx(1.0) and t.loc["lite", "min"] == pytest.approx(
        -127 / 128
    )
    fig = preprocessing_figures.plot_resize(
        patches, ["a", "b"], 96
    )  # each patch: stored, nearest, bilinear
    shown = [ax.images[0].get_array() for ax in fig.axes]
    assert len(shown) == 6 and shown[0].shape[:2] == (50, 50) and shown[1].shape[:2] == (96, 96)
    np.testing.assert_array_equal(np.asarray(shown[0]), patches[0])
    fig = preprocessing_figures.plot_hed(patches, ["a", "b"])
    np.testing.assert_allclose(
        np.asarray(fig.axes[1].images[0].get_array()), stain.hed_channels(patches[0])[..., 0]
    )
    fig = preprocessing_figures.plot_scaling(patches)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["unit", "lite"]
    gallery = preprocessing_figures.augmentation_gallery(patches[0], AugmentConfig(), draws=3)
    assert set(gallery) >= {"original", "flips", "hed", "all together"}
    assert all(v.shape == (3, 50, 50, 3) for v in gallery.values())
    np.testing.assert_array_equal(gallery["original"][0], patches[0])
    assert not np.array_equal(gallery["all together"][0], patches[0])
    fig = preprocessing_figures.plot_gallery(gallery)
    assert len(fig.axes) == 3 * len(gallery) and fig.axes[0].get_ylabel() == "original"
    # the profile trains without free rotation: the gallery shows the paper's, marked off
    trained = AugmentConfig(rotation_deg=0.0, translate=0.0, zoom=0.0)
    marked = preprocessing_figures.augmentation_gallery(
        patches[0], trained, draws=3, paper=AugmentConfig.paper()
    )
    off = "rotation_deg 15 (paper; off in training)"
    assert off in marked and "rotation_deg" not in marked
    assert not np.array_equal(marked[off][0], patches[0])
    assert set(preprocessing_figures.augmentation_gallery(patches[0], trained, draws=3)).isdisjoint(
        {off, "rotation_deg", "zoom", "translate"}
    )
    n, seconds = pipeline.pipeline_throughput(
        pipeline.patch_batches(patches, [0, 1], None, batch_size=1)
    )
    assert n == 2 and seconds > 0


def test_patient_overview_figure():
    imgs = np.full((2, 50, 50, 3), 100, np.uint8)
    rows = pd.DataFrame({"x": [1, 51], "y": [1, 1], "label": [0, 1]})
    fig, grid = eda_figures.plot_patient_overview(imgs, rows, "p")
    assert (grid.rows, grid.cols) == (1, 2) and len(fig.axes) == 2


def test_lever_table_shows_a_real_gain_and_no_gain_for_no_change():

    rng = np.random.default_rng(4)
    parts, old, better = {}, {}, {}
    for s in ("val", "test"):
        y = rng.random(600) < 0.3
        parts[s] = pd.DataFrame({"label": y.astype(int), "patient_id": np.arange(600) // 20})
        old[s] = np.clip(0.5 * y + rng.normal(0.25, 0.35, 600), 0, 1)
        better[s] = np.clip(0.5 * y + rng.normal(0.25, 0.15, 600), 0, 1)
    table = errors_figures.lever_table(
        {"sharper": (better, old, True), "nothing": (old, old, False)}, parts, n_boot=200
    )
    assert table.loc["sharper", "val_low"] > 0 and table.loc["nothing", "val_low"] == 0
    assert table.loc["nothing", "test AUC gain [95% CI]"].startswith("+0.0000")
    assert list(table.columns) == [
        "val AUC gain [95% CI]",
        "test AUC gain [95% CI]",
        "on by default",
        "val_low",
    ]
