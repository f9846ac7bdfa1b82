"""Chapter 3's computations, before any model is trained: a score that learns nothing (a patch's
mean hematoxylin optical density), the AUC counted pair by pair, and the spread of a metric when
whole patients or single patches are resampled."""

from __future__ import annotations

import numpy as np

from idc_utils.evaluation import bootstrap
from idc_utils.evaluation.metrics import check_inputs
from idc_utils.models import stain


def hematoxylin_score(images, rows, chunk: int = 2048) -> np.ndarray:
    """Each patch's mean hematoxylin optical density (colour deconvolution): nuclei take up
    hematoxylin and tumour packs them densely, so a higher score hints at IDC+. Nothing is
    learned, so the score is the same whichever patients it is computed on."""
    rows = np.asarray(rows)
    out = np.empty(len(rows), np.float64)
    for s in range(0, len(rows), chunk):
        patches = np.asarray(images[rows[s : s + chunk]])
        out[s : s + chunk] = stain.hed_channels(patches)[..., 0].mean(axis=(1, 2))
    return out


def auc_by_pairs(y_true, score) -> float:
    """The AUC as a probability: the share of (IDC+, IDC−) pairs in which the IDC+ patch has
    the higher score, a tie counting half."""
    y, s = check_inputs(y_true, score)
    pos, neg = s[y == 1], s[y == 0]
    wins = 0.0
    for s_pos in pos:  # one IDC+ patch against every IDC− patch
        wins += np.sum(s_pos > neg) + 0.5 * np.sum(s_pos == neg)
    return float(wins / (len(pos) * len(neg)))


def pair_subsample(y_true, max_pairs: int, seed: int = 0) -> np.ndarray:
    """Sorted row indices that hold at most ``max_pairs`` (IDC+, IDC−) pairs: both classes are
    thinned by the same factor (keeping the IDC+ share), or all rows when they fit."""
    y = np.asarray(y_true).astype(int).ravel()
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    keep = min(1.0, float(np.sqrt(max_pairs / max(1, len(pos) * len(neg)))))
    if keep >= 1.0:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    parts = [rng.choice(ix, max(1, int(len(ix) * keep)), replace=False) for ix in (pos, neg)]
    return np.sort(np.concatenate(parts))


def patch_bootstrap_samples(y_true, score, threshold: float, n_boot: int, seed: int = 0):
    """Every metric of :data:`~idc_utils.evaluation.bootstrap.CI_METRICS` over ``n_boot``
    resamples of single **patches** (with replacement), as if patches were independent: the
    comparison :func:`resampling_spread` draws against resampling whole patients."""
    y, s = check_inputs(y_true, score)
    n = len(y)
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, 4_000_000 // max(1, n)))
    parts = []
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(k)])
        parts.append(bootstrap.weighted_metrics(y, s, counts, threshold))
    return {m: np.concatenate([p[m] for p in parts]) for m in parts[0]}


def resampling_spread(
    y_true, score, patients, threshold: float, n_boot: int, seed: int = 0, metric: str = "auc"
) -> dict[str, np.ndarray]:
    """``metric`` over ``n_boot`` resamples of whole patients and over as many resamples of
    single patches: ``{"patients": values, "patches": values}`` (resamples without both classes,
    which have no AUC, left out)."""
    by_patient = bootstrap.bootstrap_samples(y_true, score, patients, threshold, n_boot, seed)
    by_patch = patch_bootstrap_samples(y_true, score, threshold, n_boot, seed)
    out = {}
    for name, boot in (("patients", by_patient), ("patches", by_patch)):
        v = boot[metric][~np.isnan(boot["auc"])]
        out[name] = v[~np.isnan(v)]
    return out
