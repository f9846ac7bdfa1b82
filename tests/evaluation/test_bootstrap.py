"""Intervals by patient bootstrap, and paired differences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import patient_data

from idc_utils.evaluation import bootstrap, metrics


def test_patient_resamples_take_whole_patients():
    pats = np.array(["a", "a", "b", "c", "c", "c"])
    inv, counts = bootstrap.patient_bootstrap_counts(pats, 50, seed=1)
    assert counts.shape == (50, 3) and (counts.sum(axis=1) == 3).all()  # 3 patients drawn each time
    weights = counts[:, inv]  # each patch weighs as often as its patient was drawn
    assert (weights[:, 0] == weights[:, 1]).all() and (weights[:, 3] == weights[:, 5]).all()


def test_weighted_metrics_equal_metrics_on_the_repeated_patches():
    """The vectorised bootstrap computes each resample's metrics as if its patches were repeated."""
    y, p, pats = patient_data(n_pat=12, per=15, seed=4)
    p = np.round(p, 2)  # ties, as real scores have
    inv, counts = bootstrap.patient_bootstrap_counts(pats, 40, seed=2)
    got = bootstrap.weighted_metrics(y, p, counts[:, inv], 0.5)
    members = [np.flatnonzero(inv == k) for k in range(counts.shape[1])]
    compared = 0
    for b in range(40):
        idx = np.concatenate([np.tile(members[k], int(c)) for k, c in enumerate(counts[b]) if c])
        if y[idx].min() == y[idx].max():
            assert np.isnan(got["auc"][b])
            continue
        ref = metrics.binary_metrics(y[idx], p[idx], 0.5)
        for m in bootstrap.CI_METRICS:
            assert got[m][b] == pytest.approx(ref[m], abs=1e-12, nan_ok=True), (b, m)
        compared += 1
    assert compared > 30


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    y, p, pats = patient_data()
    a = bootstrap.bootstrap_metrics(y, p, pats, 0.5, n_boot=200, seed=7)
    b = bootstrap.bootstrap_metrics(y, p, pats, 0.5, n_boot=200, seed=7)
    pd.testing.assert_frame_equal(a, b)
    for m in ("auc", "recall", "precision"):
        assert a.loc[m, "low"] <= a.loc[m, "estimate"] <= a.loc[m, "high"]
    from sklearn.metrics import roc_auc_score

    assert a.loc["auc", "estimate"] == pytest.approx(roc_auc_score(y, p))


def test_patient_bootstrap_is_wider_than_patch_bootstrap():
    """Patches of a patient are correlated: resampling patients must give a wider interval than
    pretending every patch is independent."""
    y, p, pats = patient_data(strength=1.0)
    by_patient = bootstrap.bootstrap_metrics(y, p, pats, 0.5, n_boot=300, seed=0)
    by_patch = bootstrap.bootstrap_metrics(
        y, p, np.arange(len(y)).astype(str), 0.5, n_boot=300, seed=0
    )
    width = lambda t: t.loc["auc", "high"] - t.loc["auc", "low"]
    assert width(by_patient) > 1.3 * width(by_patch)


def test_paired_difference_detects_a_better_model_and_not_a_copy():
    y, p, pats = patient_data()
    rng = np.random.default_rng(3)
    worse = np.clip(p + rng.normal(0, 0.35, len(p)), 0, 1)
    d = bootstrap.paired_bootstrap_difference(y, p, worse, pats, "auc", n_boot=300, seed=0)
    assert d["difference"] > 0 and d["low"] > 0
    same = bootstrap.paired_bootstrap_difference(y, p, p, pats, "auc", n_boot=100, seed=0)
    assert same["difference"] == 0 and same["low"] == 0 and same["high"] == 0
