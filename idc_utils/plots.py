"""Small plotting helpers shared by the chapters (matplotlib; one style for the whole book)."""

from __future__ import annotations

import numpy as np

CLASS_NAMES = {0: "IDC-", 1: "IDC+"}
CLASS_COLORS = {0: "#4C72B0", 1: "#C44E52"}


def use_book_style() -> None:
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid")
    mpl.rcParams.update({"figure.dpi": 100, "savefig.dpi": 110, "axes.titlesize": "medium"})


def patch_grid(images, titles=None, ncols: int = 8, size: float = 1.3, title_colors=None, suptitle=None):
    """Show patches in a grid; returns the figure."""
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.15), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(images[k], interpolation="nearest")
        if titles is not None:
            color = title_colors[k] if title_colors is not None else "black"
            ax.set_title(titles[k], fontsize=8, color=color)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


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


def outcome_grid(images, kinds, probs, per_kind: int, size: float = 1.45):
    """One row per outcome (true/false positive/negative), up to ``per_kind`` patches each, the
    probability above each; an empty row says there was no such case."""
    import matplotlib.pyplot as plt

    order = ["true positive", "false negative", "false positive", "true negative"]
    kinds = np.asarray(kinds)
    fig, axes = plt.subplots(len(order), per_kind, figsize=(per_kind * size, len(order) * size * 1.2), squeeze=False)
    for r, kind in enumerate(order):
        idx = np.flatnonzero(kinds == kind)[:per_kind]
        color = "green" if kind.startswith("true") else "red"
        for c in range(per_kind):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if c < len(idx):
                ax.imshow(images[idx[c]])
                ax.set_title(f"p={probs[idx[c]]:.2f}", fontsize=8, color=color)
        axes[r, 0].set_ylabel(f"{kind}\n({len(idx)} shown)" if len(idx) else f"{kind}\n(none)", fontsize=9,
                              color=color, rotation=0, ha="right", va="center")
    fig.tight_layout()
    return fig


def show_figure(fig, dpi: int = 100) -> None:
    """Display a figure as a PNG in a notebook whatever matplotlib's backend is (Gradio switches
    the global backend to 'agg' around every request it serves, which silences ``plt.show()``
    in a notebook that also runs the demo), then close it."""
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    display(Image(data=buf.getvalue(), format="png"))
