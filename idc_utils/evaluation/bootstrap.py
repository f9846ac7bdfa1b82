"""Uncertainty by patient: bootstrap resamples of whole patients (patches of one patient are not
independent), percentile intervals for every metric, and paired differences between two models
or two settings on the same resamples."""

from __future__ import annotations

import numpy as np
import pandas as pd

from idc_utils.evaluation.metrics import binary_metrics, check_inputs

CI_METRICS = (
    "auc",
    "average_precision",
    "recall",
    "precision",
    "specificity",
    "f1",
    "accuracy",
    "balanced_accuracy",
    "brier",
)


def patient_bootstrap_counts(patients, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap resamples of whole patients (drawn with replacement), as counts: ``(patient
    index of each patch (n,), counts (n_boot, n_patients))``. A patch whose patient was drawn k
    times weighs k in that resample."""
    patients = np.asarray(patients).astype(str)
    uniq, inv = np.unique(patients, return_inverse=True)
    rng = np.random.default_rng(seed)
    counts = np.empty((n_boot, len(uniq)), np.float64)
    for b in range(n_boot):
        counts[b] = np.bincount(rng.integers(0, len(uniq), len(uniq)), minlength=len(uniq))
    return inv, counts


def weighted_metrics(y, p, weights: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """Every metric of :data:`CI_METRICS` for many weightings of the same patches at once.

    ``weights`` is ``(k, n)``: row ``b`` gives each patch's multiplicity in resample ``b``. Equal to
    :func:`~idc_utils.evaluation.metrics.binary_metrics` on the resample with its patches repeated
    (ties in ``p`` count half for AUC, as in scikit-learn), but one sort and a few cumulative sums
    instead of a Python loop per resample. Rows with one class only give NaN AUC and AP."""
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=np.float64)
    W = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    order = np.argsort(-p, kind="stable")
    ys, ps, Ws = y[order], p[order], W[:, order]
    wpos = Ws * ys
    wneg = Ws * ~ys
    P, N = wpos.sum(axis=1), wneg.sum(axis=1)
    # cumulative true/false positives at each distinct threshold (descending scores)
    last = np.r_[np.flatnonzero(np.diff(ps) != 0), len(ps) - 1]
    tp = np.cumsum(wpos, axis=1)[:, last]
    fp = np.cumsum(wneg, axis=1)[:, last]
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = tp / P[:, None]
        fpr = fp / N[:, None]
        zero = np.zeros((len(W), 1))
        tpr0, fpr0 = np.hstack([zero, tpr]), np.hstack([zero, fpr])
        auc = np.sum(np.diff(fpr0, axis=1) * (tpr0[:, 1:] + tpr0[:, :-1]) / 2, axis=1)
        prec = tp / (tp + fp)  # NaN where no patch of weight > 0 is above yet: recall moves 0 there
        ap = np.nansum(np.diff(tpr0, axis=1) * prec, axis=1)
        on = ps >= threshold
        TP, FP = (wpos * on).sum(axis=1), (wneg * on).sum(axis=1)
        FN, TN = P - TP, N - FP
        recall = TP / (TP + FN)
        precision = TP / (TP + FP)
        spec = TN / (TN + FP)
        f1 = 2 * precision * recall / (precision + recall)
        total = P + N
        brier = (Ws * (ps - ys) ** 2).sum(axis=1) / total
    one_class = (P == 0) | (N == 0)
    auc[one_class] = np.nan
    ap[one_class] = np.nan
    return {
        "auc": auc,
        "average_precision": ap,
        "recall": recall,
        "precision": precision,
        "specificity": spec,
        "f1": f1,
        "accuracy": (TP + TN) / total,
        "balanced_accuracy": (recall + spec) / 2,
        "brier": brier,
    }


#: cells of one ``(resamples, patches)`` weight matrix: :func:`weighted_metrics` makes about
#: fifteen of that size, so 4 million cells (32 MB each) keep it near half a GB at any size
CHUNK_CELLS = 4_000_000


def chunk_size(n: int) -> int:
    """Resamples per block of weights over ``n`` patches: about :data:`CHUNK_CELLS` cells, at
    least one resample."""
    return max(1, CHUNK_CELLS // max(1, n))


def bootstrap_samples(y, p, patients, threshold, n_boot, seed, chunk: int = 0):
    """Metrics over the patient resamples, in chunks that keep ``(chunk, n)`` matrices small."""
    inv, counts = patient_bootstrap_counts(patients, n_boot, seed)
    chunk = chunk or min(n_boot, chunk_size(len(inv)))
    parts = [
        weighted_metrics(y, p, counts[s : s + chunk][:, inv], threshold)
        for s in range(0, n_boot, chunk)
    ]
    return {k: np.concatenate([d[k] for d in parts]) for k in parts[0]}


def bootstrap_metrics(
    y_true,
    prob,
    patients,
    threshold: float,
    n_boot: int = 1000,
    seed: int = 0,
    metrics=CI_METRICS,
    level: float = 0.95,
) -> pd.DataFrame:
    """Point estimates and percentile CIs from resampling **patients** (patches of one patient are
    not independent, so resampling patches would give intervals that are too narrow). Resamples
    holding one class only have no AUC and are left out (``resamples`` counts those kept)."""
    y, p = check_inputs(y_true, prob)
    point = binary_metrics(y, p, threshold)
    boot = bootstrap_samples(y, p, patients, threshold, n_boot, seed)
    valid = ~np.isnan(boot["auc"])
    a = (1 - level) / 2
    rows = {}
    for k in metrics:
        v = boot[k][valid]
        rows[k] = {
            "estimate": point[k],
            "low": float(np.nanquantile(v, a)),
            "high": float(np.nanquantile(v, 1 - a)),
            "resamples": int(valid.sum()),
        }
    return pd.DataFrame(rows).T


def paired_bootstrap_difference(
    y_true,
    prob_a,
    prob_b,
    patients,
    metric: str = "auc",
    threshold_a=0.5,
    threshold_b=0.5,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """``metric(a) - metric(b)`` on the same patients, with a CI from the *same* patient resamples
    for both models (a paired comparison is much tighter than two separate intervals)."""
    y, pa = check_inputs(y_true, prob_a)
    _, pb = check_inputs(y_true, prob_b)
    diff = binary_metrics(y, pa, threshold_a)[metric] - binary_metrics(y, pb, threshold_b)[metric]
    da = bootstrap_samples(y, pa, patients, threshold_a, n_boot, seed)
    db = bootstrap_samples(y, pb, patients, threshold_b, n_boot, seed)
    valid = ~np.isnan(da["auc"])
    ds = (da[metric] - db[metric])[valid]
    ds = ds[~np.isnan(ds)]
    a = (1 - level) / 2
    return {
        "metric": metric,
        "difference": float(diff),
        "low": float(np.quantile(ds, a)),
        "high": float(np.quantile(ds, 1 - a)),
        "share_above_zero": float((ds > 0).mean()),
    }


def paired_auc_gain(y, p_new, p_old, patients, n_boot: int = 1000, seed: int = 0) -> dict:
    """AUC of ``p_new`` minus that of ``p_old`` on the same patches, paired patient bootstrap."""
    return paired_bootstrap_difference(y, p_new, p_old, patients, "auc", n_boot=n_boot, seed=seed)
