"""Chapter 3's figures and tables: a score's distribution per class at a threshold, the
confusion matrix, the ROC and precision-recall curves with operating points marked, recall and
precision against the threshold, and the spread of a metric over patient and patch resamples."""

from __future__ import annotations

import numpy as np
import pandas as pd

from idc_utils.chapters.style import CLASS_COLORS
from idc_utils.evaluation.metrics import binary_metrics

#: colour-blind-safe colours (Okabe-Ito) for curves and marked points
LINE_COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9")
MARKERS = ("o", "s", "D", "^")


def confusion_table(m: dict) -> pd.DataFrame:
    """The four counts of ``m`` (:func:`~idc_utils.evaluation.metrics.binary_metrics`) as the
    2×2 confusion matrix, truth in rows and decision in columns, with totals."""
    t = pd.DataFrame(
        [[m["tp"], m["fn"]], [m["fp"], m["tn"]]],
        index=pd.Index(["truly IDC+", "truly IDC−"], name=""),
        columns=["called IDC+", "called IDC−"],
    )
    t["total"] = t.sum(axis=1)
    t.loc["total"] = t.sum(axis=0)
    return t


def plot_score_by_class(score, y, threshold: float, xlabel: str, bins: int = 40):
    """Histograms of the score for IDC− and IDC+ patches, the threshold as a vertical line:
    right of it everything is called IDC+ (true positives in the IDC+ colour, false positives in
    the IDC− one). Scores above the 99.5th percentile are counted in the last bar, so that a few
    outliers do not squeeze the rest."""
    import matplotlib.pyplot as plt

    score, y = np.asarray(score, float), np.asarray(y).astype(int)
    top = float(np.quantile(score, 0.995))
    edges = np.linspace(score.min(), max(top, threshold), bins + 1)
    shown = np.minimum(score, edges[-1])
    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    for label, name in ((0, "IDC−"), (1, "IDC+")):
        ax.hist(shown[y == label], edges, alpha=0.55, color=CLASS_COLORS[label], label=name)
    ax.axvline(threshold, color="black", lw=1.5, ls="--", label=f"threshold {threshold:.3f}")
    ax.annotate(
        "called IDC+ →",
        (threshold, 0.95),
        xycoords=("data", "axes fraction"),
        xytext=(6, 0),
        textcoords="offset points",
        va="top",
        fontsize=9,
    )
    if score.max() > edges[-1]:
        xlabel += f" (last bar: all above {edges[-1]:.2f})"
    ax.set_xlabel(xlabel)
    ax.set_ylabel("patches")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def _operating_points(y, score, points: dict) -> dict:
    return {name: binary_metrics(y, score, t) for name, t in points.items()}


