"""Patient-level train/val/test split, and the checks that keep it honest.

Patches of one patient are near-copies of each other (same slide, same stain, same tumour). If a
patient has patches in both train and test, the test score measures memory of that slide, not
generalisation to a new patient. Every split here is by patient, stratified by each patient's
IDC+ share so that each split keeps about the dataset's share of positives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")


HOLDOUT = "holdout"  # patients outside every split (their rebuilt tissue region is mapped)


SPLIT_COLUMNS = ["path", "patient_id", "x", "y", "label", "split"]


class LeakageError(ValueError):
    """A patient appears in more than one split."""


def patient_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per patient: patches, IDC+ patches, IDC+ share."""
    g = manifest.groupby("patient_id")["label"]
    t = pd.DataFrame({"patches": g.size(), "idc_pos": g.sum()})
    t["pos_share"] = t["idc_pos"] / t["patches"]
    return t.sort_index()


def split_patients(
    manifest: pd.DataFrame,
    val_frac: float = 0.15,
    test_frac: float = 0.15,
    seed: int = 0,
    n_strata: int = 5,
) -> pd.Series:
    """Assign each patient to train/val/test. Returns a Series ``patient_id -> split``.

    Patients are grouped into strata by IDC+ share (quantiles); within a stratum they are
    shuffled with ``seed`` and dealt out one by one to the split that is furthest below its
    target share of the patches dealt so far. So each split gets about its share of patches, of
    patients, and of IDC+ patches. Same manifest + same seed -> same split, on any machine.
    """
    if not 0 <= val_frac < 1 or not 0 <= test_frac < 1 or val_frac + test_frac >= 1:
        raise ValueError(
            f"val_frac={val_frac} and test_frac={test_frac} must be in [0, 1) with sum < 1"
        )
    table = patient_table(manifest)
    n_pat = len(table)
    wanted = [s for s, f in zip(SPLITS, (1 - val_frac - test_frac, val_frac, test_frac)) if f > 0]
    if n_pat < len(wanted):
        raise ValueError(
            f"{n_pat} patient(s) cannot fill {len(wanted)} splits; a patient-level split needs at "
            "least one patient per split. Use more patients or set val_frac/test_frac to 0."
        )
    target = {"train": 1 - val_frac - test_frac, "val": val_frac, "test": test_frac}
    rng = np.random.default_rng(seed)
    # strata by IDC+ share; rank first so that ties (many 0% patients) still spread evenly
    ranks = table["pos_share"].rank(method="first")
    n_strata = max(1, min(n_strata, n_pat // max(1, len(wanted))))
    strata = (
        pd.qcut(ranks, n_strata, labels=False) if n_strata > 1 else pd.Series(0, index=table.index)
    )
    filled = {s: 0.0 for s in SPLITS}
    assigned = 0.0
    assignment: dict[str, str] = {}
    # Strata in order of IDC+ share, patients shuffled within each. Each patient goes to the
    # split furthest below its target share of the patches dealt *so far*: the running shares
    # stay on target all along, so every stratum is spread over the splits in proportion.
    for stratum in sorted(strata.unique()):
        members = table.index[strata == stratum].to_numpy()
        members = members[rng.permutation(len(members))]
        for pid in members:
            n = float(table.at[pid, "patches"])
            deficits = {s: target[s] * (assigned + n) - filled[s] for s in wanted}
            best = max(deficits, key=lambda s: (deficits[s], -SPLITS.index(s)))
            assignment[pid] = best
            filled[best] += n
            assigned += n
    # every requested split must hold at least one patient
    out = pd.Series(assignment, name="split").sort_index()
    for s in wanted:
        if not (out == s).any():
            donor = out.value_counts().idxmax()
            pid = out.index[out == donor][rng.integers((out == donor).sum())]
            out[pid] = s
    out.index.name = "patient_id"
    return out


def assign_split(
    manifest: pd.DataFrame,
    val_frac: float = 0.15,
    test_frac: float = 0.15,
    seed: int = 0,
    holdout: Iterable[str] = (),
) -> pd.DataFrame:
    """The manifest with a ``split`` column from :func:`split_patients`.

    ``holdout`` patients are kept out of train/val/test altogether (split ``holdout``): the
    book rebuilds one such patient's whole tissue region (a mosaic) and maps the model's
    predictions on it, so it must be a patient no model was trained or tuned on, without letting
    one large patient dominate the test split.
    """
    held = {str(p) for p in holdout} & set(manifest["patient_id"])
    rest = manifest[~manifest["patient_id"].isin(held)]
    by_patient = split_patients(rest, val_frac, test_frac, seed)
    out = manifest.copy()
    out["split"] = out["patient_id"].map(by_patient)
    out.loc[out["patient_id"].isin(held), "split"] = HOLDOUT
    check_no_leakage(out)
    return out


def check_no_leakage(df: pd.DataFrame) -> None:
    """Raise :class:`LeakageError` naming the patients that appear in more than one split."""
    if "split" not in df.columns:
        raise ValueError("no 'split' column to check")
    if df["split"].isna().any():
        n = int(df["split"].isna().sum())
        raise LeakageError(f"{n} patches have no split")
    unknown = set(df["split"].unique()) - set(SPLITS) - {HOLDOUT}
    if unknown:
        raise LeakageError(f"unknown split names {sorted(unknown)}; use {SPLITS} or {HOLDOUT!r}")
    per_patient = df.groupby("patient_id")["split"].nunique()
    crossing = per_patient[per_patient > 1]
    if len(crossing):
        names = ", ".join(map(str, crossing.index[:10]))
        raise LeakageError(
            f"{len(crossing)} patient(s) appear in more than one split (e.g. {names}): their "
            "patches would leak between training and evaluation. Split by patient "
            "(idc_utils.split.assign_split)."
        )


def split_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Patients, patches and IDC+ share per split (a table for the book)."""
    rows = []
    for s in (*SPLITS, HOLDOUT):
        part = df[df["split"] == s]
        if part.empty:
            continue
        rows.append(
            {
                "split": s,
                "patients": part["patient_id"].nunique(),
                "patches": len(part),
                "IDC+ patches": int(part["label"].sum()),
                "IDC+ share": round(float(part["label"].mean()), 3),
                "share of patches": round(len(part) / len(df), 3),
            }
        )
    return pd.DataFrame(rows).set_index("split")


def save_split(df: pd.DataFrame, path: str | Path) -> Path:
    check_no_leakage(df)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df[SPLIT_COLUMNS].to_csv(path, index=False)
    return path


def load_split(path: str | Path) -> pd.DataFrame:
    """Read a ``split.csv``; checks its columns and that no patient crosses splits."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: run chapter 01 (notebooks/01_eda.ipynb) first, or `make book`, "
            "which writes the split into the run folder."
        )
    df = pd.read_csv(path, dtype={"patient_id": str})
    missing = set(SPLIT_COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"{path} lacks columns {sorted(missing)}; expected {SPLIT_COLUMNS}")
    check_no_leakage(df)
    return df


def attach_split(manifest: pd.DataFrame, split_df: pd.DataFrame) -> pd.DataFrame:
    """Join a saved split onto a dataset manifest (by path); every split row must be found."""
    merged = manifest.merge(split_df[["path", "split"]], on="path", how="inner")
    if len(merged) != len(split_df):
        lost = set(split_df["path"]) - set(merged["path"])
        ex = ", ".join(sorted(lost)[:3])
        raise ValueError(
            f"{len(lost)} patches of the split are not in the dataset (e.g. {ex}): the split was "
            "made from other data. Re-run chapter 01 on this dataset."
        )
    return merged


def dataset_with_split(data_dir, split_csv):
    """Load the dataset (from the decode cache) and join the run's saved split onto it:
    ``(dataset, manifest with a split column)``. The chapters after 01 start here."""
    from idc_utils.data.dataset import load_dataset

    ds = load_dataset(data_dir)
    return ds, attach_split(ds.manifest, load_split(split_csv))


def assignment_digest(split_df: pd.DataFrame) -> str:
    """A short digest of which patient is in which split (the patient-level assignment): tells
    whether a stored study was measured on the same split as the run that shows it. Compare
    :func:`training_rows_digest` (which patch rows train and validate a model) and the data's
    fingerprint (:attr:`idc_utils.data.dataset.Dataset.fingerprint`: which patches the dataset
    holds)."""
    pairs = split_df[["patient_id", "split"]].astype(str).drop_duplicates()
    text = "\n".join(sorted(f"{p},{s}" for p, s in pairs.itertuples(index=False)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def train_subset(split_df: pd.DataFrame, fraction: float, seed: int = 0) -> pd.DataFrame:
    """Keep a seeded share of the *training* patients (whole patients); validation and test rows
    are unchanged. Subsets of one seed are nested: the patients of a smaller fraction are among
    those of every larger one, so a learning curve adds patients and never swaps them."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    train = split_df["split"] == "train"
    patients = np.array(sorted(split_df.loc[train, "patient_id"].astype(str).unique()))
    if len(patients) == 0:
        raise ValueError("the split has no training patients")
    order = np.random.default_rng(seed).permutation(len(patients))
    n = max(1, int(round(fraction * len(patients))))
    kept = set(patients[order[:n]])
    keep = ~train | split_df["patient_id"].astype(str).isin(kept)
    return split_df[keep].copy()


def patch_split_leak(manifest: pd.DataFrame, test_frac: float = 0.15, seed: int = 0) -> dict:
    """What a random split of *patches* (train_test_split, stratified by label) would do: how
    many test patients also have patches in training, and how many test patches belong to them."""
    from sklearn.model_selection import train_test_split

    tr, te = train_test_split(
        manifest, test_size=test_frac, random_state=seed, stratify=manifest["label"]
    )
    shared = set(tr["patient_id"]) & set(te["patient_id"])
    return {
        "patients in the test part": int(te["patient_id"].nunique()),
        "of them also in the training part": len(shared),
        "test patches whose patient is in training": int(te["patient_id"].isin(shared).sum()),
    }


def training_patches_digest(rows: pd.DataFrame) -> str:
    """A short digest of which patches ``rows`` hold, by their names in the dataset's layout
    (column ``path``) and labels: unlike :func:`training_rows_digest`, it does not depend on the
    order a dataset was read in, so a model trained on one machine can be checked on another."""
    if "path" not in rows:
        raise ValueError("the rows need the dataset's 'path' column (the patches' names)")
    lines = sorted(f"{p}\t{int(y)}" for p, y in zip(rows["path"], rows["label"]))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def training_rows_digest(split_df: pd.DataFrame) -> str:
    """A short digest of which patch rows (``i``, with their labels) train and validate a model:
    part of what a saved model must match to be reused (:mod:`idc_utils.training.reuse`)."""
    h = hashlib.sha256()
    for part in ("train", "val"):
        rows = split_df.loc[split_df["split"] == part, ["i", "label"]].sort_values("i")
        h.update(part.encode() + rows.to_numpy(dtype=np.int64).tobytes())
    return h.hexdigest()[:16]
