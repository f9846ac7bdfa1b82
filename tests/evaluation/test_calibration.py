"""Calibration: reliability, ECE, temperature and Platt scaling."""

from __future__ import annotations

import numpy as np
import pytest

from idc_utils.evaluation import calibration, metrics


def test_reliability_and_ece_hand_computed():
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.05, 0.15, 0.95, 0.85, 0.92, 0.88])
    r = calibration.reliability(y, p, bins=2)
    assert list(r["n"]) == [2, 4]
    assert r.loc[1, "observed"] == pytest.approx(0.75)
    ece = (2 * abs(0.10 - 0.0) + 4 * abs(np.mean([0.95, 0.85, 0.92, 0.88]) - 0.75)) / 6
    assert calibration.expected_calibration_error(y, p, bins=2) == pytest.approx(ece)


def test_temperature_scaling_fixes_overconfidence_without_changing_ranks():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    true_logit = 1.2 * (2 * y - 1) + rng.normal(0, 1.5, len(y))
    honest = 1 / (1 + np.exp(-true_logit))
    overconfident = 1 / (1 + np.exp(-3 * true_logit))
    T = calibration.fit_temperature(y, overconfident)
    assert pytest.approx(3.0, rel=0.15) == T
    fixed = calibration.apply_temperature(overconfident, T)
    assert calibration.expected_calibration_error(
        y, fixed
    ) < 0.5 * calibration.expected_calibration_error(y, overconfident)
    # a monotone rescaling: the ranking, hence the AUC, is unchanged
    assert metrics.binary_metrics(y, fixed)["auc"] == pytest.approx(
        metrics.binary_metrics(y, overconfident)["auc"], abs=1e-12
    )
    assert (
        metrics.binary_metrics(y, fixed)["loss"] < metrics.binary_metrics(y, overconfident)["loss"]
    )
    assert np.allclose(calibration.apply_temperature(honest, 1.0), honest)


def test_platt_scaling_removes_the_class_weight_shift_that_temperature_cannot():
    rng = np.random.default_rng(2)
    y = (rng.random(6000) < 0.28).astype(int)
    z = 1.5 * (2 * y - 1) + rng.normal(0, 1.3, len(y)) + np.log(0.28 / 0.72) + 0.5
    weighted = 1 / (
        1 + np.exp(-(z + np.log(0.72 / 0.28)))
    )  # what class weights do: a constant shift
    val, test = slice(0, 3000), slice(3000, None)
    a, b = calibration.fit_platt(y[val], weighted[val])
    platt = calibration.apply_platt(weighted[test], a, b)
    temp = calibration.apply_temperature(
        weighted[test], calibration.fit_temperature(y[val], weighted[val])
    )
    ece = lambda p: calibration.expected_calibration_error(y[test], p)
    assert ece(platt) < 0.5 * ece(weighted[test])
    assert ece(platt) < ece(temp) and ece(platt) < 0.03
    assert metrics.binary_metrics(y[test], platt)["auc"] == pytest.approx(
        metrics.binary_metrics(y[test], weighted[test])["auc"]
    )


def test_calibration_study_has_three_versions_and_platt_helps_a_shifted_model():
    rng = np.random.default_rng(5)
    y = (rng.random(4000) < 0.3).astype(int)
    z = 1.4 * (2 * y - 1) + rng.normal(0, 1.2, len(y)) + 1.2  # shifted up, like class weights do
    p = 1 / (1 + np.exp(-z))
    table, curves = calibration.calibration_study("m", y[:2000], p[:2000], y[2000:], p[2000:])
    kinds = table.set_index("kind")
    assert list(kinds.index) == ["raw", "temperature", "platt"] and len(curves) == 2
    assert kinds.loc["platt", "ECE"] < kinds.loc["raw", "ECE"] / 2
    assert kinds.loc["raw", "mean P(IDC+)"] > kinds.loc["raw", "observed IDC+ share"]
