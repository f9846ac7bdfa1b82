"""Calibration: do predicted probabilities match observed IDC+ shares? Reliability bins, expected
calibration error, and two recalibrations fitted on validation patients (temperature, Platt)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from idc_utils.evaluation.metrics import binary_metrics, check_inputs, logit


def reliability(y_true, prob, bins: int = 10) -> pd.DataFrame:
    """Equal-width probability bins: mean predicted probability vs observed IDC+ share."""
    y, p = check_inputs(y_true, prob)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        m = which == b
        if m.any():
            rows.append(
                {
                    "bin": b,
                    "low": edges[b],
                    "high": edges[b + 1],
                    "n": int(m.sum()),
                    "mean_prob": float(p[m].mean()),
                    "observed": float(y[m].mean()),
                }
            )
    return pd.DataFrame(rows)


def expected_calibration_error(y_true, prob, bins: int = 10) -> float:
    r = reliability(y_true, prob, bins)
    return float((r["n"] * (r["mean_prob"] - r["observed"]).abs()).sum() / r["n"].sum())


def fit_temperature(y_val, prob_val) -> float:
    """Temperature ``T`` minimising the validation log loss of ``sigmoid(logit(p) / T)``."""
    from scipy.optimize import minimize_scalar

    y, p = check_inputs(y_val, prob_val)
    z = logit(p)

    def nll(log_t):
        q = np.clip(1 / (1 + np.exp(-z / np.exp(log_t))), 1e-7, 1 - 1e-7)
        return -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))

    res = minimize_scalar(nll, bounds=(-3, 3), method="bounded")
    return float(np.exp(res.x))


def apply_temperature(prob, temperature: float) -> np.ndarray:
    return 1 / (1 + np.exp(-logit(prob) / temperature))


def fit_platt(y_val, prob_val) -> tuple[float, float]:
    """Platt (logistic) scaling ``sigmoid(a * logit(p) + b)`` fitted on validation. Unlike a
    temperature, the intercept ``b`` can undo the constant log-odds shift that class-weighted
    training adds (``log w1 / w0``)."""
    from sklearn.linear_model import LogisticRegression

    y, p = check_inputs(y_val, prob_val)
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(logit(p)[:, None], y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def apply_platt(prob, a: float, b: float) -> np.ndarray:
    return 1 / (1 + np.exp(-(a * logit(prob) + b)))


def calibration_study(name: str, y_val, p_val, y_test, p_test, bins: int = 10):
    """Raw, temperature-scaled and Platt-scaled probabilities of one model on test, both
    recalibrations fitted on validation. Returns ``(table, curves)``: a row per version, and the (y,
    p) pairs for :func:`idc_utils.chapters.evaluation_figures.plot_reliability` (raw and Platt)."""
    T = fit_temperature(y_val, p_val)
    a, b = fit_platt(y_val, p_val)
    versions = {
        name: ("raw", p_test),
        f"{name} + temperature (T={T:.2f})": ("temperature", apply_temperature(p_test, T)),
        f"{name} + Platt (a={a:.2f}, b={b:+.2f})": ("platt", apply_platt(p_test, a, b)),
    }
    rows, curves = [], {}
    y_test = np.asarray(y_test)
    for label, (kind, p) in versions.items():
        m = binary_metrics(y_test, p)
        rows.append(
            {
                "model": label,
                "model_name": name,
                "kind": kind,
                "mean P(IDC+)": float(np.mean(p)),
                "observed IDC+ share": float(y_test.mean()),
                "ECE": expected_calibration_error(y_test, p, bins),
                "Brier": m["brier"],
                "log loss": m["loss"],
                "AUC": m["auc"],
            }
        )
        if kind != "temperature":
            curves[label] = (y_test, p)
    return pd.DataFrame(rows).set_index("model"), curves
