"""The learning curve: points trained on subsets, a power law fitted, the gap described."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import toy_data
from study_helpers import study_with, three_way_split

from idc_utils.data import split
from idc_utils.evaluation import metrics
from idc_utils.models import cards, inference
from idc_utils.studies import learning_curve, learning_curve_points, provenance
from idc_utils.training import config


def test_power_law_fit_recovers_the_rate_and_extrapolates():
    patches = np.array([1000, 2000, 4000, 1000, 2000, 4000])
    # the error halves with every doubling; the second seed's error is 5% higher throughout
    err = 0.2 * (patches / 1000) ** -1.0 * np.array([1, 1, 1, 1.05, 1.05, 1.05])
    fit = learning_curve.fit_power_law(patches, 1 - err)
    assert fit.error_per_doubling == pytest.approx(0.5, abs=1e-9)
    assert 0 < fit.slope_se < 0.05, "two seeds a constant factor apart: small, nonzero"
    mid = 0.2 * np.sqrt(1.05)  # the fit passes between the seeds (geometric mean)
    assert fit.at(16000) == pytest.approx(1 - mid / 16, abs=1e-9), "4 doublings past 1000"
    assert fit.patches_for(1 - mid / 8) == pytest.approx(8000)
    flat = learning_curve.fit_power_law([1000, 2000], [0.9, 0.89])
    assert flat.patches_for(0.95) == float("inf")
    with pytest.raises(ValueError, match="two or more"):
        learning_curve.fit_power_law([1000, 1000], [0.8, 0.81])
    with pytest.raises(ValueError, match="strictly between"):
        learning_curve.fit_power_law([1000, 2000], [0.8, 1.0])


def two_seeds(error_per_doubling: float, ours: float, seed_gap: float):
    """Two seeds per size; the second's AUC ``seed_gap`` lower at every size."""
    study = study_with(error_per_doubling, ours)
    second = []
    for p in study["points"]:
        q = dict(p, seed=2, test_auc=[p["test_auc"][0] - seed_gap, *p["test_auc"][1:]])
        second.append(q)
    return {**study, "points": study["points"] + second}


def test_gap_sentence_stays_within_the_sizes_measured():
    assert learning_curve.full_train_patches(study_with(0.8, 0.93)) == round(277_524 * 0.6)
    text = learning_curve.gap_sentence(two_seeds(0.8, 0.93, 0.002))
    assert "**0.80**" in text and "27 to 108 training patients" in text
    assert "more than a second seed" in text and "not extended to the full set" in text
    # no forecast and no published figure: the curve is of one recipe at the sizes measured
    assert "0.955" not in text and "paper's" not in text
    # a doubling worth less than the spread between seeds is within the noise
    text = learning_curve.gap_sentence(two_seeds(0.99, 0.93, 0.05))
    assert "within the noise of training" in text
    assert learning_curve.seed_spread(two_seeds(0.99, 0.93, 0.05)) == pytest.approx(0.05)
    # an error that does not fall cannot show data to be the lever
    text = learning_curve.gap_sentence(study_with(1.02, 0.93))
    assert "do not show data to be the lever" in text


@pytest.mark.slow
def test_measure_point_trains_on_the_subset_and_scores_val_and_test(tmp_path):
    images, df = toy_data()
    cfg = config.TrainConfig.scratch(
        epochs=1, image_size=50, cnn_width=8, batch_size=16, patience=1, augment=None, seed=3
    )
    point = learning_curve_points.measure_point(
        cfg, images, df, 0.4, 11, tmp_path, data_fingerprint="toy", n_boot=50, log=lambda *_: 0
    )
    assert point["train_patients"] == 2 and point["train_patches"] == 40
    assert point["seed"] == 11 and 0 <= point["val_auc"] <= 1

    model, _ = cards.load_model(tmp_path / "lc_0.4_seed11.keras")
    val = df[df.split == "val"]
    p_val = inference.predict_proba(model, images, val["i"])
    assert point["val_auc"] == pytest.approx(metrics.binary_metrics(val["label"], p_val)["auc"])
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
        "assignment_digest": split.assignment_digest(df),
    }
    assert provenance.study_provenance(study, df, "tools/x.py").endswith("this run's split")
    moved = df.copy()
    moved.loc[moved.patient_id == "0", "split"] = "val"
    assert split.assignment_digest(moved) != study["assignment_digest"]
    assert "another split" in provenance.study_provenance(study, moved, "tools/x.py")
