"""Class weights: each class contributes half of the loss, whatever its share of the patches."""

from __future__ import annotations

import numpy as np


def class_weights(labels) -> dict[int, float]:
    """'Balanced' weights: each class contributes half of the loss."""
    y = np.asarray(labels).astype(int)
    n, pos = len(y), int(y.sum())
    if pos == 0 or pos == n:
        raise ValueError("the training split holds one class only; a classifier cannot be trained")
    return {0: n / (2.0 * (n - pos)), 1: n / (2.0 * pos)}
