"""Metrics of IDC+ probabilities against labels: AUC, average precision, log loss, Brier, and at a
threshold recall, precision, specificity, F1, accuracy, confusion counts; the threshold that
reaches a target recall; Dice and patch AUC within one patient's mosaic."""

from __future__ import annotations

import numpy as np
import pandas as pd


def check_inputs(y_true, prob):
    """Labels as 0/1 integers and probabilities as floats, checked to match in length."""
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
    y, p = check_inputs(y_true, prob)
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


def logit(p, eps: float = 1e-7) -> np.ndarray:
    """``log(p / (1 - p))``, with ``p`` clipped to ``[eps, 1 - eps]`` (float64)."""
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(p / (1 - p))


def ratio(a, b):
    """``a / b`` as a float, NaN when ``b`` is 0."""
    return float(a) / float(b) if b else float("nan")


def binary_metrics(y_true, prob, threshold: float = 0.5) -> dict:
    """AUC, average precision, log loss, Brier, and at ``threshold``: recall (sensitivity),
    precision, specificity, F1, accuracy, balanced accuracy, confusion counts."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y, p = check_inputs(y_true, prob)
    c = confusion(y, p >= threshold)
    recall = ratio(c["tp"], c["tp"] + c["fn"])
    precision = ratio(c["tp"], c["tp"] + c["fp"])
    spec = ratio(c["tn"], c["tn"] + c["fp"])
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
        "f1": ratio(2 * precision * recall, precision + recall)
        if not np.isnan(precision)
        else float("nan"),
        "accuracy": ratio(c["tp"] + c["tn"], len(y)),
        "balanced_accuracy": (recall + spec) / 2,
        **c,
    }


def dice(pred_mask, true_mask) -> float:
    """Dice overlap of two boolean maps (1.0 when both are empty)."""
    a = np.asarray(pred_mask, bool)
    b = np.asarray(true_mask, bool)
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2 * (a & b).sum() / s)


def region_metrics(rows: pd.DataFrame, prob, threshold: float) -> dict:
    """Patch AUC within one patient's mosaic, and Dice of the thresholded map against the
    annotation."""
    from sklearn.metrics import roc_auc_score

    y = rows["label"].to_numpy().astype(int)
    p = np.asarray(prob, dtype=float)
    q = p >= threshold
    return {
        "patches": int(len(y)),
        "idc_positive": int(y.sum()),
        "patch_auc": float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan"),
        "dice": dice(q, y == 1),
        "predicted_idc_fraction": float(q.mean()),
        "true_idc_fraction": float(y.mean()),
        "threshold": float(threshold),
    }
