"""The patient-level split and the checks that keep it honest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from study_helpers import three_way_split

from idc_utils.data import dataset, split


def synthetic_manifest(n_patients=60, seed=0):
    """Patients of very different sizes and IDC+ shares (as in the real set)."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        n = int(rng.integers(20, 400))
        share = float(rng.choice([0.0, 0.05, 0.2, 0.4, 0.7, 0.9]))
        labels = (rng.random(n) < share).astype(int)
        for k, lab in enumerate(labels):
            rows.append(
                (
                    f"{1000 + p}/{lab}/x{k}.png",
                    str(1000 + p),
                    1 + 50 * (k % 20),
                    1 + 50 * (k // 20),
                    lab,
                )
            )
    return pd.DataFrame(rows, columns=["path", "patient_id", "x", "y", "label"])


def test_train_subset_keeps_whole_training_patients_nested_and_leaves_val_test_alone():
    df = three_way_split()
    quarter = split.train_subset(df, 0.25, seed=5)
    half = split.train_subset(df, 0.5, seed=5)
    pats = {f: set(s[s.split == "train"].patient_id) for f, s in (("q", quarter), ("h", half))}
    assert len(pats["q"]) == 6 and len(pats["h"]) == 12
    assert pats["q"] < pats["h"], "a smaller share is inside every larger one of the same seed"
    for sub in (quarter, half):
        kept = sub[sub.split == "train"]
        whole = df[df.patient_id.isin(kept.patient_id)]
        assert len(kept) == len(whole), "a kept patient keeps all of its patches"
        for part in ("val", "test"):
            pd.testing.assert_frame_equal(sub[sub.split == part], df[df.split == part])
    other = split.train_subset(df, 0.25, seed=6)
    assert set(other[other.split == "train"].patient_id) != pats["q"], "the seed draws patients"
    assert len(split.train_subset(df, 1.0, seed=5)) == len(df)
    with pytest.raises(ValueError, match="fraction"):
        split.train_subset(df, 0.0)


def test_no_patient_crosses_splits():
    m = synthetic_manifest()
    df = split.assign_split(m, 0.15, 0.15, seed=3)
    assert (df.groupby("patient_id")["split"].nunique() == 1).all()
    assert set(df["split"]) == {"train", "val", "test"}
    assert len(df) == len(m), "every patch gets a split"


def test_same_seed_same_split_other_seed_other_split():
    m = synthetic_manifest()
    a = split.split_patients(m, seed=11)
    b = split.split_patients(m.sample(frac=1, random_state=5), seed=11)  # row order must not matter
    pd.testing.assert_series_equal(a, b)
    c = split.split_patients(m, seed=12)
    assert not a.equals(c)


def test_split_keeps_patch_shares_and_positive_share():
    m = synthetic_manifest(120)
    df = split.assign_split(m, 0.15, 0.15, seed=0)
    overall = m["label"].mean()
    for s, part in df.groupby("split"):
        share = len(part) / len(df)
        target = {"train": 0.7, "val": 0.15, "test": 0.15}[s]
        assert abs(share - target) < 0.05, (s, share)
        assert abs(part["label"].mean() - overall) < 0.08, (s, part["label"].mean(), overall)


def test_holdout_patients_are_outside_every_split():
    m = synthetic_manifest()
    df = split.assign_split(m, 0.15, 0.15, seed=0, holdout=["1003", "1007"])
    assert set(df.loc[df["patient_id"].isin(["1003", "1007"]), "split"]) == {"holdout"}
    assert set(df.loc[~df["patient_id"].isin(["1003", "1007"]), "split"]) == {
        "train",
        "val",
        "test",
    }
    split.check_no_leakage(df)
    assert "holdout" in split.split_summary(df).index


def test_check_no_leakage_names_the_leaking_patients():
    m = synthetic_manifest(10)
    df = split.assign_split(m, 0.2, 0.2, seed=0)
    pid = df["patient_id"].iloc[0]
    first = df.index[df["patient_id"] == pid][0]
    df.loc[first, "split"] = "test" if df.loc[first, "split"] != "test" else "train"
    with pytest.raises(split.LeakageError, match=pid):
        split.check_no_leakage(df)


def test_too_few_patients_is_a_clear_error():
    m = synthetic_manifest(2)
    with pytest.raises(ValueError, match="at least one patient per split"):
        split.split_patients(m, 0.15, 0.15)
    with pytest.raises(ValueError, match="sum < 1"):
        split.split_patients(synthetic_manifest(10), 0.6, 0.5)


def test_every_split_gets_a_patient_even_when_small():
    m = synthetic_manifest(3)
    s = split.split_patients(m, 0.05, 0.05, seed=0)
    assert set(s) == {"train", "val", "test"}


def test_save_and_load_split_roundtrip(tmp_path):
    m = synthetic_manifest()
    df = split.assign_split(m, seed=0)
    path = split.save_split(df, tmp_path / "run" / "split.csv")
    back = split.load_split(path)
    assert list(back.columns) == split.SPLIT_COLUMNS
    pd.testing.assert_frame_equal(back, df[split.SPLIT_COLUMNS].reset_index(drop=True))
    with pytest.raises(FileNotFoundError, match="run chapter 01"):
        split.load_split(tmp_path / "missing.csv")
    back.drop(columns="label").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="lacks columns"):
        split.load_split(tmp_path / "bad.csv")


def test_attach_split_refuses_a_split_from_other_data():
    m = synthetic_manifest(10)
    df = split.assign_split(m, seed=0)
    with pytest.raises(ValueError, match="not in the dataset"):
        split.attach_split(m.iloc[:-3], df)
    joined = split.attach_split(m, df)
    assert len(joined) == len(m)


def test_real_sample_split_has_no_leakage(shared_sample):

    ds = dataset.load_dataset(shared_sample)
    df = split.assign_split(ds.manifest, 0.15, 0.15, seed=1337, holdout=["14082"])
    split.check_no_leakage(df)
    summ = split.split_summary(df)
    for s in ("train", "val", "test"):
        assert 0.2 < summ.loc[s, "IDC+ share"] < 0.36


def test_patch_split_leak_shows_shared_patients():
    m = synthetic_manifest(30)
    leak = split.patch_split_leak(m, 0.2, seed=0)
    assert leak["of them also in the training part"] > 0.8 * leak["patients in the test part"]
    assert leak["test patches whose patient is in training"] > 0
