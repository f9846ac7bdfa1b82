"""Chapter 3's computations: the score needs no learning, the AUC counted pair by pair is the
one scikit-learn computes, and resampling patches understates the spread across patients."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import patient_data
from sklearn.metrics import roc_auc_score

from idc_utils.studies import primer


def test_the_hematoxylin_score_is_higher_for_purple_than_for_pink_or_white_patches():
    patches = np.empty((3, 50, 50, 3), np.uint8)
    patches[0] = (90, 60, 150)  # hematoxylin: blue-purple
    patches[1] = (200, 120, 170)  # mostly eosin: pink
    patches[2] = 255  # background
    images = np.concatenate([patches, patches])  # rows 3-5 repeat rows 0-2
    s = primer.hematoxylin_score(images, [0, 1, 2, 5], chunk=2)
    assert s[0] > s[1] > s[2] and s[2] == pytest.approx(0.0, abs=1e-4) and s[3] == s[2]


def test_the_auc_counted_pair_by_pair_is_scikit_learns_with_ties_counting_half():
    y, p, _ = patient_data(n_pat=12, per=25)
    assert primer.auc_by_pairs(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    rounded = np.round(p, 1)  # many ties
    assert primer.auc_by_pairs(y, rounded) == pytest.approx(roc_auc_score(y, rounded), abs=1e-12)
    assert primer.auc_by_pairs([0, 1], [0.3, 0.3]) == 0.5
    assert primer.auc_by_pairs([0, 0, 1], [0.1, 0.9, 0.5]) == 0.5


def test_the_pair_subsample_keeps_both_classes_and_at_most_the_pairs_asked_for():
    y, _, _ = patient_data(n_pat=30, per=40)
    assert np.array_equal(primer.pair_subsample(y, 10**9), np.arange(len(y)))
    sub = primer.pair_subsample(y, 5_000, seed=1)
    ys = y[sub]
    assert ys.sum() * (len(ys) - ys.sum()) <= 5_000
    assert 0 < ys.mean() < 1 and abs(ys.mean() - y.mean()) < 0.05
    assert np.array_equal(sub, primer.pair_subsample(y, 5_000, seed=1))  # seeded
    assert np.all(np.diff(sub) > 0)


def test_resampling_patches_gives_a_narrower_spread_than_resampling_patients():
    y, p, pats = patient_data(n_pat=30, per=40, seed=3)
    spread = primer.resampling_spread(y, p, pats, threshold=0.5, n_boot=300, seed=0)
    assert set(spread) == {"patients", "patches"}
    assert len(spread["patients"]) > 250 and len(spread["patches"]) == 300
    width = {k: np.subtract(*np.quantile(v, [0.975, 0.025])) for k, v in spread.items()}
    assert width["patients"] > 1.3 * width["patches"]
    auc = roc_auc_score(y, p)
    assert abs(np.median(spread["patches"]) - auc) < 0.02


def test_the_patch_bootstrap_is_seeded_and_matches_its_unweighted_metric_on_average():
    y, p, _ = patient_data(n_pat=10, per=30)
    a = primer.patch_bootstrap_samples(y, p, 0.5, n_boot=50, seed=7)
    b = primer.patch_bootstrap_samples(y, p, 0.5, n_boot=50, seed=7)
    assert np.array_equal(a["recall"], b["recall"]) and len(a["auc"]) == 50
    assert abs(np.mean(a["recall"]) - np.mean(p[y == 1] >= 0.5)) < 0.03
