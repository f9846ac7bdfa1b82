"""The generative model of patches: it learns on tiny data, samples deterministically, resumes
from its checkpoint, trains on training patients only; and the measures that judge it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from idc_utils import generate


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


TINY = generate.GenConfig(image_size=16, widths=(16, 32), batch_size=16, lr=2e-3, seed=3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    images, rows = two_kinds()
    out = tmp_path_factory.mktemp("gen")
    gen = generate.train_generator(
        images, rows, TINY, out, budget_s=600, max_steps=150, log=lambda *_: None
    )
    return images, rows, out, gen


@pytest.mark.slow
def test_the_loss_falls_and_the_steps_are_recorded(trained):
    _, _, out, gen = trained
    assert gen.steps == 150 and gen.history["step"].iloc[-1] == 150
    first, last = gen.history["loss"].iloc[0], gen.history["loss"].iloc[-1]
    assert last < 0.8 * first, gen.history
    assert (out / "generator.json").exists()


@pytest.mark.slow
def test_sampling_is_deterministic_per_seed_with_the_right_shape(trained):
    _, _, _, gen = trained
    a = gen.sample(4, label=1, seed=7, diffusion_steps=5)
    b = gen.sample(4, label=1, seed=7, diffusion_steps=5)
    c = gen.sample(4, label=1, seed=8, diffusion_steps=5)
    assert a.shape == (4, 16, 16, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # the class is heard: IDC+ samples come out darker than IDC- ones
    neg = gen.sample(8, label=0, seed=1, diffusion_steps=10)
    pos = gen.sample(8, label=1, seed=1, diffusion_steps=10)
    assert pos.mean() < neg.mean()


@pytest.mark.slow
def test_training_resumes_from_its_checkpoint_and_refuses_another_training_set(trained):
    images, rows, out, gen = trained
    logs = []
    more = generate.train_generator(
        images, rows, TINY, out, budget_s=600, max_steps=gen.steps + 25, log=logs.append
    )
    assert more.steps == gen.steps + 25 and any("resuming at step 150" in m for m in logs)
    assert generate.load_generator(out).steps == more.steps
    with pytest.raises(ValueError, match="another configuration or training set"):
        generate.train_generator(images, rows.iloc[:-8], TINY, out, max_steps=1)


def test_the_generator_never_sees_validation_or_test_patients(tmp_path):
    images, rows = two_kinds(16)
    rows.loc[rows.index[-4:], "split"] = "test"
    with pytest.raises(ValueError, match="training patients only; got rows of \\['test'\\]"):
        generate.train_generator(images, rows, TINY, tmp_path, max_steps=1)


def test_kid_is_near_zero_for_one_set_and_positive_for_two():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (400, 16))
    same, spread = generate.kid(a[:200], a[200:], subsets=10, subset_size=100)
    other, _ = generate.kid(a, rng.normal(0.7, 1, (400, 16)), subsets=10, subset_size=100)
    assert abs(same) < 3 * spread + 1e-3 and other > 10 * max(abs(same), spread)


def test_nearest_distances_find_a_copied_patch():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(300, 20))
    query = np.vstack([reference[42], rng.normal(size=(3, 20)) + 5])
    dist, where = generate.nearest_distances(query, reference, chunk=64)
    assert dist[0] == pytest.approx(0, abs=1e-3) and where[0] == 42
    assert (dist[1:] > 1).all()


def test_a_probe_tells_apart_shifted_sets_but_not_identical_ones():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(120, 8))
    assert generate.real_vs_synthetic_auc(real, rng.normal(size=(120, 8))) < 0.65
    assert generate.real_vs_synthetic_auc(real, rng.normal(size=(120, 8)) + 1.5) > 0.9
