"""Metrics, operating thresholds, bootstrap confidence intervals, calibration, and their plots.

Recall-first: a model is summarised by its AUC (ranking quality over all thresholds) and by what
happens at one **operating threshold chosen on validation patients** to reach a target recall.
That threshold is then applied, unchanged, to the test patients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def _check(y_true, prob):
    y = np.asarray(y_true).astype(int).ravel()
    p = np.asarray(prob, dtype=np.float64).ravel()
    if len(y) != len(p):
        raise ValueError(f"{len(y)} labels but {len(p)} probabilities")
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError("labels must be 0/1")
    return y, p


def threshold_for_recall(y_true, prob, target_recall: float = 0.93) -> float:
    """The **largest** threshold whose recall (predicting IDC+ when ``prob >= t``) is at least
    ``target_recall``: the most precise operating point that still reaches the target."""
    y, p = _check(y_true, prob)
    if not 0 < target_recall <= 1:
        raise ValueError("target_recall must be in (0, 1]")
    pos = np.sort(p[y == 1])[::-1]
    if len(pos) == 0:
        raise ValueError("no positive example to set a recall threshold on")
    k = int(np.ceil(target_recall * len(pos)))  # need at least k positives at or above t
    return float(pos[k - 1])


def confusion(y_true, pred) -> dict:
    y = np.asarray(y_true).astype(int).ravel()
    q = np.asarray(pred).astype(int).ravel()
    return {
        "tp": int(((q == 1) & (y == 1)).sum()),
        "fp": int(((q == 1) & (y == 0)).sum()),
        "tn": int(((q == 0) & (y == 0)).sum()),
        "fn": int(((q == 0) & (y == 1)).sum()),
    }


def _div(a, b):
    return float(a) / float(b) if b else float("nan")


def binary_metrics(y_true, prob, threshold: float = 0.5) -> dict:
    """AUC, average precision, log loss, Brier, and at ``threshold``: recall (sensitivity),
    precision, specificity, F1, accuracy, balanced accuracy, confusion counts."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y, p = _check(y_true, prob)
    c = confusion(y, p >= threshold)
    recall = _div(c["tp"], c["tp"] + c["fn"])
    precision = _div(c["tp"], c["tp"] + c["fp"])
    spec = _div(c["tn"], c["tn"] + c["fp"])
    both = len(np.unique(y)) == 2
    eps = 1e-7
    pc = np.clip(p, eps, 1 - eps)
    return {
        "n": int(len(y)),
        "positives": int(y.sum()),
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "average_precision": float(average_precision_score(y, p)) if both else float("nan"),
        "loss": float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))),
        "brier": float(np.mean((p - y) ** 2)),
        "threshold": float(threshold),
        "recall": recall,
        "precision": precision,
        "specificity": spec,
        "f1": _div(2 * precision * recall, precision + recall) if not np.isnan(precision) else float("nan"),
        "accuracy": _div(c["tp"] + c["tn"], len(y)),
        "balanced_accuracy": (recall + spec) / 2,
        **c,
    }


@dataclass
class OperatingPoint:
    threshold: float
    target_recall: float
    val: dict

    def as_dict(self) -> dict:
        return {"threshold": self.threshold, "target_recall": self.target_recall, "val_metrics": self.val}


def choose_operating_point(y_val, prob_val, target_recall: float) -> OperatingPoint:
    t = threshold_for_recall(y_val, prob_val, target_recall)
    return OperatingPoint(t, target_recall, binary_metrics(y_val, prob_val, t))