def plot_roc(y, score, points: dict, name: str = "score"):
    """The ROC curve of ``score`` with its AUC, the chance diagonal, the perfect corner, and each
    threshold of ``points`` (label -> threshold) marked."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, score)
    fig, ax = plt.subplots(figsize=(5.0, 4.6))
    auc = binary_metrics(y, score)["auc"]
    ax.plot(fpr, tpr, color=LINE_COLORS[0], lw=2, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey", label="chance (AUC 0.5)")
    ax.plot([0], [1], "*", color="black", ms=12, label="perfect: every IDC+, no false alarm")
    for k, (label, m) in enumerate(_operating_points(y, score, points).items()):
        ax.plot(
            1 - m["specificity"],
            m["recall"],
            MARKERS[k % len(MARKERS)],
            ms=8,
            color=LINE_COLORS[1 + k % 4],
            label=f"{label} (t = {m['threshold']:.3f})",
        )
    ax.set_xlabel("false positive rate (1 − specificity)")
    ax.set_ylabel("recall (true positive rate)")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_pr(y, score, points: dict, name: str = "score"):
    """The precision-recall curve of ``score`` with its average precision, the chance baseline
    (the IDC+ share, which a random ranking keeps at every recall), and ``points`` marked."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    prec, rec, _ = precision_recall_curve(y, score)
    prec, rec = prec[:-1], rec[:-1]  # drop scikit-learn's closing point (recall 0, precision 1)
    share = float(np.mean(np.asarray(y).astype(int)))
    ap = binary_metrics(y, score)["average_precision"]
    fig, ax = plt.subplots(figsize=(5.0, 4.6))
    ax.plot(rec, prec, color=LINE_COLORS[0], lw=2, label=f"{name} (AP {ap:.3f})")
    ax.axhline(share, ls=":", color="grey", label=f"chance: the IDC+ share, {share:.3f}")
    for k, (label, m) in enumerate(_operating_points(y, score, points).items()):
        ax.plot(
            m["recall"],
            m["precision"],
            MARKERS[k % len(MARKERS)],
            ms=8,
            color=LINE_COLORS[1 + k % 4],
            label=f"{label} (t = {m['threshold']:.3f})",
        )
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def threshold_sweep(y, score, n: int = 200, top: float = 0.98) -> pd.DataFrame:
    """Recall, precision and the share of patches called IDC+ at ``n`` thresholds, from the
    lowest score (every patch called IDC+) to the ``top`` quantile (where ``1 - top`` of them
    still are: above it, precision rests on a handful of patches)."""
    score, y = np.asarray(score, float), np.asarray(y).astype(int)
    ts = np.quantile(score, np.linspace(0, top, n))
    pos, neg = np.sort(score[y == 1]), np.sort(score[y == 0])
    tp = len(pos) - np.searchsorted(pos, ts, side="left")  # IDC+ patches with score >= t
    fp = len(neg) - np.searchsorted(neg, ts, side="left")
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
    return pd.DataFrame(
        {
            "threshold": ts,
            "recall": tp / len(pos),
            "precision": precision,
            "called IDC+": (tp + fp) / len(score),
        }
    )


def plot_threshold_sweep(y, score, threshold: float, target_recall: float, xlabel: str):
    """Recall and precision against the threshold, the target recall and the chosen threshold
    marked, and the IDC+ share: the precision of calling every patch IDC+."""
    import matplotlib.pyplot as plt

    sweep = threshold_sweep(y, score)
    share = float(np.mean(np.asarray(y).astype(int)))
    fig, ax = plt.subplots(figsize=(7.2, 3.8))
    ax.plot(sweep["threshold"], sweep["recall"], color=LINE_COLORS[0], lw=2, label="recall")
    ax.plot(
        sweep["threshold"],
        sweep["precision"],
        color=LINE_COLORS[1],
        lw=2,
        ls="--",
        label="precision",
    )
    ax.axhline(target_recall, color=LINE_COLORS[0], lw=1, ls=":", label="target recall")
    ax.axhline(share, color="grey", lw=1, ls=":", label="IDC+ share")
    ax.axvline(threshold, color="black", lw=1.2, label=f"chosen threshold {threshold:.3f}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("validation patches")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def plot_resampling_spread(spread: dict, estimate: float, metric: str = "AUC"):
    """Histograms of a metric over resamples (``spread``: name -> values, e.g. of patients and of
    patches), each with its 95% percentile interval drawn below, and the estimate on all the
    patches as a vertical line."""
    import matplotlib.pyplot as plt

    values = np.concatenate([np.asarray(v, float) for v in spread.values()])
    edges = np.histogram_bin_edges(values, 40)
    fig, ax = plt.subplots(figsize=(7.2, 3.8))
    top = 0
    for k, (name, v) in enumerate(spread.items()):
        counts, _, _ = ax.hist(
            v, edges, alpha=0.5, color=LINE_COLORS[k], label=f"resampling {name}"
        )
        top = max(top, counts.max())
    for k, (_name, v) in enumerate(spread.items()):
        low, high = np.quantile(v, [0.025, 0.975])
        y = -(k + 1) * 0.06 * top
        ax.plot([low, high], [y, y], color=LINE_COLORS[k], lw=3, solid_capstyle="butt")
    ax.axvline(estimate, color="black", lw=1.2, label=f"all validation patches: {estimate:.3f}")
    ax.set_xlabel(f"{metric} of a resample")
    ax.set_ylabel("resamples")
    ax.set_ylim(-(len(spread) + 1) * 0.06 * top, top * 1.08)
    ax.set_yticks([t for t in ax.get_yticks() if 0 <= t <= top * 1.08])
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("Bars below: 95% percentile intervals", fontsize=9)
    fig.tight_layout()
    return fig
