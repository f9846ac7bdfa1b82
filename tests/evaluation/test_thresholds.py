"""Operating thresholds chosen on validation patients, and checked on new ones."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import patient_data

from idc_utils.chapters import evaluation_figures
from idc_utils.evaluation import bootstrap, metrics, thresholds


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
        op = thresholds.choose_operating_point(
            y, p, 0.93, patients=pats, method=method, n_boot=200, seed=r
        )
        rec = metrics.binary_metrics(y_new, p_new, op.threshold)["recall"]
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
    inv, counts = bootstrap.patient_bootstrap_counts(pats, 20, seed=1)
    got = thresholds._weighted_recall_thresholds(y, p, counts[:, inv], 0.9)
    members = [np.flatnonzero(inv == k) for k in range(counts.shape[1])]
    for b in range(20):
        idx = np.concatenate([np.tile(members[k], int(c)) for k, c in enumerate(counts[b]) if c])
        if y[idx].sum():
            assert got[b] == metrics.threshold_for_recall(y[idx], p[idx], 0.9)


@pytest.mark.parametrize("method", ["validation", "patient_bootstrap"])
def test_the_resamples_in_blocks_give_what_all_at_once_gives(method, monkeypatch):
    """choose_operating_point weighs the resamples a block at a time (all at once took 7.5 GB in
    the full-scale rehearsal): blocks of one resample, of seven, and all 200 in one
    give the same operating point, to the bit."""
    rng = np.random.default_rng(5)
    pats, y, p = synthetic_patients(15, rng, per=20)
    points = []
    for cells in (1, 7 * len(y), 10**9):
        monkeypatch.setattr(bootstrap, "CHUNK_CELLS", cells)
        op = thresholds.choose_operating_point(
            y, p, 0.9, patients=pats, method=method, n_boot=200, seed=2
        )
        points.append(op.as_dict())
    assert thresholds.chunk_size(len(y)) >= 200  # the last run: all 200 in one block
    assert points[0] == points[1] == points[2]


def test_threshold_method_errors():
    with pytest.raises(ValueError, match="unknown threshold method"):
        thresholds.choose_operating_point([0, 1], [0.1, 0.9], 0.9, method="guess")
    with pytest.raises(ValueError, match="patients"):
        thresholds.choose_operating_point([0, 1], [0.1, 0.9], 0.9, method="patient_bootstrap")


def test_operating_point_check_says_met_overshot_or_missed():
    y, p, pats = patient_data(n_pat=40, seed=8)
    card = {
        "target_recall": 0.9,
        "expected_recall": [0.9, 0.85, 0.95],
        "threshold_method": "validation",
    }
    for threshold, word in ((0.001, "overshot"), (0.999, "missed")):
        c = thresholds.operating_point_check(
            {**card, "threshold": threshold}, y, p, pats, n_boot=100
        )
        assert c["verdict"].startswith(word) and c["recall"][1] <= c["recall"][0] <= c["recall"][2]
    t = metrics.threshold_for_recall(y, p, 0.9)
    c = thresholds.operating_point_check({**card, "threshold": t}, y, p, pats, n_boot=200)
    assert c["verdict"].startswith("met") and c["inside_expected"]
    table = evaluation_figures.operating_point_table({"m": c})
    assert table.loc["m", "verdict"] == "met" and table.loc["m", "target recall"] == "0.90"
