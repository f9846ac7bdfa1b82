"""Training data for the generators' tests (diffusion and GAN): patches whose colour carries
the class."""

from __future__ import annotations

import numpy as np
import pandas as pd


def two_kinds(n=64, seed=0):
    """Patches whose colour carries the class: pale pink (IDC-) or dark purple (IDC+)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    base = np.where(labels[:, None] == 1, [90, 40, 120], [230, 180, 210])[:, None, None, :]
    images = np.clip(base + rng.normal(0, 10, (n, 50, 50, 3)), 0, 255).astype(np.uint8)
    rows = pd.DataFrame(
        {"i": np.arange(n), "label": labels, "patient_id": (np.arange(n) // 8).astype(str)}
    ).assign(split="train")
    return images, rows
