"""Metrics, operating thresholds, bootstrap confidence intervals and calibration (their figures
and tables are in :mod:`figures`).

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
        "f1": _div(2 * precision * recall, precision + recall)
        if not np.isnan(precision)
        else float("nan"),
        "accuracy": _div(c["tp"] + c["tn"], len(y)),
        "balanced_accuracy": (recall + spec) / 2,
        **c,
    }


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
    """:func:`threshold_for_recall` for many weightings of the same patches (rows of
    ``weights``)."""
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
    y, p = _check(y_val, prob_val)
    t = threshold_for_recall(y, p, target_recall)
    if patients is None:
        if method != "validation":
            raise ValueError(f"method {method!r} resamples patients: pass their ids")
        return OperatingPoint(t, target_recall, binary_metrics(y, p, t), method)
    inv, counts = patient_bootstrap_counts(patients, n_boot, seed)
    W = counts[:, inv]
    ts = _weighted_recall_thresholds(y, p, W, target_recall)
    if method == "patient_bootstrap":
        t = float(np.nanmedian(ts))
    at_t = weighted_metrics(y, p, W, t)

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


# ----------------------------------------------------------------------------- uncertainty

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

    ``weights`` is ``(k, n)``: row ``b`` gives each patch's multiplicity in resample ``b``. Equal
    to :func:`binary_metrics` on the resample with its patches repeated (ties in ``p`` count half
    for AUC, as in scikit-learn), but one sort and a few cumulative sums instead of a Python loop
    per resample. Rows with one class only give NaN AUC and AP."""
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


def bootstrap_samples(y, p, patients, threshold, n_boot, seed, chunk: int = 0):
    """Metrics over the patient resamples, in chunks that keep ``(chunk, n)`` matrices small."""
    inv, counts = patient_bootstrap_counts(patients, n_boot, seed)
    chunk = chunk or max(1, min(n_boot, 4_000_000 // max(1, len(inv))))
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
    y, p = _check(y_true, prob)
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
    y, pa = _check(y_true, prob_a)
    _, pb = _check(y_true, prob_b)
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


# ----------------------------------------------------------------------------- calibration


def reliability(y_true, prob, bins: int = 10) -> pd.DataFrame:
    """Equal-width probability bins: mean predicted probability vs observed IDC+ share."""
    y, p = _check(y_true, prob)
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


def _logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def fit_temperature(y_val, prob_val) -> float:
    """Temperature ``T`` minimising the validation log loss of ``sigmoid(logit(p) / T)``."""
    from scipy.optimize import minimize_scalar

    y, p = _check(y_val, prob_val)
    z = _logit(p)

    def nll(log_t):
        q = np.clip(1 / (1 + np.exp(-z / np.exp(log_t))), 1e-7, 1 - 1e-7)
        return -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))

    res = minimize_scalar(nll, bounds=(-3, 3), method="bounded")
    return float(np.exp(res.x))


def apply_temperature(prob, temperature: float) -> np.ndarray:
    return 1 / (1 + np.exp(-_logit(prob) / temperature))


def fit_platt(y_val, prob_val) -> tuple[float, float]:
    """Platt (logistic) scaling ``sigmoid(a * logit(p) + b)`` fitted on validation. Unlike a
    temperature, the intercept ``b`` can undo the constant log-odds shift that class-weighted
    training adds (``log w1 / w0``)."""
    from sklearn.linear_model import LogisticRegression

    y, p = _check(y_val, prob_val)
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(p)[:, None], y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def apply_platt(prob, a: float, b: float) -> np.ndarray:
    return 1 / (1 + np.exp(-(a * _logit(prob) + b)))


# ----------------------------------------------------------------------------- tables


