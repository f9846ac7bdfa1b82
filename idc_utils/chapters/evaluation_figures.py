"""Chapter 7's figures and tables: metrics with intervals by patient, ROC and precision-recall
curves, confusion matrices, the threshold on validation and test, the operating-point check and
reliability. Chapter 8's (errors, Grad-CAM, the mosaic mapped, levers, the learning curve) are in
:mod:`idc_utils.chapters.errors_figures`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from idc_utils.evaluation.bootstrap import CI_METRICS
from idc_utils.evaluation.calibration import expected_calibration_error, reliability
from idc_utils.evaluation.metrics import binary_metrics, confusion


def plot_roc_pr(results: dict, title_suffix: str = ""):
    """ROC curves on one axis, precision-recall curves on another, for every model.
    ``results``: name -> (y_true, prob, threshold)."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.4))
    for name, (y, p, t) in results.items():
        m = binary_metrics(y, p, t)
        fpr, tpr, _ = roc_curve(y, p)
        (line,) = a.plot(fpr, tpr, label=f"{name} (AUC {m['auc']:.3f})")
        a.plot(1 - m["specificity"], m["recall"], "o", color=line.get_color())
        prec, rec, _ = precision_recall_curve(y, p)
        b.plot(rec, prec, color=line.get_color(), label=f"{name} (AP {m['average_precision']:.3f})")
        b.plot(m["recall"], m["precision"], "o", color=line.get_color())
    a.plot([0, 1], [0, 1], ":", color="grey")
    a.set_xlabel("false positive rate (1 - specificity)")
    a.set_ylabel("recall (sensitivity)")
    a.set_title("ROC" + title_suffix)
    a.legend(loc="lower right", fontsize=8)
    prevalence = np.mean(next(iter(results.values()))[0])
    b.axhline(prevalence, ls=":", color="grey", label=f"chance ({prevalence:.2f})")
    b.set_xlabel("recall")
    b.set_ylabel("precision")
    b.set_title("Precision-recall" + title_suffix)
    b.legend(loc="lower left", fontsize=8)
    fig.text(
        0.5,
        -0.02,
        "dots: each model's operating threshold (chosen on validation)",
        ha="center",
        fontsize=8,
    )
    fig.tight_layout()
    return fig


def plot_confusions(results: dict):
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.6), squeeze=False)
    for ax, (name, (y, p, t)) in zip(axes[0], results.items()):
        c = confusion(y, np.asarray(p) >= t)
        mat = np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]])
        sns.heatmap(
            mat,
            annot=True,
            fmt="d",
            cbar=False,
            cmap="Blues",
            ax=ax,
            xticklabels=["pred IDC-", "pred IDC+"],
            yticklabels=["true IDC-", "true IDC+"],
        )
        ax.set_title(f"{name}\nthreshold {t:.3f}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_metric_bars(
    table: pd.DataFrame, metrics=("auc", "recall", "precision", "f1", "balanced_accuracy")
):
    """Models side by side with 95% CI whiskers. ``table``: rows (model, metric) with
    estimate/low/high."""
    import matplotlib.pyplot as plt

    models_ = list(dict.fromkeys(table.index.get_level_values(0)))
    x = np.arange(len(metrics))
    w = 0.8 / len(models_)
    fig, ax = plt.subplots(figsize=(9, 3.8))
    for k, name in enumerate(models_):
        sub = table.loc[name].loc[list(metrics)]
        err = np.vstack([sub["estimate"] - sub["low"], sub["high"] - sub["estimate"]])
        ax.bar(x + k * w - 0.4 + w / 2, sub["estimate"], w, yerr=err, capsize=3, label=name)
    ax.set_xticks(x, [m.replace("_", " ") for m in metrics])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test patients")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Models on the test patients (95% CI by patient bootstrap)")
    fig.tight_layout()
    return fig


def plot_reliability(curves: dict, bins: int = 10):
    """Reliability diagram: ``curves`` name -> (y, prob)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
    for name, (y, p) in curves.items():
        r = reliability(y, p, bins)
        ax.plot(
            r["mean_prob"],
            r["observed"],
            "o-",
            label=f"{name} (ECE {expected_calibration_error(y, p, bins):.3f})",
        )
    ax.set_xlabel("predicted IDC+ probability")
    ax.set_ylabel("observed IDC+ share")
    ax.set_title("Reliability on the test patients")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def ci_table(
    per_model: dict,
    metrics=tuple(m for m in CI_METRICS if m != "average_precision"),
) -> pd.DataFrame:
    """``per_model``: name -> bootstrap_metrics() frame. A readable table:
    'estimate [low, high]'."""
    out = {}
    for name, t in per_model.items():
        out[name] = {
            m: f"{t.loc[m, 'estimate']:.3f} [{t.loc[m, 'low']:.3f}, {t.loc[m, 'high']:.3f}]"
            for m in metrics
        }
    return pd.DataFrame(out)


def threshold_drift(models_: dict):
    """How each model's validation-chosen threshold behaves on validation and on test.
    ``models_``: name -> (card, {"val": (y, p), "test": (y, p)}). Returns ``(figure, table)``."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    rows = []
    fig, axes = plt.subplots(1, len(models_), figsize=(5.5 * len(models_), 3.6), squeeze=False)
    for ax, (name, (card, splits)) in zip(axes[0], models_.items()):
        t = card["threshold"]
        for split_name, (y, p) in splits.items():
            prec, rec, thr = precision_recall_curve(y, p)
            ax.plot(thr, rec[:-1], label=f"recall, {split_name}")
            ax.plot(thr, prec[:-1], ls="--", label=f"precision, {split_name}")
            m = binary_metrics(y, p, t)
            rows.append(
                {
                    "model": name,
                    "split": split_name,
                    "threshold": t,
                    "recall": m["recall"],
                    "precision": m["precision"],
                    "specificity": m["specificity"],
                }
            )
        ax.axvline(t, color="black", lw=1)
        ax.axhline(card["target_recall"], color="grey", ls=":", lw=1)
        ax.set_xlabel("threshold")
        ax.set_title(name)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig, pd.DataFrame(rows).set_index(["model", "split"])


def operating_point_table(checks: dict) -> pd.DataFrame:
    """The operating-point check of each model as a table (``checks``: model name -> the result
    of :func:`idc_utils.evaluation.thresholds.operating_point_check`)."""
    rows = {}
    for name, c in checks.items():
        e = c["expected_recall"]
        rows[name] = {
            "target recall": f"{c['target_recall']:.2f}",
            "threshold (method)": f"{c['threshold']:.4f} ({c['method']})",
            "expected on new patients": f"{e[0]:.3f} [{e[1]:.3f}, {e[2]:.3f}]"
            if e
            else "not stored",
            "test recall": "{:.3f} [{:.3f}, {:.3f}]".format(*c["recall"]),
            "test precision": "{:.3f} [{:.3f}, {:.3f}]".format(*c["precision"]),
            "verdict": c["verdict"].split(":")[0],
        }
    return pd.DataFrame(rows).T
