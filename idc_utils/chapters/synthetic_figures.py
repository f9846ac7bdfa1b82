"""Chapter 7's figures: the generator's training, real beside synthetic patches, distances to the
nearest training patch, and what synthetic images add to the head."""

from __future__ import annotations

import numpy as np
import pandas as pd


def plot_generator_history(history: pd.DataFrame, best_step: int | None = None):
    """The generator's denoising error on training batches and on validation patients."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.4))
    ax.plot(history["step"], history["loss"], "-", label="training batches (mean of 25 steps)")
    if "val_loss" in history and history["val_loss"].notna().any():
        v = history.dropna(subset=["val_loss"])
        ax.plot(v["step"], v["val_loss"], "s-", label="validation patients")
    if best_step:
        ax.axvline(best_step, color="grey", ls=":", label=f"kept: step {best_step}")
    ax.set_xlabel("training step")
    ax.set_ylabel("denoising error (mean |noise - estimate|)")
    ax.set_title("Training the generator")
    ax.legend()
    fig.tight_layout()
    return fig


def real_vs_synthetic_grid(real: dict, synthetic: dict, per_row: int = 8, size: float = 1.15):
    """Rows of real and synthetic patches per class (``{label: uint8 patches}``), all shown at
    the same pixel size."""
    import matplotlib.pyplot as plt

    rows = [(f"real {name}", real[c]) for c, name in ((0, "IDC-"), (1, "IDC+"))] + [
        (f"synthetic {name}", synthetic[c]) for c, name in ((0, "IDC-"), (1, "IDC+"))
    ]
    fig, axes = plt.subplots(
        len(rows), per_row, figsize=(per_row * size, len(rows) * size * 1.05), squeeze=False
    )
    for r, (name, imgs) in enumerate(rows):
        for k in range(per_row):
            ax = axes[r, k]
            ax.set_xticks([])
            ax.set_yticks([])
            if k < len(imgs):
                ax.imshow(imgs[k], interpolation="nearest")
            if k == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.tight_layout()
    return fig


def plot_nearest_distances(mem):
    """Distances to the nearest training patch: synthetic patches against real patches of new
    (validation) patients, in embedding and pixel space. Copies would pile up near zero."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    for ax, space in zip(axes, ("embedding", "pixel")):
        syn, ref = mem.distances[space, "synthetic"], mem.distances[space, "validation"]
        bins = np.linspace(0, max(syn.max(), ref.max()), 40)
        ax.hist(ref, bins, alpha=0.6, density=True, label="validation patients")
        ax.hist(syn, bins, alpha=0.6, density=True, label="synthetic")
        ax.set_xlabel(f"distance to the nearest training patch ({space} space)")
        ax.legend()
    axes[0].set_ylabel("density")
    fig.tight_layout()
    return fig


def plot_gain(study):
    """AUC and precision at the target recall of each method, minus no balancing's, with the
    paired interval over test patients and seeds (chapter 7)."""
    import matplotlib.pyplot as plt

    from idc_utils.studies.synthetic_gain import GAIN_LABELS

    t = study.table.drop(index="none", errors="ignore")
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.5 * len(t) + 1.8), sharey=True)
    for ax, metric, name in (
        (axes[0], "auc", "AUC"),
        (axes[1], "precision", f"precision at recall {study.target_recall:.2f}"),
    ):
        e = t[f"{metric}_vs_none"]
        ax.errorbar(
            e,
            range(len(t)),
            xerr=[e - t[f"{metric}_vs_none_low"], t[f"{metric}_vs_none_high"] - e],
            fmt="o",
            capsize=4,
        )
        ax.axvline(0, color="grey", lw=1)
        ax.set_xlabel(f"{name} minus no balancing's (95% CI)")
    axes[0].set_yticks(range(len(t)), [GAIN_LABELS.get(m, m) for m in t.index])
    fig.suptitle("Same head, same patients: what synthetic images add")
    fig.tight_layout()
    return fig
