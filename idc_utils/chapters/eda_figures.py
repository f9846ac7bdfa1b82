"""Chapter 1's figures: class balance overall and per patient, patches per patient, and a patient's
tissue region rebuilt from its patches beside its ground-truth map."""

from __future__ import annotations

import numpy as np
import pandas as pd

from idc_utils.chapters.style import CLASS_COLORS, draw_outline
from idc_utils.data.mosaic import mosaic, value_map
from idc_utils.data.split import patient_table
from idc_utils.studies.eda import class_balance


def plot_class_balance(manifest: pd.DataFrame):
    """Two panels: patches per class; IDC+ share per patient (sorted)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 2.4]})
    cb = class_balance(manifest).reset_index()
    sns.barplot(
        data=cb,
        x="class",
        y="patches",
        hue="class",
        ax=a,
        legend=False,
        palette=[CLASS_COLORS[0], CLASS_COLORS[1]],
    )
    for k, row in cb.iterrows():
        a.annotate(
            f"{row['patches']:,}\n({100 * row['share']:.1f}%)",
            (k, row["patches"]),
            ha="center",
            va="bottom",
            fontsize=9,
        )
    a.set_ylim(0, cb["patches"].max() * 1.25)
    a.set_title("Patches per class")
    pt = patient_table(manifest).sort_values("pos_share").reset_index(drop=True)
    b.bar(np.arange(len(pt)), pt["pos_share"], width=1.0, color=CLASS_COLORS[1])
    b.axhline(manifest["label"].mean(), color="black", ls="--", lw=1, label="overall IDC+ share")
    b.set_xlim(-0.5, len(pt) - 0.5)
    b.set_xlabel(f"patients (n = {len(pt)}), sorted by IDC+ share")
    b.set_ylabel("IDC+ share of the patient's patches")
    b.set_title("Class balance per patient")
    b.legend(loc="upper left")
    fig.tight_layout()
    return fig


def plot_patches_per_patient(manifest: pd.DataFrame):
    """Histogram of patches per patient, stacked by class."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    pt = patient_table(manifest).reset_index()
    long = pd.concat(
        [
            pd.DataFrame({"patches": pt["patches"] - pt["idc_pos"], "class": "IDC-"}),
            pd.DataFrame({"patches": pt["idc_pos"], "class": "IDC+"}),
        ]
    )
    fig, ax = plt.subplots(figsize=(8, 3.2))
    sns.histplot(
        data=long,
        x="patches",
        hue="class",
        multiple="stack",
        bins=30,
        ax=ax,
        palette={"IDC-": CLASS_COLORS[0], "IDC+": CLASS_COLORS[1]},
    )
    ax.set_xlabel("patches per patient")
    ax.set_title("How many patches each patient contributes")
    fig.tight_layout()
    return fig


def plot_mosaic(ax, images, rows: pd.DataFrame, *, outline_positive: bool = True, title=None):
    """Draw a patient's rebuilt tissue region, with IDC+ patches outlined."""
    canvas, grid = mosaic(images, rows["x"], rows["y"])
    ax.imshow(canvas, interpolation="nearest")
    if outline_positive:
        pos = value_map(grid, rows["label"], fill=0) > 0.5
        draw_outline(ax, pos, grid.step, label="IDC+ (ground truth)")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return grid


def plot_patient_overview(images, rows: pd.DataFrame, title: str = ""):
    """The rebuilt tissue region (IDC+ outlined) beside the ground-truth map per patch."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 6.5))
    grid = plot_mosaic(a, images, rows, title=title)
    b.imshow(
        value_map(grid, rows["label"]),
        cmap=ListedColormap([CLASS_COLORS[0], CLASS_COLORS[1]]),
        interpolation="nearest",
    )
    b.set_title("ground truth per patch (white: no patch)")
    b.set_xticks([])
    b.set_yticks([])
    b.legend(
        handles=[Patch(color=CLASS_COLORS[c], label=n) for c, n in ((0, "IDC-"), (1, "IDC+"))],
        loc="lower left",
    )
    a.legend(loc="lower left")
    fig.tight_layout()
    return fig, grid
