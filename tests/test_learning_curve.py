"""The learning curve: nested training subsets, the log-linear fit, the gap sentence, one point."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import toy_data

from idc_utils import figures, learning_curve, split, train


def three_way_split(n_patients=40, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        part = "train" if p < 24 else ("val" if p < 32 else "test")
        for _ in range(int(rng.integers(3, 9))):
            rows.append((str(p), part, int(rng.random() < 0.3)))
    return pd.DataFrame(rows, columns=["patient_id", "split", "label"])


def test_train_subset_keeps_whole_training_patients_nested_and_leaves_val_test_alone():
    df = three_way_split()
    quarter = split.train_subset(df, 0.25, seed=5)
    half = split.train_subset(df, 0.5, seed=5)
    pats = {f: set(s[s.split == "train"].patient_id) for f, s in (("q", quarter), ("h", half))}
    assert len(pats["q"]) == 6 and len(pats["h"]) == 12
    assert pats["q"] < pats["h"], "a smaller share is inside every larger one of the same seed"
    for sub in (quarter, half):
        kept = sub[sub.split == "train"]
        whole = df[df.patient_id.isin(kept.patient_id)]
        assert len(kept) == len(whole), "a kept patient keeps all of its patches"
        for part in ("val", "test"):
            pd.testing.assert_frame_equal(sub[sub.split == part], df[df.split == part])
    other = split.train_subset(df, 0.25, seed=6)
    assert set(other[other.split == "train"].patient_id) != pats["q"], "the seed draws patients"
    assert len(split.train_subset(df, 1.0, seed=5)) == len(df)
    with pytest.raises(ValueError, match="fraction"):
        split.train_subset(df, 0.0)


def test_log_linear_fit_recovers_the_slope_and_extrapolates():
    patches = np.array([1000, 2000, 4000, 1000, 2000, 4000])
    auc = 0.80 + 0.01 * np.log2(patches / 1000) + np.array([0, 0, 0, 0.002, 0.002, 0.002])
    fit = learning_curve.fit_log_linear(patches, auc)
    assert fit.per_doubling == pytest.approx(0.01, abs=1e-9)
    assert 0 < fit.per_doubling_se < 0.001, "two seeds 0.002 apart: a small, nonzero error"
    assert fit.at(16000) == pytest.approx(0.841, abs=1e-6), "4 doublings past 1000 patches"
    with pytest.raises(ValueError, match="two or more"):
        learning_curve.fit_log_linear([1000, 1000], [0.8, 0.81])


def study_with(slope: float, ours: float, val_frac=0.25, test_frac=0.15):
    points = []
    for patches, patients in ((1000, 27), (2000, 54), (4000, 108)):
        auc = ours - slope * np.log2(4000 / patches)
        points.append(
            {
                "train_patients": patients,
                "train_patches": patches,
                "seed": 1,
                "val_auc": auc - 0.02,
                "test_auc": [auc, auc - 0.03, auc + 0.02],
                "train_minutes": 1.0,
            }
        )
    return {"points": points, "val_frac": val_frac, "test_frac": test_frac}


def test_gap_sentence_attributes_the_gap_to_data_or_to_recipe():
    full = learning_curve.full_train_patches(study_with(0.01, 0.93))
    assert full == round(277_524 * 0.6)
    doublings = np.log2(full / 4000)
    # a slope that reaches the anchors at the full size: the gap is data
    steep = 0.025 / doublings
    text = learning_curve.gap_sentence(study_with(steep, 0.93), {"anchor": 0.955})
    assert f"{steep:+.4f}" in text and "mostly the 3%" in text and "0.955" in text
    # a slope that closes a fifth of it: the recipe is the larger lever
    text = learning_curve.gap_sentence(study_with(0.005 / doublings, 0.93), {"anchor": 0.955})
    assert "recipe is the larger lever" in text and "20%" in text
    # a flat curve cannot blame the data
    text = learning_curve.gap_sentence(study_with(-0.001, 0.93), {"anchor": 0.955})
    assert "cannot attribute the gap to data" in text
    # already there
    text = learning_curve.gap_sentence(study_with(0.01, 0.96), {"anchor": 0.955})
    assert "already at the anchors' level" in text


def test_learning_curve_figure_draws_points_line_and_anchors():
    study = study_with(0.008, 0.93)
    fig = figures.plot_learning_curve(study, {"paper": 0.9558})
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("test AUC" in t for t in labels) and any("paper" in t for t in labels)
    line = [ln for ln in ax.get_lines() if ln.get_label().startswith("log-linear")][0]
    assert max(line.get_xdata()) == pytest.approx(learning_curve.full_train_patches(study))
    assert learning_curve.points_table(study)["train patients"].tolist() == [27, 54, 108]


@pytest.mark.slow
def test_measure_point_trains_on_the_subset_and_scores_val_and_test(tmp_path):
    images, df = toy_data()
    cfg = train.TrainConfig.scratch(
        epochs=1, image_size=50, cnn_width=8, batch_size=16, patience=1, augment=None, seed=3
    )
    point = learning_curve.measure_point(
        cfg, images, df, 0.4, 11, tmp_path, data_fingerprint="toy", n_boot=50, log=lambda *_: 0
    )
    assert point["train_patients"] == 2 and point["train_patches"] == 40
    assert point["seed"] == 11 and 0 <= point["val_auc"] <= 1
    est, low, high = point["test_auc"]
    assert low <= est <= high
    card = (tmp_path / "lc_0.4_seed11.json").read_text()
    assert '"seed": 11' in card and '"train_patients": 2' in card


def test_provenance_says_whether_the_study_used_this_split():
    df = three_way_split()
    study = {
        "machine": "test machine",
        "finished": "2026-11-30T00:00:00",
        "val_patients": 8,
        "test_patients": 8,
        "patients_fingerprint": split.patients_fingerprint(df),
    }
    assert split.study_provenance(study, df, "tools/x.py").endswith("this run's split")
    moved = df.copy()
    moved.loc[moved.patient_id == "0", "split"] = "val"
    assert split.patients_fingerprint(moved) != study["patients_fingerprint"]
    assert "another split" in split.study_provenance(study, moved, "tools/x.py")
