"""Slide context: a patch's neighbours inform its score, without labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from idc_utils.evaluation import slide_context


def grid_patient(pid="7", rows=12, cols=12, seed=0):
    """A complete patient: an IDC+ disc in the middle; noisy scores that know the region."""
    rng = np.random.default_rng(seed)
    r, c = np.divmod(np.arange(rows * cols), cols)
    label = ((r - rows / 2) ** 2 + (c - cols / 2) ** 2 < (rows / 3) ** 2).astype(int)
    z = 1.2 * (2 * label - 1) + rng.normal(0, 1.6, len(label))
    df = pd.DataFrame({"patient_id": pid, "x": 1 + 50 * c, "y": 1 + 50 * r, "label": label})
    return df, 1 / (1 + np.exp(-z))


def test_an_isolated_patch_keeps_its_probability_exactly():
    df, p = grid_patient()
    lone = pd.DataFrame({"patient_id": ["99", "7"], "x": [1, 10001], "y": [1, 10001]})
    coords = pd.concat([df[["patient_id", "x", "y"]], lone], ignore_index=True)
    probs = np.r_[p, 0.123456789, 0.987654321]
    out = slide_context.smooth(coords, probs, slide_context.ContextModel(1.0, 2.0))
    assert out[-2] == 0.123456789 and out[-1] == 0.987654321  # another patient / far away
    assert not np.allclose(out[: len(p)], p), "patches with neighbours do change"
    assert (
        slide_context.smooth(coords, probs, slide_context.ContextModel(1.0, 0.0)).tolist()
        == probs.tolist()
    )


def test_context_reads_no_label():
    df, p = grid_patient()
    m = slide_context.ContextModel(1.0, 2.0)
    a = slide_context.smooth(df[["patient_id", "x", "y"]], p, m)
    shuffled = df.assign(label=np.random.default_rng(1).permutation(df["label"].to_numpy()))
    np.testing.assert_array_equal(a, slide_context.smooth(shuffled, p, m))


def test_neighbours_pull_a_patch_towards_them_and_are_symmetric():
    coords = pd.DataFrame({"patient_id": "1", "x": [1, 51, 101], "y": [1, 1, 1]})
    out = slide_context.smooth(
        coords, [0.9, 0.2, 0.9], slide_context.ContextModel(1.0, 1.0, radius=1)
    )
    assert out[1] > 0.2 and out[0] < 0.9 and out[0] == pytest.approx(out[2])
    i, j, d = slide_context.neighbours(coords, radius=1)
    assert sorted(zip(i, j)) == [(0, 1), (1, 0), (1, 2), (2, 1)] and set(d) == {1.0}


def test_fit_chooses_context_when_it_helps_and_none_when_there_is_no_neighbour():
    from sklearn.metrics import roc_auc_score

    df, p = grid_patient(seed=2)
    model, table = slide_context.fit(df, p, df["label"])
    assert model.strength > 0 and len(table) == 15
    better = roc_auc_score(df["label"], slide_context.smooth(df, p, model))
    assert better > roc_auc_score(df["label"], p) + 0.02
    sparse = df.iloc[::5].assign(x=lambda t: 1 + 500 * np.arange(len(t)))  # nobody touches
    model, _ = slide_context.fit(sparse, p[::5], sparse["label"])
    assert model.strength == 0 and not slide_context.has_neighbours(sparse).any()