def per_patient(df: pd.DataFrame, prob, threshold: float) -> pd.DataFrame:
    """One row per patient: patches, IDC+ patches, predicted IDC+, missed IDC+ (FN), false
    alarms (FP), recall, and the patch AUC within the patient when it has both classes."""
    from sklearn.metrics import roc_auc_score

    d = df[["patient_id", "label"]].copy()
    d["prob"] = np.asarray(prob)
    d["pred"] = (d["prob"] >= threshold).astype(int)
    rows = []
    for pid, g in d.groupby("patient_id"):
        y, q = g["label"].to_numpy(), g["pred"].to_numpy()
        rows.append(
            {
                "patient": pid,
                "patches": len(g),
                "IDC+": int(y.sum()),
                "predicted IDC+": int(q.sum()),
                "missed IDC+ (FN)": int(((q == 0) & (y == 1)).sum()),
                "false alarms (FP)": int(((q == 1) & (y == 0)).sum()),
                "recall": _div(((q == 1) & (y == 1)).sum(), y.sum()),
                "patch AUC": float(roc_auc_score(y, g["prob"]))
                if 0 < y.sum() < len(y)
                else float("nan"),
                "mean prob": float(g["prob"].mean()),
            }
        )
    return (
        pd.DataFrame(rows)
        .set_index("patient")
        .sort_values(["missed IDC+ (FN)", "false alarms (FP)"], ascending=False)
    )


# ----------------------------------------------------------------------------- figures


# ----------------------------------------------------------------------------- chapter helpers


def qualitative_examples(
    df: pd.DataFrame, prob, threshold: float, per_kind: int = 6
) -> pd.DataFrame:
    """The most confident patches of each kind: true/false positives/negatives (errors sorted by
    how sure the model was; correct ones likewise)."""
    d = df.copy()
    d["prob"] = np.asarray(prob)
    d["pred"] = (d["prob"] >= threshold).astype(int)
    kinds = {
        "true positive": (1, 1),
        "false negative": (1, 0),
        "false positive": (0, 1),
        "true negative": (0, 0),
    }
    rows = []
    for kind, (lab, pred) in kinds.items():
        part = d[(d["label"] == lab) & (d["pred"] == pred)]
        part = part.sort_values("prob", ascending=(pred == 0))
        rows.append(part.head(per_kind).assign(kind=kind))
    return pd.concat(rows)


def calibration_study(name: str, y_val, p_val, y_test, p_test, bins: int = 10):
    """Raw, temperature-scaled and Platt-scaled probabilities of one model on test, both
    recalibrations fitted on validation. Returns ``(table, curves)``: a row per version, and
    the (y, p) pairs for :func:`plot_reliability` (raw and Platt)."""
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


# ----------------------------------------------------------------------------- does it hold?


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


def paired_auc_gain(y, p_new, p_old, patients, n_boot: int = 1000, seed: int = 0) -> dict:
    """AUC of ``p_new`` minus that of ``p_old`` on the same patches, paired patient bootstrap."""
    return paired_bootstrap_difference(y, p_new, p_old, patients, "auc", n_boot=n_boot, seed=seed)


def format_interval(d: dict) -> str:
    """A paired difference as ``+0.0123 [+0.004, +0.021]``."""
    return f"{d['difference']:+.4f} [{d['low']:+.3f}, {d['high']:+.3f}]"


def lever_table(levers: dict, parts: dict, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """What each inference lever adds to AUC, on validation and test patients, with paired
    patient-bootstrap intervals. ``levers``: name -> ``(new, old, on_by_default)`` where ``new``
    and ``old`` map a split name to the probabilities with and without the lever; ``parts``:
    split name -> its rows (``label``, ``patient_id``). Column ``val_low`` is the lower end of
    the validation interval (the lever helped when it is above zero)."""
    rows = []
    for lever, (new, old, kept) in levers.items():
        gains = {
            s: paired_auc_gain(
                part["label"], new[s], old[s], part["patient_id"], n_boot=n_boot, seed=seed
            )
            for s, part in parts.items()
        }
        rows.append(
            {
                "lever": lever,
                **{f"{s} AUC gain [95% CI]": format_interval(g) for s, g in gains.items()},
                "on by default": kept,
                "val_low": gains["val"]["low"],
            }
        )
    return pd.DataFrame(rows).set_index("lever")
