"""The GAN: the same seed gives the same generator, a resumed run ends where an uninterrupted
one does, it learns the classes' colours, and it sees training patients (of its class) only."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from generator_helpers import gan_params, two_kinds

from idc_utils.data.split import training_rows_digest
from idc_utils.training import adversarial

TINY = adversarial.GanConfig(
    image_size=8, latent=8, gen_widths=(16, 8), critic_widths=(8, 16), batch_size=16, seed=5
)
QUIET = lambda *_: None


def weights_equal(a, b):
    for x, y in zip(a.network.get_weights(), b.network.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """A GAN trained for 8 steps without a break, and its data."""
    images, rows = two_kinds()
    out = tmp_path_factory.mktemp("whole")
    return images, rows, adversarial.train_gan(images, rows, TINY, out, steps=8, log=QUIET)


def test_samples_and_draws_are_the_same_for_the_same_seed(whole):
    gan = whole[2]
    x = gan.sample(5, 1, seed=7)
    assert x.shape == (5, 8, 8, 3) and x.dtype == np.uint8
    np.testing.assert_array_equal(x, gan.sample(5, 1, seed=7))
    assert not np.array_equal(x, gan.sample(5, 1, seed=8))
    # the draws of a step depend on (seed, step) alone
    d1, d2 = adversarial.step_draws(TINY, 3, 64), adversarial.step_draws(TINY, 3, 64)
    np.testing.assert_array_equal(d1["z_gen"], d2["z_gen"])
    assert not np.array_equal(d1["idx"], adversarial.step_draws(TINY, 4, 64)["idx"])
    assert len(gan.history) == 1 and gan.history["step"].iloc[-1] == 8
    # the temperature scales the latent vectors: 1 is the default, 0 one patch for all
    np.testing.assert_array_equal(x, gan.sample(5, 1, seed=7, temperature=1.0))
    flat = gan.sample(5, 1, seed=7, temperature=0.0)
    assert (flat == flat[:1]).all() and not (x == x[:1]).all()


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(whole, tmp_path):
    # both start from the seed: equal weights also say the same seed trains the same GAN
    images, rows, gan = whole
    adversarial.train_gan(images, rows, TINY, tmp_path, steps=5, checkpoint_every=2, log=QUIET)
    logs = []
    resumed = adversarial.train_gan(images, rows, TINY, tmp_path, steps=8, log=logs.append)
    assert any("resuming at step 5" in m for m in logs) and resumed.steps == 8
    weights_equal(gan, resumed)
    loaded = adversarial.load_gan(tmp_path)
    weights_equal(gan, loaded)
    assert loaded.cfg == TINY and loaded.steps == 8
    state = json.loads((tmp_path / "gan.json").read_text())
    assert state["history"][-1]["step"] == 8 and state["trained_on"] == "training patients only"


def test_annealing_lowers_both_rates_along_a_half_cosine_from_its_step():
    cfg = dataclasses.replace(TINY, anneal_from=4, anneal_steps=4)
    rates = [adversarial.learning_rate(cfg, k) for k in range(10)]
    assert rates[:5] == [TINY.lr] * 5
    assert rates[6] == pytest.approx(TINY.lr / 2) and rates[8:] == [0.0, 0.0]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    assert adversarial.learning_rate(TINY, 100) == TINY.lr
    plain, annealed = TINY.to_dict(), cfg.to_dict()
    assert adversarial.trains_alike(plain, annealed, 5)  # steps 0-4 at the full rate
    assert not adversarial.trains_alike(plain, annealed, 6)  # step 5 is annealed in one only
    older = {k: v for k, v in plain.items() if not k.startswith("anneal")}  # before the fields
    assert adversarial.trains_alike(older, plain, 100)
    # a checkpoint from before the restart fields continues as a restarted run, up to its start
    again = dataclasses.replace(cfg, restart_from=8, restart_steps=4)
    pre_restart = {k: v for k, v in annealed.items() if not k.startswith("restart")}
    assert adversarial.trains_alike(pre_restart, again.to_dict(), 8)
    assert not adversarial.trains_alike(pre_restart, again.to_dict(), 9)
    with pytest.raises(ValueError, match="anneal_from and anneal_steps"):
        dataclasses.replace(TINY, anneal_steps=-1)


def test_a_warm_restart_trains_on_from_where_annealing_left_the_rates():
    cfg = dataclasses.replace(TINY, anneal_from=2, anneal_steps=2)
    again = dataclasses.replace(cfg, restart_from=6, restart_steps=4, restart_lr=1e-4)
    rates = [adversarial.learning_rate(again, k) for k in range(12)]
    assert rates[:6] == [adversarial.learning_rate(cfg, k) for k in range(6)]
    assert rates[4:6] == [0.0, 0.0] and rates[6] == 1e-4
    assert rates[8] == pytest.approx(5e-5) and rates[10:] == [0.0, 0.0]
    # the finished run's checkpoint (6 steps) continues as the restarted one, not later
    assert adversarial.trains_alike(cfg.to_dict(), again.to_dict(), 6)
    assert not adversarial.trains_alike(cfg.to_dict(), again.to_dict(), 7)
    with pytest.raises(ValueError, match="at or after its end"):
        dataclasses.replace(cfg, restart_from=3, restart_steps=4)
    with pytest.raises(ValueError, match="must follow annealing"):
        dataclasses.replace(TINY, restart_from=3, restart_steps=4)
    with pytest.raises(ValueError, match="restart_from and restart_steps must be >= 0"):
        dataclasses.replace(cfg, restart_from=6, restart_steps=-5)


def test_warm_restarts_run_back_to_back_and_a_finished_cycle_continues_as_the_next():
    cfg = dataclasses.replace(TINY, anneal_from=2, anneal_steps=2)
    once = dataclasses.replace(cfg, restart_from=4, restart_steps=4)
    twice = dataclasses.replace(cfg, restart_from=4, restart_steps=(4, 2), restart_lr=(1e-4, 5e-5))
    assert twice.restart_cycles == ((4, 4, 1e-4), (8, 2, 5e-5))
    assert twice.schedule_marks() == {"anneal_from": 2, "restarts": [4, 8]}
    assert TINY.schedule_marks() == {"anneal_from": None, "restarts": []}
    rates = [adversarial.learning_rate(twice, k) for k in range(12)]
    assert rates[:8] == [adversarial.learning_rate(once, k) for k in range(8)]
    assert rates[4] == 1e-4 and rates[7] < rates[6] and rates[8] == 5e-5
    assert rates[9] == pytest.approx(2.5e-5) and rates[10:] == [0.0, 0.0]
    # the once-restarted run's checkpoint (8 steps) continues as the twice-restarted one
    assert adversarial.trains_alike(once.to_dict(), twice.to_dict(), 8)
    assert not adversarial.trains_alike(once.to_dict(), twice.to_dict(), 9)
    # one rate serves every cycle; one cycle is stored as a number, several as a list
    same = dataclasses.replace(twice, restart_lr=1e-4)
    assert [c[2] for c in same.restart_cycles] == [1e-4, 1e-4]
    assert dataclasses.replace(cfg, restart_from=4, restart_steps=[4]) == once
    stored = twice.to_dict()
    assert stored["restart_steps"] == [4, 2] and adversarial.GanConfig.from_dict(stored) == twice
    with pytest.raises(ValueError, match="every cycle of several > 0"):
        dataclasses.replace(twice, restart_steps=(4, 0))
    with pytest.raises(ValueError, match="gives 3 rates for 2 warm restarts"):
        dataclasses.replace(twice, restart_lr=(1e-4, 1e-4, 1e-4))
    with pytest.raises(ValueError, match="with a rate > 0"):
        dataclasses.replace(twice, restart_lr=(1e-4, 0.0))
    # numpy values, equal rates and whole floats are stored as plain numbers, one form each
    alike = dataclasses.replace(twice, restart_steps=np.array([4, 2]), restart_lr=(1e-4, 1e-4))
    assert alike == dataclasses.replace(twice, restart_steps=(4.0, 2), restart_lr=1e-4)
    assert alike.restart_lr == 1e-4 and all(type(n) is int for n in alike.restart_steps)
    assert json.loads(json.dumps(alike.to_dict()))["restart_steps"] == [4, 2]
    for bad in ([], 2.5, (4, 2.5)):
        with pytest.raises(ValueError, match="whole number of steps or a list of them"):
            dataclasses.replace(twice, restart_steps=bad)
    # no restart: whatever rates are given, none is used
    assert dataclasses.replace(cfg, restart_lr=(1e-4, 5e-5)).restart_cycles == ()


def test_a_finished_run_restarted_from_its_checkpoint_equals_one_run_with_the_restart(tmp_path):
    images, rows = two_kinds()
    done = dataclasses.replace(TINY, anneal_from=1, anneal_steps=2)
    again = dataclasses.replace(done, restart_from=3, restart_steps=3)
    whole = adversarial.train_gan(images, rows, again, tmp_path / "a", steps=6, log=QUIET)
    adversarial.train_gan(images, rows, done, tmp_path / "b", steps=3, log=QUIET)
    logs = []
    resumed = adversarial.train_gan(images, rows, again, tmp_path / "b", steps=6, log=logs.append)
    assert any("resuming at step 3" in m for m in logs)
    weights_equal(whole, resumed)
    # at rates of 0 from step 3 on only the moving average and the BatchNorm statistics move;
    # the restart trains the weights again, so the two differ
    ended = adversarial.train_gan(images, rows, done, tmp_path / "c", steps=6, log=QUIET)
    moved = [
        not np.allclose(x, y)
        for x, y in zip(whole.network.get_weights(), ended.network.get_weights())
    ]
    assert any(moved)
    # a second restart continues the once-restarted checkpoint as one run with both would
    twice = dataclasses.replace(again, restart_steps=(3, 2))
    both = adversarial.train_gan(images, rows, twice, tmp_path / "d", steps=8, log=QUIET)
    logs = []
    resumed = adversarial.train_gan(images, rows, twice, tmp_path / "b", steps=8, log=logs.append)
    assert any("resuming at step 6" in m for m in logs)
    weights_equal(both, resumed)


def test_an_annealed_run_continues_a_checkpoint_made_before_its_annealing(tmp_path):
    images, rows = two_kinds()
    cfg = dataclasses.replace(TINY, anneal_from=3, anneal_steps=4)
    whole = adversarial.train_gan(images, rows, cfg, tmp_path / "a", steps=6, log=QUIET)
    adversarial.train_gan(images, rows, TINY, tmp_path / "b", steps=3, log=QUIET)
    logs = []
    resumed = adversarial.train_gan(images, rows, cfg, tmp_path / "b", steps=6, log=logs.append)
    assert any("resuming at step 3" in m for m in logs)
    weights_equal(whole, resumed)
    assert adversarial.load_gan(tmp_path / "b").cfg == cfg
    plain = adversarial.train_gan(images, rows, TINY, tmp_path / "c", steps=6, log=QUIET)
    differs = [
        not np.allclose(x, y)
        for x, y in zip(whole.network.get_weights(), plain.network.get_weights())
    ]
    assert any(differs)  # the lower rates of steps 4-6 changed the weights


def test_another_configuration_or_training_set_is_refused_unless_restarting(tmp_path):
    images, rows = two_kinds()
    adversarial.train_gan(images, rows, TINY, tmp_path, steps=2, log=QUIET)
    with pytest.raises(ValueError, match="another configuration or training set"):
        adversarial.train_gan(images, rows.iloc[:-8], TINY, tmp_path, steps=2, log=QUIET)
    with pytest.raises(ValueError, match="of more than 1 steps"):
        adversarial.train_gan(images, rows, TINY, tmp_path, steps=1, log=QUIET)
    logs = []
    again = adversarial.train_gan(
        images, rows.iloc[:-8], TINY, tmp_path, steps=1, restart=True, log=logs.append
    )
    assert again.steps == 1 and any("starting over" in m for m in logs)
    with pytest.raises(FileNotFoundError, match="no GAN in"):
        adversarial.load_gan(tmp_path / "nothing")


def test_it_sees_training_patients_only_and_one_class_when_asked(tmp_path):
    images, rows = two_kinds()
    mixed = rows.assign(split=["train"] * 60 + ["val"] * 4)
    with pytest.raises(ValueError, match=r"training patients only; got rows of \['val'\]"):
        adversarial.train_gan(images, mixed, TINY, tmp_path, steps=1, log=QUIET)
    with pytest.raises(ValueError, match="needs patches of both classes"):
        adversarial.train_gan(images, rows[rows.label == 0], TINY, tmp_path, steps=1, log=QUIET)
    only_pos = adversarial.GanConfig(**{**TINY.to_dict(), "label": 1})
    with pytest.raises(ValueError, match="no training patches of class 1"):
        adversarial.train_gan(images, rows[rows.label == 0], only_pos, tmp_path, steps=1)
    gan = adversarial.train_gan(images, rows, only_pos, tmp_path / "pos", steps=1, log=QUIET)
    # its digest is of the IDC+ rows: the IDC- ones were never its training set
    pos_rows = rows[rows.label == 1].assign(split="train")
    assert gan.training_rows_digest == training_rows_digest(pos_rows)
    assert gan.training_rows_digest != training_rows_digest(rows)
    with pytest.raises(ValueError, match="trained on class 1 only"):
        gan.sample(2, 0, seed=0)
    with pytest.raises(ValueError, match="label must be 0, 1 or None"):
        adversarial.GanConfig(label=2)
    with pytest.raises(ValueError, match="image_size 30"):
        adversarial.GanConfig(image_size=30)


def test_the_augmentation_moves_colour_and_place_and_keeps_the_size():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
    none = {
        "brightness": np.zeros((4, 1, 1, 1), np.float32),
        "saturation": np.ones((4, 1, 1, 1), np.float32),
        "contrast": np.ones((4, 1, 1, 1), np.float32),
        "shift": np.full((4, 2), 2, np.int32),  # the padding: no translation
    }
    np.testing.assert_allclose(np.asarray(adversarial.diff_augment(x, none)), x, atol=1e-6)
    moved = {**none, "shift": np.zeros((4, 2), np.int32)}  # 2 px down and right
    out = np.asarray(adversarial.diff_augment(x, moved))
    np.testing.assert_allclose(out[:, 2:, 2:], x[:, :-2, :-2], atol=1e-6)
    assert (out[:, :2] == 0).all()
    draws = adversarial.augmentation_draws(rng, 4, 16)
    assert draws["shift"].min() >= 0 and draws["shift"].max() <= 4


@pytest.mark.slow
def test_it_learns_the_class_colours(tmp_path):
    images, rows = two_kinds(128)
    cfg = adversarial.GanConfig(**{**TINY.to_dict(), "lr": 2e-3})
    gan = adversarial.train_gan(images, rows, cfg, tmp_path, steps=300, log=QUIET)
    neg, pos = gan.sample(64, 0, seed=1), gan.sample(64, 1, seed=1)
    # the training classes: IDC- patches average about 207, IDC+ about 83
    assert pos.mean() < 140 < neg.mean()


def test_a_published_gan_loads_only_for_its_configuration_steps_and_patches(whole, tmp_path):
    images, rows, gan = whole
    rows = rows.assign(path=[f"p{k // 8}/{k % 2}/patch_{k}.png" for k in range(len(rows))])
    made = tmp_path / "made"
    adversarial.train_gan(images, rows, TINY, made, steps=8, log=QUIET)
    dest = adversarial.commit_gan(made, rows, tmp_path / "pub", command="tools/x.py --steps 8")
    # only what samples travels: not the critic, the raw generator or the optimizers; and the
    # reference patches another machine checks its sampling against
    names = ["ema.weights.h5", "gan.json", "reference_patches.npz"]
    assert sorted(p.name for p in dest.iterdir()) == names
    drift = adversarial.drift_from_reference(dest)
    assert drift == {"max_grey_levels": 0, "share_differing": 0.0, "drawn_on": ""}
    with np.load(dest / "reference_patches.npz") as saved:  # both classes, 16 each
        assert saved["patches"].shape == (2, 16, TINY.image_size, TINY.image_size, 3)
        tampered = {"patches": saved["patches"] ^ 8, "machine": "elsewhere"}
    np.savez_compressed(dest / "reference_patches.npz", **tampered)
    moved = adversarial.drift_from_reference(dest)
    assert moved["max_grey_levels"] == 8 and moved["drawn_on"] == "elsewhere"
    (dest / "reference_patches.npz").unlink()
    with pytest.raises(FileNotFoundError, match="commit_gan"):
        adversarial.drift_from_reference(dest)
    state = json.loads((dest / "gan.json").read_text())
    assert state["command"] == "tools/x.py --steps 8" and state["steps"] == 8
    # the rows in another order are the same patches, and it samples as the trained one
    loaded = adversarial.load_committed_gan(dest, TINY, 8, rows.iloc[::-1])
    np.testing.assert_array_equal(loaded.sample(4, 1, seed=3), gan.sample(4, 1, seed=3))
    with pytest.raises(ValueError, match="trained on other patches"):
        adversarial.load_committed_gan(dest, TINY, 8, rows.iloc[:-1])
    with pytest.raises(ValueError, match="steps 8 != 9"):
        adversarial.load_committed_gan(dest, TINY, 9, rows)
    other = dataclasses.replace(TINY, gen_widths=(8, 8))
    with pytest.raises(ValueError, match="gen_widths"):
        adversarial.load_committed_gan(dest, other, 8, rows)
    with pytest.raises(FileNotFoundError, match="no published GAN"):
        adversarial.load_committed_gan(tmp_path / "nothing", TINY, 8, rows)
    with pytest.raises(ValueError, match="was not trained on these rows"):
        adversarial.commit_gan(made, rows.iloc[:-2], tmp_path / "x", command="")


def test_the_configuration_comes_from_a_profiles_parameters():
    p = gan_params(
        gen_image_size=16, gan_widths=[32, 16], gan_anneal_from=3, gan_anneal_steps=4, seed=9
    )
    cfg = adversarial.config_from_params(p)
    assert (cfg.image_size, cfg.gen_widths, cfg.seed) == (16, (32, 16), 9)
    assert (cfg.anneal_from, cfg.anneal_steps, cfg.label) == (3, 4, None)
    assert (cfg.restart_from, cfg.restart_steps) == (0, 0)
    again = adversarial.config_from_params({**p, "gan_restart_from": 8, "gan_restart_steps": 5})
    assert (again.restart_from, again.restart_steps, again.restart_lr) == (8, 5, 1e-4)
    twice = adversarial.config_from_params(
        {**p, "gan_restart_from": 8, "gan_restart_steps": [5, 2]}
    )
    assert twice.restart_cycles == ((8, 5, 1e-4), (13, 2, 1e-4))
