"""Judging synthetic patches: KID, memorisation, the real-vs-synthetic probe."""

from __future__ import annotations

import numpy as np
import pytest

from idc_utils.evaluation import synthetic_quality


def test_kid_is_near_zero_for_one_set_and_positive_for_two():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (400, 16))
    same, spread = synthetic_quality.kid(a[:200], a[200:], subsets=10, subset_size=100)
    other, _ = synthetic_quality.kid(a, rng.normal(0.7, 1, (400, 16)), subsets=10, subset_size=100)
    assert abs(same) < 3 * spread + 1e-3 and other > 10 * max(abs(same), spread)


def test_nearest_distances_find_a_copied_patch():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(300, 20))
    query = np.vstack([reference[42], rng.normal(size=(3, 20)) + 5])
    dist, where = synthetic_quality.nearest_distances(query, reference, chunk=64)
    assert dist[0] == pytest.approx(0, abs=1e-3) and where[0] == 42
    assert (dist[1:] > 1).all()


def test_a_probe_tells_apart_shifted_sets_but_not_identical_ones():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(120, 8))
    assert synthetic_quality.real_vs_synthetic_auc(real, rng.normal(size=(120, 8))) < 0.65
    assert synthetic_quality.real_vs_synthetic_auc(real, rng.normal(size=(120, 8)) + 1.5) > 0.9


def test_memorisation_flags_a_copied_training_patch():
    rng = np.random.default_rng(4)
    train_emb, val_emb = rng.normal(size=(200, 12)), rng.normal(size=(50, 12))
    train_px, val_px = rng.normal(size=(200, 4, 4, 3)), rng.normal(size=(50, 4, 4, 3))
    syn_emb = np.vstack([train_emb[17], rng.normal(size=(9, 12))])
    syn_px = np.vstack([train_px[17:18], rng.normal(size=(9, 4, 4, 3))])
    mem = synthetic_quality.memorisation(syn_emb, syn_px, train_emb, train_px, val_emb, val_px)
    s = mem.summary()
    assert s.loc["embedding", "synthetic closer than 99% of validation patches"] == 0.1
    order, neighbours = mem.closest("pixel", k=1)
    assert order[0] == 0 and neighbours[0] == 17
    assert list(synthetic_quality.memorisation_reference(200, max_reference=500)) == list(
        range(200)
    )
    ref = synthetic_quality.memorisation_reference(200, max_reference=50, seed=1)
    assert len(set(ref)) == 50 and list(ref) == sorted(ref)  # a seeded subset, in order
    np.testing.assert_array_equal(ref, synthetic_quality.memorisation_reference(200, 50, seed=1))


def test_fidelity_table_has_the_floor_and_the_synthetic_rows():
    rng = np.random.default_rng(5)
    sets = {k: rng.normal(size=(60, 6)) for k in ("train", "val", "train_rt", "val_rt")}
    sets["synthetic"] = rng.normal(size=(60, 6)) + 2.0
    labels = {k: np.arange(60) % 2 for k in sets}
    t = synthetic_quality.fidelity_table(sets, labels, subset_size=30)
    assert list(t.index) == [name for name, _, _ in synthetic_quality.FIDELITY_PAIRS]
    floor = t.loc[synthetic_quality.FIDELITY_PAIRS[0][0], "IDC+ KID x 1000"]
    far = t.loc[synthetic_quality.FIDELITY_PAIRS[2][0], "IDC+ KID x 1000"]
    assert far > 20 * abs(floor)
