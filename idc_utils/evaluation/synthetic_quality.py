"""How good synthetic patches are, on frozen ImageNet embeddings (no Inception download): fidelity
(kernel inception distance), memorisation (nearest training patches), label fidelity (how a
trained classifier calls them) and a real-vs-synthetic probe (could a classifier tell them
apart?)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def kid(a: np.ndarray, b: np.ndarray, subsets: int = 20, subset_size: int = 100, seed: int = 0):
    """Kernel Inception Distance between embedding sets ``a`` and ``b`` (rows): the mean, over
    random subsets, of the unbiased MMD^2 with the kernel (x.y / d + 1)^3; and its spread."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = a.shape[1]
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError("KID needs at least two rows in each set")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        off = ~np.eye(m, dtype=bool)
        values.append(kxx[off].mean() + kyy[off].mean() - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


def nearest_distances(query: np.ndarray, reference: np.ndarray, chunk: int = 1024):
    """For each row of ``query``: the Euclidean distance to its nearest row of ``reference``
    and that row's index (chunked: references of any size)."""
    q = np.asarray(query, np.float32).reshape(len(query), -1)
    r = np.asarray(reference, np.float32).reshape(len(reference), -1)
    r2 = (r**2).sum(1)
    best = np.full(len(q), np.inf)
    where = np.zeros(len(q), np.int64)
    for s in range(0, len(r), chunk):
        block = r[s : s + chunk]
        d2 = (q**2).sum(1)[:, None] - 2 * q @ block.T + r2[s : s + chunk][None]
        k = d2.argmin(1)
        val = d2[np.arange(len(q)), k]
        better = val < best
        best[better], where[better] = val[better], s + k[better]
    return np.sqrt(np.maximum(best, 0)), where


def real_vs_synthetic_auc(real: np.ndarray, synthetic: np.ndarray, seed: int = 0) -> float:
    """Cross-validated AUC of a logistic probe that tells real from synthetic embeddings: 0.5
    means indistinguishable; near 1.0 means artefacts a classifier could learn as a label cue."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict

    from idc_utils.core.threads import one_blas_thread
    from idc_utils.models.linear_head import linear_head

    x = np.concatenate([real, synthetic])
    y = np.r_[np.zeros(len(real)), np.ones(len(synthetic))]
    folds = min(5, int(min(len(real), len(synthetic))))
    with one_blas_thread():
        p = cross_val_predict(
            linear_head(C=0.1, seed=seed),
            x,
            y,
            cv=_stratified(folds, seed),
            method="predict_proba",
        )[:, 1]
    return float(roc_auc_score(y, p))


def _stratified(folds: int, seed: int):
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(folds, shuffle=True, random_state=seed)


FIDELITY_PAIRS = (
    ("real train vs real validation (the floor)", "train", "val"),
    ("real train vs real validation, both at the generator's size", "train_rt", "val_rt"),
    ("synthetic vs real validation at the generator's size", "synthetic", "val_rt"),
    ("synthetic vs real train at the generator's size", "synthetic", "train_rt"),
)


def fidelity_table(emb: dict, labels: dict, seed: int = 0, subset_size: int = 100) -> pd.DataFrame:
    """KID per class for the pairs of :data:`FIDELITY_PAIRS`. ``emb`` and ``labels`` hold the
    sets ``train``, ``val`` (real, 50 px), ``train_rt``, ``val_rt`` (real, round trip through the
    generator's size) and ``synthetic``; each row gives KID x 1000 and its spread over subsets."""
    rows = []
    for name, a, b in FIDELITY_PAIRS:
        for c, cname in ((0, "IDC-"), (1, "IDC+")):
            xa = emb[a][np.asarray(labels[a]) == c]
            xb = emb[b][np.asarray(labels[b]) == c]
            m = min(subset_size, len(xa), len(xb))
            if m < 2:
                continue
            value, spread = kid(xa, xb, subset_size=m, seed=seed)
            rows.append(
                {
                    "comparison": name,
                    "class": cname,
                    "KID x 1000": 1000 * value,
                    "spread x 1000": 1000 * spread,
                }
            )
    table = pd.DataFrame(rows).pivot(index="comparison", columns="class")
    table.columns = [f"{c} {m}" for m, c in table.columns]
    return table.loc[[n for n, _, _ in FIDELITY_PAIRS if n in table.index]]


@dataclass
class Memorisation:
    """Nearest-training-neighbour distances of synthetic patches against those of real patches
    of new patients (validation), in embedding and pixel space."""

    distances: dict  # (space, "synthetic" | "validation") -> distances
    nearest: dict  # space -> index into the reference set of each synthetic patch's neighbour

    def summary(self) -> pd.DataFrame:
        rows = []
        for space in ("embedding", "pixel"):
            syn, ref = self.distances[space, "synthetic"], self.distances[space, "validation"]
            close = np.quantile(ref, 0.01)
            rows.append(
                {
                    "space": space,
                    "median, synthetic -> train": float(np.median(syn)),
                    "median, validation -> train": float(np.median(ref)),
                    "ratio": float(np.median(syn) / np.median(ref)),
                    "synthetic closer than 99% of validation patches": float((syn < close).mean()),
                }
            )
        return pd.DataFrame(rows).set_index("space")

    def closest(self, space: str, k: int = 6) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the ``k`` synthetic patches nearest to a training patch, and those
        training patches' positions in the reference set."""
        order = np.argsort(self.distances[space, "synthetic"])[:k]
        return order, self.nearest[space][order]


def memorisation(syn_emb, syn_px, train_emb, train_px, val_emb, val_px) -> Memorisation:
    """Distances from each synthetic patch and each validation patch to its nearest training
    patch, in embedding space and in pixels (at the generator's size). The training patches
    given are the ones searched (see :func:`memorisation_reference` for large sets)."""
    distances, nearest = {}, {}
    for space, s, r, v in (
        ("embedding", syn_emb, train_emb, val_emb),
        ("pixel", syn_px, train_px, val_px),
    ):
        distances[space, "synthetic"], nearest[space] = nearest_distances(s, r)
        distances[space, "validation"], _ = nearest_distances(v, r)
    return Memorisation(distances, nearest)


def label_fidelity(
    prob: np.ndarray, labels, threshold: float, references: dict | None = None
) -> pd.DataFrame:
    """How a trained classifier calls synthetic patches of each class (not used to filter
    them): the share called IDC+ at its operating threshold, and the median P(IDC+).

    ``references``: ``{name: (prob, labels)}`` of real patches read by the same classifier,
    each adding the rows "<name> IDC+" and "<name> IDC-". Real patches of validation patients
    taken through the generator's resolution and back say what a perfect generator at that
    resolution would score: a classifier that calls many real IDC- patches IDC+ after the
    round trip will call synthetic ones so too, and a share far below theirs means the
    generator makes only the easiest IDC- tissue."""
    sets = {"synthetic": (prob, labels), **(references or {})}
    rows, names = [], []
    for name, (p_all, y_all) in sets.items():
        p_all, y_all = np.asarray(p_all), np.asarray(y_all).astype(int)
        if len(p_all) != len(y_all):
            raise ValueError(
                f"label fidelity of {name!r}: {len(p_all)} probabilities for {len(y_all)} "
                "labels; pass one label per patch"
            )
        for c, sign in ((1, "+"), (0, "-")):
            p = p_all[y_all == c]
            names.append(f"{name} IDC{sign}")
            rows.append(
                {
                    "patches": int(len(p)),
                    "called IDC+": float((p >= threshold).mean()) if len(p) else np.nan,
                    "median P(IDC+)": float(np.median(p)) if len(p) else np.nan,
                }
            )
    return pd.DataFrame(rows, index=names)


def memorisation_reference(n_train: int, max_reference: int = 20000, seed: int = 0) -> np.ndarray:
    """Positions of the training patches searched for each synthetic patch's nearest neighbour:
    all of them up to ``max_reference``, else a seeded draw (the full Kaggle set has 190,000)."""
    if n_train <= max_reference:
        return np.arange(n_train)
    return np.sort(np.random.default_rng(seed).choice(n_train, max_reference, replace=False))
