"""The diffusion generator: it learns, samples deterministically, resumes, and sees
training patients only."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from generator_helpers import two_kinds

from idc_utils.training import diffusion, generator

TINY = diffusion.GenConfig(image_size=16, widths=(16, 32), batch_size=16, lr=2e-3, seed=3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """150 steps on 64 training patches, 16 validation patches choosing the weights that sample
    (the tests below run in this order: the last one trains on)."""
    images, rows = two_kinds(80)
    train, val = rows.iloc[:64], rows.iloc[64:].assign(split="val")
    out = tmp_path_factory.mktemp("gen")
    gen = generator.train_generator(
        images,
        train,
        TINY,
        out,
        val_rows=val,
        steps=150,
        eval_every=50,
        log=lambda *_: None,
    )
    return images, train, val, out, gen


@pytest.mark.slow
def test_the_loss_falls_and_the_steps_are_recorded(trained):
    _, _, _, out, gen = trained
    assert gen.steps == 150 and gen.history["step"].iloc[-1] == 150
    first, last = gen.history["loss"].iloc[0], gen.history["loss"].iloc[-1]
    assert last < 0.8 * first, gen.history
    assert (out / "generator.json").exists()


@pytest.mark.slow
def test_sampling_is_deterministic_per_seed_with_the_right_shape(trained):
    *_, gen = trained
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
def test_the_sampling_trace_ends_in_the_first_sampled_patch(trained):
    *_, gen = trained
    trace = diffusion.sampling_trace(gen, label=1, seed=7, diffusion_steps=5, guidance=2.0)
    assert [round(t, 2) for t, _, _ in trace] == [1.0, 0.8, 0.6, 0.4, 0.2]
    assert all(x.shape == e.shape == (16, 16, 3) for _, x, e in trace)
    first = gen.sample(3, label=1, seed=7, diffusion_steps=5, guidance=2.0)[0]
    assert np.abs(trace[-1][2].astype(int) - first.astype(int)).max() <= 1


@pytest.mark.slow
def test_validation_patients_choose_the_weights_that_sample(trained):
    images, _, val, out, gen = trained
    h = gen.history.dropna(subset=["val_loss"])
    assert len(h) == 3 and list(h["step"]) == [50, 100, 150]
    # the kept weights are those of the lowest validation error, and sampling uses them
    assert gen.best_step == int(h.loc[h["val_loss"].idxmin(), "step"])
    net = generator.load_generator(out).network
    v = diffusion.validation_loss(
        net,
        diffusion.to_model_range(images[64:], 16),
        val.label.to_numpy().astype("int32"),
        TINY.seed,
    )
    assert v == pytest.approx(h["val_loss"].min(), rel=1e-4)


@pytest.mark.slow
def test_training_resumes_from_its_checkpoint_and_refuses_another_training_set(trained):
    images, rows, _, out, gen = trained
    logs = []
    more = generator.train_generator(images, rows, TINY, out, steps=gen.steps + 5, log=logs.append)
    assert more.steps == gen.steps + 5 and any("resuming at step 150" in m for m in logs)
    assert generator.load_generator(out).steps == more.steps
    with pytest.raises(ValueError, match="another configuration or training set"):
        generator.train_generator(images, rows.iloc[:-8], TINY, out, steps=1)
    # a checkpoint of more steps than asked is not silently used as if it had fewer
    with pytest.raises(ValueError, match="of more than 10 steps"):
        generator.train_generator(images, rows, TINY, out, steps=10)
    # asked to, it starts over instead (the chapter does, when its split changes)
    logs = []
    again = generator.train_generator(
        images, rows.iloc[:-8], TINY, out, steps=2, restart=True, log=logs.append
    )
    assert again.steps == 2 and any("starting over" in m for m in logs)


def test_force_train_starts_over_even_when_the_chapter_asks_to_restart(tmp_path, monkeypatch):
    # make book FORCE=1 sets IDC_FORCE_TRAIN; the chapter passes restart=True: FORCE must win
    images, rows = two_kinds(32)
    quiet = lambda *_: None
    generator.train_generator(images, rows, TINY, tmp_path, steps=2, log=quiet)
    logs = []
    same = generator.train_generator(
        images, rows, TINY, tmp_path, steps=3, restart=True, log=logs.append
    )
    assert same.steps == 3 and any("resuming at step 2" in m for m in logs)
    monkeypatch.setenv("IDC_FORCE_TRAIN", "1")
    logs = []
    again = generator.train_generator(
        images, rows, TINY, tmp_path, steps=1, restart=True, log=logs.append
    )
    assert again.steps == 1 and any("IDC_FORCE_TRAIN is set: starting over" in m for m in logs)


def test_the_generator_never_sees_validation_or_test_patients(tmp_path):
    images, rows = two_kinds(16)
    rows.loc[rows.index[-4:], "split"] = "test"
    with pytest.raises(ValueError, match="train patients only; got rows of \\['test'\\]"):
        generator.train_generator(images, rows, TINY, tmp_path, steps=1)
    train = rows[rows.split == "train"]
    with pytest.raises(ValueError, match="stopping data must be val patients only"):
        generator.train_generator(images, train, TINY, tmp_path, val_rows=train, steps=1)


@pytest.mark.slow
def test_mixed_precision_trains_with_float32_weights(tmp_path):
    import keras

    images, rows = two_kinds(32)
    cfg = diffusion.GenConfig(image_size=16, widths=(16, 32), batch_size=8, mixed_precision=True)
    gen = generator.train_generator(images, rows, cfg, tmp_path, steps=3, log=lambda *_: None)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left as it was
    assert all(w.dtype == "float32" for w in gen.network.weights)
    out = gen.sample(2, label=1, seed=0, diffusion_steps=2)
    assert out.shape == (2, 16, 16, 3) and out.dtype == np.uint8


def test_sizes_round_trip_and_mixed_precision_setting():
    images, _ = two_kinds(2)
    small = diffusion.to_patch_size(images, 32)
    assert small.shape == (2, 32, 32, 3) and small.dtype == np.uint8
    back = diffusion.round_trip(images, 16)
    assert back.shape == images.shape
    # the round trip keeps the colour and loses the detail
    assert abs(back.mean() - images.mean()) < 3 and back.std() < images.std()
    assert diffusion.resolve_mixed_precision(False) is False
    assert diffusion.resolve_mixed_precision("auto") in (True, False)
    with pytest.raises(ValueError, match="true, false or 'auto'"):
        diffusion.resolve_mixed_precision("yes")


def test_the_forward_process_mixes_signal_and_noise_by_the_schedule():
    t = np.linspace(0, 1, 11)
    signal, noise = diffusion.diffusion_rates(t)
    np.testing.assert_allclose(signal**2 + noise**2, 1.0, rtol=1e-6)
    assert signal[0] == pytest.approx(diffusion.MAX_SIGNAL_RATE)
    assert signal[-1] == pytest.approx(diffusion.MIN_SIGNAL_RATE)
    assert np.all(np.diff(signal) < 0)
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    eps = rng.standard_normal(x0.shape).astype(np.float32)
    s, n = diffusion.diffusion_rates(0.5)
    np.testing.assert_allclose(diffusion.add_noise(x0, 0.5, eps), s * x0 + n * eps, rtol=1e-5)
    # a schedule that ends nearer to clean patches: same end at t = 1, less noise at t = 0
    sharp_signal, sharp_noise = diffusion.diffusion_rates(t, 0.999)
    assert sharp_signal[0] == pytest.approx(0.999) and sharp_noise[0] < noise[0] / 5
    assert sharp_signal[-1] == pytest.approx(diffusion.MIN_SIGNAL_RATE)
    s, n = diffusion.diffusion_rates(0.5, 0.999)
    np.testing.assert_allclose(
        diffusion.add_noise(x0, 0.5, eps, 0.999), s * x0 + n * eps, rtol=1e-5
    )


def test_ddim_with_the_true_noise_lands_on_the_clean_patches():
    """A denoiser that knows the clean patches gives back exactly the noise in x_t; DDIM then
    recovers the clean patches, whatever the number of steps, the guidance or the schedule."""
    rng = np.random.default_rng(1)
    x0 = rng.uniform(-0.9, 0.9, (3, 8, 8, 3)).astype(np.float32)

    class Oracle:
        def __init__(self, values):
            self.values = values

        def numpy(self):
            return self.values

    def denoise(noisy, variance, labels, guidance):
        noise_rate = np.sqrt(variance)
        signal = np.sqrt(1 - variance)
        return Oracle((noisy - signal * x0) / noise_rate)

    start = rng.standard_normal(x0.shape).astype(np.float32)
    trace = []
    out = diffusion.ddim_sample(denoise, start, np.ones(3, np.int32), 4, 2.0, trace)
    np.testing.assert_allclose(out, x0, atol=1e-4)
    assert [t for t, _, _ in trace] == [1.0, 0.75, 0.5, 0.25]
    np.testing.assert_array_equal(trace[0][1], start)
    sharp = diffusion.ddim_sample(
        denoise, start, np.ones(3, np.int32), 3, 0.0, max_signal_rate=0.999
    )
    np.testing.assert_allclose(sharp, x0, atol=1e-4)


def test_velocity_and_noise_readings_give_back_the_noise_and_the_patch():
    rng = np.random.default_rng(2)
    x0 = rng.uniform(-1, 1, (3, 8, 8, 3)).astype(np.float32)
    eps = rng.standard_normal(x0.shape).astype(np.float32)
    signal, noise_rate = diffusion.diffusion_rates(np.array([0.1, 0.5, 0.9]).reshape(-1, 1, 1, 1))
    noisy = signal * x0 + noise_rate * eps
    for prediction in diffusion.PREDICTIONS:
        target = diffusion.training_target(x0, eps, signal, noise_rate, prediction)
        got_eps, got_x0 = diffusion.noise_and_patch(target, noisy, signal, noise_rate, prediction)
        np.testing.assert_allclose(got_eps, eps, atol=1e-5)
        np.testing.assert_allclose(got_x0, x0, atol=1e-5)
    # an error of the network moves a velocity network's patch estimate by at most as much; a
    # noise network's is multiplied by noise_rate / signal, large where sampling starts
    err = np.full_like(x0, 0.1)
    outputs = {p: diffusion.training_target(x0, eps, signal, noise_rate, p) for p in ("v", "eps")}
    x0_err = {
        p: np.abs(diffusion.noise_and_patch(o + err, noisy, signal, noise_rate, p)[1] - x0)
        for p, o in outputs.items()
    }
    np.testing.assert_allclose(x0_err["v"].max(axis=(1, 2, 3)), 0.1 * noise_rate.ravel(), 1e-4)
    np.testing.assert_allclose(
        x0_err["eps"].max(axis=(1, 2, 3)), 0.1 * (noise_rate / signal).ravel(), 1e-4
    )
    assert x0_err["eps"][2].max() > 0.5 > 0.1 > x0_err["v"][2].max()  # at t = 0.9
    with pytest.raises(ValueError, match="prediction must be one of"):
        diffusion.GenConfig(prediction="x0")


def test_a_velocity_generator_learns_the_class_colours(tmp_path):
    images, rows = two_kinds(64)
    cfg = diffusion.GenConfig(
        image_size=16, widths=(16, 32), batch_size=16, lr=2e-3, seed=3, prediction="v"
    )
    gen = generator.train_generator(images, rows, cfg, tmp_path, steps=120, log=lambda *_: None)
    neg = gen.sample(8, label=0, seed=1, diffusion_steps=10)
    pos = gen.sample(8, label=1, seed=1, diffusion_steps=10)
    # the training classes: IDC- patches average about 207, IDC+ about 83
    assert pos.mean() < 140 < neg.mean()


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
    images, rows = two_kinds(32)
    quiet = lambda *_: None
    whole = generator.train_generator(images, rows, TINY, tmp_path / "a", steps=8, log=quiet)
    generator.train_generator(images, rows, TINY, tmp_path / "b", steps=5, log=quiet)
    resumed = generator.train_generator(images, rows, TINY, tmp_path / "b", steps=8, log=quiet)
    for a, b in zip(whole.network.get_weights(), resumed.network.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert resumed.steps == 8


def test_annealing_lowers_the_rate_along_a_half_cosine_and_lengthens_the_average():
    cfg = diffusion.GenConfig(lr=1e-3, ema=0.99, anneal_from=100, anneal_steps=50)
    assert diffusion.schedule_at(cfg, 0) == diffusion.schedule_at(cfg, 99) == (1e-3, 0.99)
    assert diffusion.schedule_at(cfg, 100) == (1e-3, 0.999)
    assert diffusion.schedule_at(cfg, 125)[0] == pytest.approx(5e-4)
    assert diffusion.schedule_at(cfg, 150) == diffusion.schedule_at(cfg, 900) == (0.0, 0.999)
    rates = [diffusion.schedule_at(cfg, k)[0] for k in range(100, 151)]
    assert all(a > b for a, b in zip(rates, rates[1:]))
    # without annealing steps, the constant rate and decay throughout
    plain = diffusion.GenConfig(lr=1e-3, ema=0.99, anneal_from=100)
    assert diffusion.schedule_at(plain, 10**6) == (1e-3, 0.99)
    with pytest.raises(ValueError, match="gen_anneal_ema"):
        diffusion.GenConfig(anneal_ema=1.0)


def test_a_checkpoint_continues_into_a_configuration_that_only_anneals_after_it():
    plain = diffusion.GenConfig(image_size=16, widths=(16, 32))
    later = diffusion.GenConfig(image_size=16, widths=(16, 32), anneal_from=10, anneal_steps=5)
    assert diffusion.trains_alike(plain, later, 10) and diffusion.trains_alike(later, later, 12)
    assert not diffusion.trains_alike(plain, later, 11)  # step 10 annealed in one only
    wider = diffusion.GenConfig(image_size=16, widths=(32, 64), anneal_from=10, anneal_steps=5)
    assert not diffusion.trains_alike(plain, wider, 5)
    # widths given as a list are the same configuration as read back from a checkpoint
    listed = diffusion.GenConfig(image_size=16, widths=[16, 32])
    assert diffusion.trains_alike(diffusion.GenConfig.from_dict(listed.to_dict()), listed, 3)


def test_an_annealed_run_continued_from_a_plain_checkpoint_ends_as_one_annealed_throughout(
    tmp_path,
):
    images, rows = two_kinds(32)
    quiet = lambda *_: None
    annealed = replace(TINY, anneal_from=5, anneal_steps=4, anneal_ema=0.9)
    whole = generator.train_generator(images, rows, annealed, tmp_path / "a", steps=9, log=quiet)
    generator.train_generator(images, rows, TINY, tmp_path / "b", steps=5, log=quiet)
    resumed = generator.train_generator(images, rows, annealed, tmp_path / "b", steps=9, log=quiet)
    for a, b in zip(whole.network.get_weights(), resumed.network.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # annealing changed the run: the same steps without it end elsewhere
    plain = generator.train_generator(images, rows, TINY, tmp_path / "c", steps=9, log=quiet)
    assert any(
        not np.allclose(a, b, rtol=1e-4, atol=1e-6)
        for a, b in zip(whole.network.get_weights(), plain.network.get_weights())
    )
    # stopped halfway through annealing, with the same average: it resumes at the rate of its
    # step (restored, then set again) and ends where the uninterrupted run does
    same_ema = replace(TINY, anneal_from=2, anneal_steps=6)
    whole = generator.train_generator(images, rows, same_ema, tmp_path / "d", steps=8, log=quiet)
    generator.train_generator(images, rows, same_ema, tmp_path / "e", steps=5, log=quiet)
    with np.load(tmp_path / "e" / "optimizer.npz") as saved:
        assert np.float32(saved["v1"]) == np.float32(diffusion.schedule_at(same_ema, 4)[0])
    resumed = generator.train_generator(images, rows, same_ema, tmp_path / "e", steps=8, log=quiet)
    for a, b in zip(whole.network.get_weights(), resumed.network.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    plain = generator.train_generator(images, rows, TINY, tmp_path / "f", steps=8, log=quiet)
    assert any(  # the falling rate alone changes the run
        not np.allclose(a, b, rtol=1e-4, atol=1e-6)
        for a, b in zip(whole.network.get_weights(), plain.network.get_weights())
    )
    # and an annealed checkpoint does not continue as a plain run (it trained otherwise)
    with pytest.raises(ValueError, match="another configuration"):
        generator.train_generator(images, rows, TINY, tmp_path / "a", steps=12, log=quiet)


def test_larger_patches_are_sampled_in_smaller_batches_with_the_same_result(monkeypatch):
    cfg = diffusion.GenConfig(image_size=48, widths=(8, 16), prediction="v")
    gen = diffusion.Generator(cfg, diffusion.build_network(cfg), 0, pd.DataFrame(), "-", 0.0)
    batches = []
    ddim = diffusion.ddim_sample

    def counting(denoise, noisy, *args, **kw):
        batches.append(len(noisy))
        return ddim(denoise, noisy, *args, **kw)

    monkeypatch.setattr(diffusion, "ddim_sample", counting)
    default = gen.sample(230, label=1, seed=5, diffusion_steps=2)
    assert batches == [113, 113, 4]  # the pixels of 256 patches of 32 px per batch
    whole = diffusion.sample(gen, 230, 1, 5, diffusion_steps=2, batch_size=230)
    assert batches[-1] == 230
    assert np.abs(default.astype(int) - whole).max() <= 1  # float noise between batch sizes


def test_a_published_generator_loads_only_for_its_configuration_steps_and_patches(tmp_path):
    images, rows = two_kinds(32)
    rows = rows.assign(path=[f"p{k // 8}/{k % 2}/patch_{k}.png" for k in range(len(rows))])
    trained = generator.train_generator(
        images, rows, TINY, tmp_path / "run", steps=4, log=lambda *_: None
    )
    dest = generator.commit_checkpoint(
        tmp_path / "run", rows, tmp_path / "published", command="tools/x.py --steps 4"
    )
    state = json.loads((dest / "generator.json").read_text())
    assert state["command"] == "tools/x.py --steps 4" and state["steps"] == 4
    assert sorted(p.name for p in dest.iterdir()) == ["generator.json", "generator.weights.h5"]
    # the rows in another order are the same patches
    loaded = generator.load_committed(dest, TINY, 4, rows.iloc[::-1])
    a = loaded.sample(2, label=1, seed=5, diffusion_steps=3)
    np.testing.assert_array_equal(a, trained.sample(2, label=1, seed=5, diffusion_steps=3))
    with pytest.raises(ValueError, match="trained on other patches"):
        generator.load_committed(dest, TINY, 4, rows.iloc[:-1])
    with pytest.raises(ValueError, match="steps 4 != 5"):
        generator.load_committed(dest, TINY, 5, rows)
    other = diffusion.GenConfig(**{**TINY.to_dict(), "widths": (16, 24)})
    with pytest.raises(ValueError, match="widths"):
        generator.load_committed(dest, other, 4, rows)
    with pytest.raises(ValueError, match="was not trained on these rows"):
        generator.commit_checkpoint(tmp_path / "run", rows.iloc[:-2], tmp_path / "x", command="")


def test_folding_pixels_into_channels_loses_nothing_and_keeps_the_output_per_pixel():
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype(np.float32)
    folded = np.asarray(diffusion._fold(x, 2))
    assert folded.shape == (2, 4, 4, 12)
    # a 2 x 2 block of pixels becomes one position's channels, in order
    np.testing.assert_array_equal(folded[0, 1, 2], x[0, 2:4, 4:6].reshape(-1))
    np.testing.assert_array_equal(np.asarray(diffusion._unfold(folded, 2)), x)
    cfg = diffusion.GenConfig(image_size=16, widths=(16, 32), patch=2)
    net = diffusion.build_denoiser(cfg)
    assert net.output_shape == (None, 16, 16, 3)
    # the U-Net's first convolution sees 4 x fewer positions with 4 x the channels
    first = next(layer for layer in net.layers if layer.__class__.__name__ == "Conv2D")
    assert first.input.shape[1:] == (8, 8, 12)


def test_a_folded_generator_learns_the_class_colours(tmp_path):
    images, rows = two_kinds(64)
    cfg = diffusion.GenConfig(
        image_size=16, widths=(16, 32), batch_size=16, lr=2e-3, seed=3, prediction="v", patch=2
    )
    gen = generator.train_generator(images, rows, cfg, tmp_path, steps=120, log=lambda *_: None)
    neg = gen.sample(8, label=0, seed=1, diffusion_steps=10)
    pos = gen.sample(8, label=1, seed=1, diffusion_steps=10)
    assert pos.shape == (8, 16, 16, 3)
    assert pos.mean() < 140 < neg.mean()


def test_the_configuration_comes_from_a_profile_and_old_checkpoints_read_unfolded():
    p = {
        "gen_image_size": 24,
        "gen_widths": [8, 16],
        "gen_block_depth": 2,
        "gen_patch": 2,
        "gen_batch_size": 4,
        "gen_prediction": "eps",
        "gen_max_signal_rate": 0.9,
        "gen_anneal_from": 40,
        "gen_anneal_steps": 20,
        "gen_anneal_ema": 0.95,
        "gen_mixed_precision": False,
        "seed": 11,
    }
    expected = diffusion.GenConfig(
        image_size=24,
        widths=(8, 16),
        block_depth=2,
        patch=2,
        batch_size=4,
        prediction="eps",
        max_signal_rate=0.9,
        anneal_from=40,
        anneal_steps=20,
        anneal_ema=0.95,
        mixed_precision=False,
        seed=11,
    )
    assert diffusion.config_from_params(p) == expected
    old = expected.to_dict()
    del old["patch"]  # a checkpoint written before folding existed
    for key in ("anneal_from", "anneal_steps", "anneal_ema"):  # or annealing
        del old[key]
    assert diffusion.GenConfig.from_dict(old).patch == 1
    assert diffusion.GenConfig.from_dict(old).anneal_steps == 0
    with pytest.raises(ValueError, match="must divide by gen_patch"):
        diffusion.config_from_params({**p, "gen_image_size": 26})


@pytest.mark.slow
def test_a_folded_generator_saves_loads_and_computes_in_float16(tmp_path):
    import keras

    images, rows = two_kinds(32)
    cfg = diffusion.GenConfig(
        image_size=16, widths=(16, 32), batch_size=8, patch=2, mixed_precision=True, seed=2
    )
    gen = generator.train_generator(images, rows, cfg, tmp_path, steps=3, log=lambda *_: None)
    assert gen.network.output.dtype == "float32"  # the unfolded output stays float32
    assert keras.config.dtype_policy().name == "float32"
    again = generator.load_generator(tmp_path)  # into a newly built folded network
    np.testing.assert_array_equal(
        again.sample(2, label=1, seed=4, diffusion_steps=2),
        gen.sample(2, label=1, seed=4, diffusion_steps=2),
    )


def test_batches_are_reduced_when_drawn_and_equal_a_reduction_of_the_whole_set():
    images, rows = two_kinds(40)
    rows = rows.iloc[::-1]  # any order of rows: it is kept
    x_all, y_all, _, _ = generator._training_arrays(images, rows, None, TINY)
    # stored as the patches are (uint8, 50 px): the full set would not fit as float32
    assert x_all.dtype == np.uint8 and x_all.shape == (40, 50, 50, 3)
    assert x_all.images is images  # read from the dataset when drawn, never copied whole
    whole = diffusion.to_model_range(images[rows["i"].to_numpy()], TINY.image_size)
    for step in (0, 3):
        x, y, _, _ = generator._batch(x_all, y_all, TINY, step)
        rng = np.random.default_rng([TINY.seed, step])
        idx = rng.integers(0, len(whole), TINY.batch_size)
        expected = np.rot90(whole[idx], k=int(rng.integers(4)), axes=(1, 2))
        if rng.random() < 0.5:
            expected = expected[:, :, ::-1]
        np.testing.assert_array_equal(x, expected)  # the same batch, bit for bit
        assert x.dtype == np.float32 and x.shape == (TINY.batch_size, 16, 16, 3)
