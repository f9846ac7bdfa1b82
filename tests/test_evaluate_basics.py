"""Threshold selection and metrics against hand-computed cases and scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from idc_utils import evaluate


def test_threshold_for_recall_hand_computed():
    y = [1, 1, 1, 1, 0, 0, 0]
    p = [0.9, 0.8, 0.4, 0.2, 0.7, 0.3, 0.1]
    assert evaluate.threshold_for_recall(y, p, 0.75) == 0.4  # 3 of 4 positives at >= 0.4
    assert evaluate.threshold_for_recall(y, p, 1.0) == 0.2
    assert evaluate.threshold_for_recall(y, p, 0.5) == 0.8
    assert evaluate.threshold_for_recall(y, p, 0.51) == 0.4


def test_threshold_reaches_target_and_is_the_largest_that_does():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(y * 0.3 + rng.random(500) * 0.7, 0, 1)
    for target in (0.8, 0.9, 0.93, 0.99):
        t = evaluate.threshold_for_recall(y, p, target)
        assert skm.recall_score(y, p >= t) >= target
        above = np.nextafter(t, 2)
        assert skm.recall_score(y, p >= above) < target


def test_threshold_errors():
    with pytest.raises(ValueError, match="no positive"):
        evaluate.threshold_for_recall([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="target_recall"):
        evaluate.threshold_for_recall([1, 0], [0.1, 0.2], 0)


def test_binary_metrics_agree_with_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.35 * y + 0.65 * rng.random(300), 1e-4, 1 - 1e-4)
    m = evaluate.binary_metrics(y, p, 0.5)
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
    m = evaluate.binary_metrics([1, 1, 0, 0, 0], [0.9, 0.2, 0.6, 0.1, 0.3], 0.5)
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (1, 1, 1, 2)
    assert m["recall"] == 0.5 and m["precision"] == 0.5 and m["specificity"] == pytest.approx(2 / 3)


def synthetic_patients(n_pat, rng, per=35):
    """Patients with their own IDC+ share and their own score offset (a known distribution)."""
    pats, ys, ps = [], [], []
    for k in range(n_pat):
        y = (rng.random(per) < rng.uniform(0, 0.6)).astype(int)
        z = 2.0 * (2 * y - 1) + rng.normal(0, 1.0) + rng.normal(0, 1.0, per)
        pats += [f"p{k}"] * per
        ys.append(y)
        ps.append(1 / (1 + np.exp(-z)))
    return np.array(pats), np.concatenate(ys), np.concatenate(ps)


@pytest.mark.parametrize("method", ["validation", "patient_bootstrap"])
def test_threshold_method_meets_its_target_on_new_patients(method):
    """Chosen on 30 validation patients, the threshold reaches the target recall on a large set of
    new patients from the same distribution: on target in the median over many choices (not
    systematically above or below), and inside the interval the method says to expect."""
    rng = np.random.default_rng(0)
    _, y_new, p_new = synthetic_patients(2000, rng)
    realised, inside = [], 0
    for r in range(25):
        pats, y, p = synthetic_patients(30, rng)
        op = evaluate.choose_operating_point(
            y, p, 0.93, patients=pats, method=method, n_boot=200, seed=r
        )
        rec = evaluate.binary_metrics(y_new, p_new, op.threshold)["recall"]
        realised.append(rec)
        low, high = op.expected_recall[1], op.expected_recall[2]
        inside += low <= rec <= high
        assert op.threshold_interval[0] <= op.threshold <= op.threshold_interval[1]
    assert abs(np.median(realised) - 0.93) < 0.015, np.median(realised)
    # a percentile bootstrap over 30 patients is somewhat narrow (it covers about 80%, not 95%)
    assert inside >= 18, f"only {inside} of 25 new-patient recalls inside the expected interval"


def test_bootstrap_thresholds_equal_the_plain_rule_on_each_resample():
    rng = np.random.default_rng(3)
    pats, y, p = synthetic_patients(12, rng, per=20)
    inv, counts = evaluate.patient_bootstrap_counts(pats, 20, seed=1)
    got = evaluate._weighted_recall_thresholds(y, p, counts[:, inv], 0.9)
    members = [np.flatnonzero(inv == k) for k in range(counts.shape[1])]
    for b in range(20):
        idx = np.concatenate([np.tile(members[k], int(c)) for k, c in enumerate(counts[b]) if c])
        if y[idx].sum():
            assert got[b] == evaluate.threshold_for_recall(y[idx], p[idx], 0.9)


def test_threshold_method_errors():
    with pytest.raises(ValueError, match="unknown threshold method"):
        evaluate.choose_operating_point([0, 1], [0.1, 0.9], 0.9, method="guess")
    with pytest.raises(ValueError, match="patients"):
        evaluate.choose_operating_point([0, 1], [0.1, 0.9], 0.9, method="patient_bootstrap")


def test_lever_table_shows_a_real_gain_and_no_gain_for_no_change():

    rng = np.random.default_rng(4)
    parts, old, better = {}, {}, {}
    for s in ("val", "test"):
        y = rng.random(600) < 0.3
        parts[s] = pd.DataFrame({"label": y.astype(int), "patient_id": np.arange(600) // 20})
        old[s] = np.clip(0.5 * y + rng.normal(0.25, 0.35, 600), 0, 1)
        better[s] = np.clip(0.5 * y + rng.normal(0.25, 0.15, 600), 0, 1)
    table = evaluate.lever_table(
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
