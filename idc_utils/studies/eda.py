"""Dataset summaries for the exploratory chapter (01_eda): class balance, the edge patches'
sizes, example patches; its figures are in :mod:`idc_utils.chapters.eda_figures`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from idc_utils.core.constants import CLASS_NAMES, PATCH_SIZE


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
