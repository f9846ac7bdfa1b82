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
    # asked to, it starts over instead (the chapter does, when its split changes)
    logs = []
    again = generate.train_generator(
        images, rows.iloc[:-8], TINY, out, max_steps=2, restart=True, log=logs.append
    )
    assert again.steps == 2 and any("starting over" in m for m in logs)


def test_the_generator_never_sees_validation_or_test_patients(tmp_path):
    images, rows = two_kinds(16)
    rows.loc[rows.index[-4:], "split"] = "test"
    with pytest.raises(ValueError, match="train patients only; got rows of \\['test'\\]"):
        generate.train_generator(images, rows, TINY, tmp_path, max_steps=1)
    train = rows[rows.split == "train"]
    with pytest.raises(ValueError, match="stopping data must be val patients only"):
        generate.train_generator(images, train, TINY, tmp_path, val_rows=train, max_steps=1)


@pytest.mark.slow
def test_validation_patients_choose_the_weights_that_sample(tmp_path):
    images, rows = two_kinds(80)
    train, val = rows.iloc[:64], rows.iloc[64:].assign(split="val")
    gen = generate.train_generator(
        images,
        train,
        TINY,
        tmp_path,
        val_rows=val,
        max_steps=100,
        eval_every=25,
        log=lambda *_: None,
    )
    h = gen.history.dropna(subset=["val_loss"])
    assert len(h) == 4 and list(h["step"]) == [25, 50, 75, 100]
    # the kept weights are those of the lowest validation error, and sampling uses them
    assert gen.best_step == int(h.loc[h["val_loss"].idxmin(), "step"])
    net = generate.load_generator(tmp_path).network
    v = generate.validation_loss(
        net,
        generate.to_model_range(images[64:], 16),
        val.label.to_numpy().astype("int32"),
        TINY.seed,
    )
    assert v == pytest.approx(h["val_loss"].min(), rel=1e-4)


@pytest.mark.slow
def test_mixed_precision_trains_with_float32_weights(tmp_path):
    import keras

    images, rows = two_kinds(32)
    cfg = generate.GenConfig(image_size=16, widths=(16, 32), batch_size=8, mixed_precision=True)
    gen = generate.train_generator(images, rows, cfg, tmp_path, max_steps=3, log=lambda *_: None)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left as it was
    assert all(w.dtype == "float32" for w in gen.network.weights)
    out = gen.sample(2, label=1, seed=0, diffusion_steps=2)
    assert out.shape == (2, 16, 16, 3) and out.dtype == np.uint8


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


def test_memorisation_flags_a_copied_training_patch():
    rng = np.random.default_rng(4)
    train_emb, val_emb = rng.normal(size=(200, 12)), rng.normal(size=(50, 12))
    train_px, val_px = rng.normal(size=(200, 4, 4, 3)), rng.normal(size=(50, 4, 4, 3))
    syn_emb = np.vstack([train_emb[17], rng.normal(size=(9, 12))])
    syn_px = np.vstack([train_px[17:18], rng.normal(size=(9, 4, 4, 3))])
    mem = generate.memorisation(syn_emb, syn_px, train_emb, train_px, val_emb, val_px)
    s = mem.summary()
    assert s.loc["embedding", "synthetic closer than 99% of validation patches"] == 0.1
    order, neighbours = mem.closest("pixel", k=1)
    assert order[0] == 0 and neighbours[0] == 17
    assert list(generate.memorisation_reference(200, max_reference=500)) == list(range(200))
    ref = generate.memorisation_reference(200, max_reference=50, seed=1)
    assert len(set(ref)) == 50 and list(ref) == sorted(ref)  # a seeded subset, in order
    np.testing.assert_array_equal(ref, generate.memorisation_reference(200, 50, seed=1))


def test_fidelity_table_has_the_floor_and_the_synthetic_rows():
    rng = np.random.default_rng(5)
    sets = {k: rng.normal(size=(60, 6)) for k in ("train", "val", "train_rt", "val_rt")}
    sets["synthetic"] = rng.normal(size=(60, 6)) + 2.0
    labels = {k: np.arange(60) % 2 for k in sets}
    t = generate.fidelity_table(sets, labels, subset_size=30)
    assert list(t.index) == [name for name, _, _ in generate.FIDELITY_PAIRS]
    floor = t.loc[generate.FIDELITY_PAIRS[0][0], "IDC+ KID x 1000"]
    far = t.loc[generate.FIDELITY_PAIRS[2][0], "IDC+ KID x 1000"]
    assert far > 20 * abs(floor)


def test_label_fidelity_and_synthetic_training_rows():
    t = generate.label_fidelity(np.array([0.9, 0.2, 0.8, 0.1]), [1, 1, 0, 0], threshold=0.5)
    assert t.loc["synthetic IDC+", "called IDC+"] == 0.5
    assert t.loc["synthetic IDC-", "called IDC+"] == 0.5
    images = np.zeros((4, 50, 50, 3), np.uint8)
    split_df = pd.DataFrame(
        {"i": range(4), "label": [0, 1, 0, 1], "patient_id": list("aabb")}
    ).assign(split=["train", "train", "val", "test"])
    syn = np.full((3, 50, 50, 3), 7, np.uint8)
    all_images, all_rows = generate.with_synthetic_rows(images, split_df, syn, [1, 1, 0])
    assert len(all_images) == 7 and (all_images[all_rows.i.iloc[-1]] == 7).all()
    added = all_rows.iloc[4:]
    assert (added.split == "train").all() and (added.patient_id == "synthetic").all()
    assert all_rows.iloc[:4].equals(split_df)
    with pytest.raises(ValueError, match="resize them with generate.to_patch_size"):
        generate.with_synthetic_rows(images, split_df, np.zeros((1, 32, 32, 3), np.uint8), [1])


def test_sizes_round_trip_and_mixed_precision_setting():
    images, _ = two_kinds(2)
    small = generate.to_patch_size(images, 32)
    assert small.shape == (2, 32, 32, 3) and small.dtype == np.uint8
    back = generate.round_trip(images, 16)
    assert back.shape == images.shape
    # the round trip keeps the colour and loses the detail
    assert abs(back.mean() - images.mean()) < 3 and back.std() < images.std()
    assert generate.resolve_mixed_precision(False) is False
    assert generate.resolve_mixed_precision("auto") in (True, False)
    with pytest.raises(ValueError, match="true, false or 'auto'"):
        generate.resolve_mixed_precision("yes")


def test_the_why_sentence_names_only_the_measures_that_speak():
    clean = generate.why_sentence(False, probe_auc=0.6, idc_pos_called=0.95, memorised=0.0)
    assert clean.startswith("Why no gain? A generator trained") and "probe" not in clean
    worst = generate.why_sentence(False, probe_auc=0.99, idc_pos_called=0.4, memorised=0.2)
    assert "AUC 0.99" in worst and "only 40%" in worst and "20% of them" in worst
    helped = generate.why_sentence(True, probe_auc=0.99, idc_pos_called=0.9, memorised=0.0)
    assert helped.startswith("The synthetic patches helped") and "AUC 0.99" in helped
