"""Chapter 4's figures: the balancing methods' validation AUC with intervals, and the training
embeddings (real and SMOTE's synthetic points) in two dimensions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from idc_utils.chapters.style import CLASS_COLORS, OKABE_ITO


def plot_balance_comparison(table: pd.DataFrame, chosen: str | None = None):
    """Validation AUC of each balancing method with its patient-bootstrap interval, the method
    validation chose marked (chapter 4). Test patients take no part in this figure."""
    import matplotlib.pyplot as plt

    t = table
    if "error" in t:
        t = t[t["error"] == ""]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(t) + 1.6))
    ax.errorbar(
        t["val_auc"],
        range(len(t)),
        xerr=[t["val_auc"] - t["val_auc_low"], t["val_auc_high"] - t["val_auc"]],
        fmt="o",
        capsize=4,
        color=OKABE_ITO["blue"],
    )
    labels = [f"{m} (chosen)" if m == chosen else m for m in t.index]
    ax.set_yticks(range(len(t)), labels)
    ax.set_xlabel("validation AUC (95% CI by patient bootstrap)")
    ax.set_title("Balancing methods: same embeddings, same head, validation patients")
    fig.tight_layout()
    return fig


def plot_embedding_view(
    xy: np.ndarray, y: np.ndarray, synthetic: np.ndarray, projection: str = "pca"
):
    """Real IDC-, real IDC+ and synthetic IDC+ points in a 2-D projection."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5.5))
    for mask, label, kw in [
        ((y == 0) & ~synthetic, "real IDC-", dict(c=CLASS_COLORS[0], s=6, alpha=0.35)),
        ((y == 1) & ~synthetic, "real IDC+", dict(c=CLASS_COLORS[1], s=8, alpha=0.6)),
        (
            synthetic,
            "synthetic IDC+ (SMOTE)",
            dict(c=OKABE_ITO["bluish green"], s=10, alpha=0.7, marker="x"),
        ),
    ]:
        ax.scatter(xy[mask, 0], xy[mask, 1], label=f"{label} ({mask.sum():,})", **kw)
    ax.set_xlabel(f"{projection.upper()} 1")
    ax.set_ylabel(f"{projection.upper()} 2")
    ax.set_title("Training embeddings, real and synthetic")
    ax.legend(markerscale=2)
    fig.tight_layout()
    return fig
