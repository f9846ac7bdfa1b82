"""Chapters 4 and 5's figure: the learning curves of a training run, phase by phase."""

from __future__ import annotations


def plot_history(history, title: str = "Learning curves"):
    """Loss and AUC per epoch, training vs validation, with phase boundaries marked."""
    import matplotlib.pyplot as plt

    h = history.reset_index(drop=True).copy()
    h["step"] = range(1, len(h) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, metric in zip(axes, ("loss", "auc")):
        ax.plot(h["step"], h[metric], "o-", label=f"train {metric}")
        if f"val_{metric}" in h:
            ax.plot(h["step"], h[f"val_{metric}"], "s-", label=f"validation {metric}")
        if "phase" in h:
            starts = h.groupby("phase", sort=False)["step"].min()
            for name, s in starts.items():
                ax.axvline(s - 0.5, color="grey", ls=":", lw=1)
                ax.annotate(name, (s - 0.4, ax.get_ylim()[1]), va="top", fontsize=8, color="grey")
        ax.set_xlabel("epoch (all phases)")
        ax.set_title(metric)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
