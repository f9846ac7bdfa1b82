"""Chapters 5 and 6's figures: the learning curves of a training run, phase by phase; the
learning rate over a phase; EfficientNet-Lite0's stages of MBConv blocks."""

from __future__ import annotations

import numpy as np

from idc_utils.chapters.style import OKABE_ITO


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


def plot_learning_rate(rate, epochs: int, steps_per_epoch: int, title: str = "Learning rate"):
    """Adam's learning rate at every step of a phase: ``rate`` is a number (constant) or a Keras
    schedule (called with the step)."""
    import matplotlib.pyplot as plt

    steps = np.unique(np.linspace(0, epochs * steps_per_epoch, 200).astype(int))
    values = [float(rate(s)) if callable(rate) else float(rate) for s in steps]
    fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.plot(steps / steps_per_epoch, values, color=OKABE_ITO["blue"])
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.set_ylim(0, max(values) * 1.1)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_block_table(table, image_size: int, title: str = "EfficientNet-Lite0's MBConv stages"):
    """The stages of :func:`idc_utils.models.lite0.block_table`: one bar per stage, as wide as its
    number of blocks and as tall as its output channels (log scale), coloured by kernel size,
    labelled with its expansion, stride and output resolution at ``image_size``."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colors = {"3x3": OKABE_ITO["sky blue"], "5x5": OKABE_ITO["orange"]}
    fig, ax = plt.subplots(figsize=(10, 3.8))
    left = 0
    for stage, row in table.iterrows():
        ax.bar(
            left,
            row["channels"],
            width=row["repeats"],
            align="edge",
            color=colors.get(row["kernel"], "grey"),
            edgecolor="black",
            linewidth=0.6,
        )
        side = row["resolution"]
        label = f"MBConv{row['expansion']}\nstride {row['stride']}\n{side}×{side}"
        ax.text(
            left + row["repeats"] / 2,
            row["channels"] * 1.08,
            label,
            ha="center",
            va="bottom",
            fontsize=8,
        )
        ax.text(
            left + row["repeats"] / 2,
            9,
            f"stage {stage}\n×{row['repeats']}",
            ha="center",
            va="bottom",
            fontsize=8,
        )
        left += row["repeats"]
    ax.set_yscale("log")
    ax.set_ylim(8, table["channels"].max() * 4)
    ax.set_xlim(0, left)
    ax.set_xlabel("MBConv block (a stage's width is its number of blocks)")
    ax.set_ylabel("output channels")
    handles = [Patch(color=c, label=f"{k} depthwise kernel") for k, c in colors.items()]
    ax.legend(handles=handles, loc="upper left", fontsize=8)
    ax.set_title(f"{title}, at {image_size}×{image_size} px input")
    fig.tight_layout()
    return fig
