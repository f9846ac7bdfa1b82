"""Slide context: the scores of a patch's neighbours on the slide inform its own.

Patches of one patient lie on a 50-pixel grid (``x``, ``y`` in the Kaggle names) and IDC regions
are contiguous, so a patch surrounded by confident IDC+ patches is more likely IDC+ than its
own score says, and an isolated high score amid benign tissue less so. Context scoring is a
smoothing of the model's **log-odds** over the grid, without labels:

    z'_i = (z_i + s * sum_j w_ij z_j) / (1 + s * sum_j w_ij),  w_ij = exp(-d_ij^2 / (2 sigma^2))

over the neighbours ``j`` within ``radius`` grid steps (``d`` in steps). A patch without
neighbours keeps its score exactly. The bandwidth ``sigma`` and strength ``s`` are chosen on
validation patients (their labels only judge the choice; the scores use no label); ``s = 0`` is
among the choices, so context is off when it does not help there. Where it cannot apply: patches
scored alone, or patients sampled so sparsely that no two patches touch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from idc_utils.core.constants import PATCH_SIZE
from idc_utils.evaluation.metrics import logit


@dataclass(frozen=True)
class ContextModel:
    sigma: float = 1.0  # bandwidth, in grid steps
    strength: float = 0.0  # 0: no context
    radius: int = 2  # neighbours within this many grid steps (a square window)
    step: int = PATCH_SIZE

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> ContextModel:
        return cls(**{k: v for k, v in (d or {}).items() if k in cls.__dataclass_fields__})


def neighbours(coords: pd.DataFrame, radius: int = 2, step: int = PATCH_SIZE):
    """Pairs of patches of the same patient within ``radius`` grid steps: ``(i, j, d)`` arrays
    (row positions of ``coords``, which needs ``patient_id``, ``x``, ``y``), each pair both ways."""
    key = pd.DataFrame(
        {
            "patient_id": coords["patient_id"].astype(str).to_numpy(),
            "cx": (np.asarray(coords["x"], dtype=np.int64) // step),
            "cy": (np.asarray(coords["y"], dtype=np.int64) // step),
            "row": np.arange(len(coords)),
        }
    )
    out_i, out_j, out_d = [], [], []
    for dx in range(-radius, radius + 1):
        for dy in range(-radius, radius + 1):
            if dx == 0 and dy == 0:
                continue
            moved = key.assign(cx=key["cx"] + dx, cy=key["cy"] + dy)
            hit = moved.merge(key, on=["patient_id", "cx", "cy"], suffixes=("", "_n"))
            out_i.append(hit["row"].to_numpy())
            out_j.append(hit["row_n"].to_numpy())
            out_d.append(np.full(len(hit), np.hypot(dx, dy)))
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_d)


def smooth(coords: pd.DataFrame, prob, model: ContextModel, pairs=None) -> np.ndarray:
    """Context-aware probabilities (see the module text). Patches without neighbours, and every
    patch when ``strength`` is 0, keep their probability."""
    prob = np.asarray(prob, dtype=np.float64)
    if model.strength <= 0 or len(prob) == 0:
        return prob.copy()
    i, j, d = pairs if pairs is not None else neighbours(coords, model.radius, model.step)
    w = np.exp(-(d**2) / (2 * model.sigma**2))
    z = logit(prob, eps=1e-6)
    wsum = np.bincount(i, weights=w, minlength=len(prob))
    wz = np.bincount(i, weights=w * z[j], minlength=len(prob))
    zs = (z + model.strength * wz) / (1 + model.strength * wsum)
    out = 1 / (1 + np.exp(-zs))
    alone = wsum == 0
    out[alone] = prob[alone]  # exactly unchanged, not through logit and back
    return out


def has_neighbours(coords: pd.DataFrame, radius: int = 1, step: int = PATCH_SIZE) -> np.ndarray:
    """Whether each patch has at least one neighbour within ``radius`` grid steps."""
    i, _, _ = neighbours(coords, radius, step)
    return np.bincount(i, minlength=len(coords)) > 0


def fit(
    coords: pd.DataFrame,
    prob,
    labels,
    sigmas=(0.75, 1.0, 1.5),
    strengths=(0.0, 0.5, 1.0, 2.0, 4.0),
    radius: int = 2,
) -> tuple[ContextModel, pd.DataFrame]:
    """Choose ``sigma`` and ``strength`` by the AUC of the smoothed scores on these (validation)
    patients. Returns the best model and the whole grid as a table."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(labels).astype(int)
    pairs = neighbours(coords, radius)
    rows = []
    for sigma in sigmas:
        for s in strengths:
            m = ContextModel(sigma, s, radius)
            rows.append(
                {
                    "sigma": sigma,
                    "strength": s,
                    "auc": float(roc_auc_score(y, smooth(coords, prob, m, pairs))),
                }
            )
    table = pd.DataFrame(rows)
    best = table.sort_values(["auc", "strength"], ascending=[False, True]).iloc[0]
    if best["strength"] == 0:
        return ContextModel(1.0, 0.0, radius), table
    return ContextModel(float(best["sigma"]), float(best["strength"]), radius), table
