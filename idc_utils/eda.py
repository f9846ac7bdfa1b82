"""Dataset summaries and figures for the exploratory chapter (01_eda)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .data import PATCH_SIZE
from .plots import CLASS_COLORS, CLASS_NAMES
from .split import patient_table


def class_balance(manifest: pd.DataFrame) -> pd.DataFrame:
    """Patches per class, with shares."""
    counts = manifest["label"].value_counts().reindex([0, 1], fill_value=0)
    return pd.DataFrame(
        {
            "class": [CLASS_NAMES[c] for c in counts.index],
            "patches": counts.to_numpy(),
            "share": (counts / counts.sum()).round(3).to_numpy(),
        }
    ).set_index("class")


def size_report(manifest: pd.DataFrame) -> pd.DataFrame:
    """Patches whose stored size is not 50x50 (the slide-edge patches), by size."""
    odd = manifest[(manifest["width"] != PATCH_SIZE) | (manifest["height"] != PATCH_SIZE)]
    if odd.empty:
        return pd.DataFrame(columns=["width", "height", "patches", "IDC+"])
    t = odd.groupby(["width", "height"])["label"].agg(patches="size", **{"IDC+": "sum"})
    return t.reset_index().sort_values("patches", ascending=False).reset_index(drop=True)


def plot_class_balance(manifest: pd.DataFrame):
    """Two panels: patches per class; IDC+ share per patient (sorted)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 2.4]})
    cb = class_balance(manifest).reset_index()
    sns.barplot(data=cb, x="class", y="patches", hue="class", ax=a, legend=False,
                palette=[CLASS_COLORS[0], CLASS_COLORS[1]])
    for k, row in cb.iterrows():
        a.annotate(f"{row['patches']:,}\n({100 * row['share']:.1f}%)", (k, row["patches"]),
                   ha="center", va="bottom", fontsize=9)
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
    sns.histplot(data=long, x="patches", hue="class", multiple="stack", bins=30, ax=ax,
                 palette={"IDC-": CLASS_COLORS[0], "IDC+": CLASS_COLORS[1]})
    ax.set_xlabel("patches per patient")
    ax.set_title("How many patches each patient contributes")
    fig.tight_layout()
    return fig


def pick_examples(manifest: pd.DataFrame, per_class: int, seed: int) -> pd.DataFrame:
    """``per_class`` random full-size patches of each class, each from a different patient
    where possible (seeded)."""
    rng = np.random.default_rng(seed)
    out = []
    full = manifest[(manifest["width"] == PATCH_SIZE) & (manifest["height"] == PATCH_SIZE)]
    for label in (0, 1):
        part = full[full["label"] == label]
        one_each = part.groupby("patient_id").sample(1, random_state=int(rng.integers(2**31)))
        pool = one_each if len(one_each) >= per_class else part
        out.append(pool.sample(min(per_class, len(pool)), random_state=int(rng.integers(2**31))))
    return pd.concat(out)
