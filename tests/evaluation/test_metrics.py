"""Metrics, hand-computed and against scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from idc_utils.evaluation import metrics


def test_dice_hand_computed():
    a = np.array([[1, 1, 0], [0, 0, 0]], bool)
    b = np.array([[1, 0, 0], [1, 0, 0]], bool)
    assert metrics.dice(a, b) == pytest.approx(2 * 1 / 4)
    assert metrics.dice(np.zeros(3, bool), np.zeros(3, bool)) == 1.0


def test_slide_metrics():
    rows = pd.DataFrame({"x": [1, 51, 101, 1], "y": [1, 1, 1, 51], "label": [1, 1, 0, 0]})
    m = metrics.region_metrics(rows, [0.9, 0.3, 0.6, 0.1], 0.5)
    assert m["patch_auc"] == pytest.approx(0.75)
    assert m["dice"] == pytest.approx(2 * 1 / (2 + 2))
    assert m["predicted_idc_fraction"] == 0.5 and m["true_idc_fraction"] == 0.5


def test_threshold_for_recall_hand_computed():
    y = [1, 1, 1, 1, 0, 0, 0]
    p = [0.9, 0.8, 0.4, 0.2, 0.7, 0.3, 0.1]
    assert metrics.threshold_for_recall(y, p, 0.75) == 0.4  # 3 of 4 positives at >= 0.4
    assert metrics.threshold_for_recall(y, p, 1.0) == 0.2
    assert metrics.threshold_for_recall(y, p, 0.5) == 0.8
    assert metrics.threshold_for_recall(y, p, 0.51) == 0.4


def test_threshold_reaches_target_and_is_the_largest_that_does():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(y * 0.3 + rng.random(500) * 0.7, 0, 1)
    for target in (0.8, 0.9, 0.93, 0.99):
        t = metrics.threshold_for_recall(y, p, target)
        assert skm.recall_score(y, p >= t) >= target
        above = np.nextafter(t, 2)
        assert skm.recall_score(y, p >= above) < target


def test_threshold_errors():
    with pytest.raises(ValueError, match="no positive"):
        metrics.threshold_for_recall([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="target_recall"):
        metrics.threshold_for_recall([1, 0], [0.1, 0.2], 0)


def test_binary_metrics_agree_with_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.35 * y + 0.65 * rng.random(300), 1e-4, 1 - 1e-4)
    m = metrics.binary_metrics(y, p, 0.5)
    q = p >= 0.5
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["average_precision"] == pytest.approx(skm.average_precision_score(y, p))
    assert m["recall"] == pytest.approx(skm.recall_score(y, q))
    assert m["precision"] == pytest.approx(skm.precision_score(y, q))
    assert m["f1"] == pytest.approx(skm.f1_score(y, q))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, q))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, q))
    assert m["loss"] == pytest.approx(skm.log_loss(y, p))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    tn, fp, fn, tp = skm.confusion_matrix(y, q).ravel()
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (tn, fp, fn, tp)
    assert m["specificity"] == pytest.approx(tn / (tn + fp))


def test_metrics_hand_computed_confusion():
    m = metrics.binary_metrics([1, 1, 0, 0, 0], [0.9, 0.2, 0.6, 0.1, 0.3], 0.5)
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (1, 1, 1, 2)
    assert m["recall"] == 0.5 and m["precision"] == 0.5 and m["specificity"] == pytest.approx(2 / 3)
