"""The operating threshold: chosen on validation patients for a target recall, then applied
unchanged to test patients and new ones.

Recall-first: a model is summarised by its AUC (ranking quality over all thresholds) and by what
happens at one **operating threshold chosen on validation patients** to reach a target recall.
:func:`choose_operating_point` chooses it (and says what recall to expect on new patients);
:func:`validation_operating_point` scores a model's validation patients and chooses its threshold
and its slide context there (what every saved model's card holds); :func:`operating_point_check`
checks the threshold on test patients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from idc_utils.evaluation import slide_context
from idc_utils.evaluation.bootstrap import (
    bootstrap_metrics,
    chunk_size,
    patient_bootstrap_counts,
    weighted_metrics,
)
from idc_utils.evaluation.metrics import binary_metrics, check_inputs, threshold_for_recall
from idc_utils.models import inference

#: how the operating threshold is chosen on validation patients
THRESHOLD_METHODS = ("validation", "patient_bootstrap")


@dataclass
class OperatingPoint:
    threshold: float
    target_recall: float
    val: dict
    method: str = "validation"
    #: 95% interval of the threshold over resamples of the validation patients
    threshold_interval: tuple | None = None
    #: recall and precision to expect at this threshold on a new set of patients like the
    #: validation ones: (median, 2.5%, 97.5%) over patient resamples
    expected_recall: tuple | None = None
    expected_precision: tuple | None = None

    def as_dict(self) -> dict:
        return {
            "threshold": self.threshold,
            "target_recall": self.target_recall,
            "val_metrics": self.val,
            "threshold_method": self.method,
            "threshold_interval": self.threshold_interval,
            "expected_recall": self.expected_recall,
            "expected_precision": self.expected_precision,
        }


def _weighted_recall_thresholds(y, p, weights: np.ndarray, target: float) -> np.ndarray:
    """:func:`~idc_utils.evaluation.metrics.threshold_for_recall` for many weightings of the same
    patches (rows of ``weights``)."""
    pos = np.flatnonzero(y == 1)
    order = pos[np.argsort(-p[pos], kind="stable")]
    cum = np.cumsum(weights[:, order], axis=1)
    total = cum[:, -1]
    need = np.ceil(target * total - 1e-9)
    k = np.argmax(cum >= need[:, None], axis=1)
    out = p[order][k]
    out[total == 0] = np.nan
    return out


def choose_operating_point(
    y_val,
    prob_val,
    target_recall: float,
    patients=None,
    method: str = "validation",
    n_boot: int = 1000,
    seed: int = 0,
) -> OperatingPoint:
    """The operating threshold for ``target_recall``, chosen on validation patients.

    ``validation``: the largest threshold that reaches the target on the validation patches.
    ``patient_bootstrap``: the median of that threshold over resamples of whole validation
    patients, which depends less on the few patients that hold the lowest-scoring IDC+ patches.
    With ``patients`` given, either method also reports what to expect on **new** patients: the
    threshold's interval and the recall and precision at the chosen threshold over the resamples
    (a new set of patients is another draw of patients, so its recall lands in that interval,
    not on the target)."""
    if method not in THRESHOLD_METHODS:
        raise ValueError(f"unknown threshold method {method!r}; choose one of {THRESHOLD_METHODS}")
    y, p = check_inputs(y_val, prob_val)
    t = threshold_for_recall(y, p, target_recall)
    if patients is None:
        if method != "validation":
            raise ValueError(f"method {method!r} resamples patients: pass their ids")
        return OperatingPoint(t, target_recall, binary_metrics(y, p, t), method)
    inv, counts = patient_bootstrap_counts(patients, n_boot, seed)
    # the (resamples, patches) weights a block of resamples at a time: all 1,000 at once over
    # the full profile's 68,834 validation patches took 7.5 GB
    size = chunk_size(len(inv))
    blocks = [slice(s, s + size) for s in range(0, n_boot, size)]
    ts = np.concatenate(
        [_weighted_recall_thresholds(y, p, counts[b][:, inv], target_recall) for b in blocks]
    )
    if method == "patient_bootstrap":
        t = float(np.nanmedian(ts))
    at_blocks = [weighted_metrics(y, p, counts[b][:, inv], t) for b in blocks]
    at_t = {k: np.concatenate([d[k] for d in at_blocks]) for k in ("recall", "precision")}

    def spread(v):
        v = v[~np.isnan(v)]
        return tuple(float(q) for q in np.quantile(v, [0.5, 0.025, 0.975]))

    return OperatingPoint(
        t,
        target_recall,
        binary_metrics(y, p, t),
        method,
        threshold_interval=tuple(float(q) for q in np.nanquantile(ts, [0.025, 0.975])),
        expected_recall=spread(at_t["recall"]),
        expected_precision=spread(at_t["precision"]),
    )


def operating_point_check(
    card: dict, y_test, p_test, patients, n_boot: int = 1000, seed: int = 0
) -> dict:
    """The saved threshold on test patients: realised recall and precision with patient-bootstrap
    intervals, against the target and against the interval the card expected on new patients."""
    ci = bootstrap_metrics(y_test, p_test, patients, card["threshold"], n_boot=n_boot, seed=seed)
    target = float(card["target_recall"])
    rec = ci.loc["recall", ["estimate", "low", "high"]].astype(float).tolist()
    prec = ci.loc["precision", ["estimate", "low", "high"]].astype(float).tolist()
    if rec[1] > target:
        verdict = "overshot: the whole interval lies above the target (more alarms than needed)"
    elif rec[2] < target:
        verdict = "missed: the whole interval lies below the target"
    else:
        verdict = "met: the interval contains the target"
    expected = card.get("expected_recall")
    inside = expected is not None and expected[1] <= rec[0] <= expected[2]
    return {
        "target_recall": target,
        "threshold": float(card["threshold"]),
        "method": card.get("threshold_method", "validation"),
        "expected_recall": expected,
        "recall": rec,
        "precision": prec,
        "verdict": verdict,
        "inside_expected": bool(inside),
    }


def validation_operating_point(
    model,
    images,
    val: pd.DataFrame,
    *,
    target_recall: float,
    method: str,
    seed: int = 0,
    tta: bool = False,
    fit_context: bool = True,
):
    """What every saved model takes from the validation patients (rows ``val`` of ``images``):
    ``(their probabilities (with ``tta``), the operating point for ``target_recall`` by
    ``method``, the slide-context fit or None)``. Trained models and the ensemble both choose
    their threshold here; test patients are not read."""
    prob_val = inference.predict_proba(model, images, val["i"], tta=tta)
    op = choose_operating_point(
        val["label"], prob_val, target_recall, patients=val["patient_id"], method=method, seed=seed
    )
    ctx = None
    if fit_context and {"x", "y"} <= set(val.columns):
        ctx = slide_context_on_validation(val, prob_val, target_recall, method, seed)
    return prob_val, op, ctx


def slide_context_on_validation(
    val: pd.DataFrame, prob_val, target_recall: float, method: str, seed: int = 0
) -> dict:
    """Slide-context scoring (:mod:`idc_utils.evaluation.slide_context`) chosen on the validation
    patients, with its own threshold for the target recall: what ``predict --context`` and the
    app's tissue map use."""
    model, _grid = slide_context.fit(val, prob_val, val["label"])
    smoothed = slide_context.smooth(val, prob_val, model)
    op = choose_operating_point(
        val["label"], smoothed, target_recall, patients=val["patient_id"], method=method, seed=seed
    )
    return {
        **model.as_dict(),
        "threshold": op.threshold,
        "expected_recall": op.expected_recall,
        "val_auc": binary_metrics(val["label"], smoothed)["auc"],
        "val_auc_without": binary_metrics(val["label"], prob_val)["auc"],
        "val_patches_with_neighbours": int(slide_context.has_neighbours(val).sum()),
        "val_patches": int(len(val)),
        "chosen_on": "validation patients",
    }
