"""An adversarial generator (a GAN) of tissue patches, trained on training patients only, by a
fixed number of steps, with checkpoints that resume to the same weights.

The generator upsamples a latent vector by convolutions, with BatchNorm whose scale and shift
depend on the class (conditional BatchNorm). The critic has spectral normalisation, sum pooling
and a class projection (Miyato & Koyama 2018) and learns by the hinge loss. Both see real and
synthetic patches through the same differentiable augmentation (colour and translation, Zhao et
al. 2020), so that the critic cannot memorise a few thousand patches; real patches are also
turned and flipped (true symmetries of tissue). A moving average of the generator's weights
samples.

``GanConfig.label`` trains on one class only (a GAN per class: the class cannot leak into the
other's patches, as it can through a shared network); ``None`` trains one class-conditional GAN.

Every random draw of step k (the batch, its turn and flip, the latent vectors, the
augmentation) comes from ``(seed, k)`` alone, so the same seed gives the same generator on every
machine, up to floating-point differences, and a resumed run ends where an uninterrupted one
does. ``tools/gan_probe.py`` trains and judges it on the book's split.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from idc_utils.data.split import training_rows_digest
from idc_utils.training.diffusion import cosine_annealed, to_model_range, to_uint8
from idc_utils.training.published import check_fits


@dataclass(frozen=True)
class GanConfig:
    """What makes one GAN: sizes, widths, batch, learning rate, the class(es) and the seed."""

    image_size: int = 32
    latent: int = 128
    gen_widths: tuple = (128, 64, 32)  # one upsampling block each: 4 -> 8 -> 16 -> 32 px
    critic_widths: tuple = (32, 64, 128, 256)  # the first keeps the size, the rest halve it
    batch_size: int = 32
    lr: float = 2e-4
    ema_max_decay: float = 0.999
    label: int | None = None  # one class only (0 or 1), or None: both, conditionally
    seed: int = 42
    # annealing: from step anneal_from on, both learning rates fall to 0 along a half cosine
    # over anneal_steps steps (0: a constant rate throughout), as the diffusion generator's do
    anneal_from: int = 0
    anneal_steps: int = 0
    # warm restarts (0: none): from step restart_from on (at or after the end of annealing),
    # both rates jump back to restart_lr and fall to 0 again along a half cosine over
    # restart_steps steps; a finished GAN trains on from where annealing left it. Several
    # cycles, back to back: restart_steps a sequence of lengths, and restart_lr one rate for
    # all of them or one each (warm restarts, Loshchilov & Hutter 2017)
    restart_from: int = 0
    restart_steps: int | tuple = 0
    restart_lr: float | tuple = 1e-4

    def __post_init__(self):
        start = self.image_size / 2 ** len(self.gen_widths)
        if start != int(start) or start < 1:
            raise ValueError(
                f"image_size {self.image_size} is not the generator's start size times "
                f"2**{len(self.gen_widths)} (one doubling per width); change gen_widths"
            )
        if self.anneal_from < 0 or self.anneal_steps < 0:
            raise ValueError(
                f"anneal_from and anneal_steps must be >= 0, not {self.anneal_from}, "
                f"{self.anneal_steps}"
            )
        steps = _whole_steps(self.restart_steps)
        lrs = tuple(float(r) for r in _one_or_many(self.restart_lr))
        if self.restart_from < 0 or min(steps) < 0 or (len(steps) > 1 and min(steps) == 0):
            raise ValueError(
                f"restart_from and restart_steps must be >= 0 (every cycle of several > 0), "
                f"not {self.restart_from}, {self.restart_steps}"
            )
        if not lrs or (steps != (0,) and len(lrs) not in (1, len(steps))):
            raise ValueError(
                f"restart_lr gives {len(lrs)} rates for {len(steps)} warm restarts: give one "
                "rate for all, or one each"
            )
        if len(set(lrs)) == 1:
            lrs = lrs[:1]  # one rate for every cycle, however it was given
        # one value is stored as a number, several as a tuple: the same settings, one form
        object.__setattr__(self, "restart_steps", steps[0] if len(steps) == 1 else steps)
        object.__setattr__(self, "restart_lr", lrs[0] if len(lrs) == 1 else lrs)
        if self.restart_steps and (
            not self.anneal_steps
            or self.restart_from < self.anneal_from + self.anneal_steps
            or min(lrs) <= 0
        ):
            raise ValueError(
                f"a warm restart at step {self.restart_from} must follow annealing, at or after "
                f"its end (step {self.anneal_from + self.anneal_steps}), with a rate > 0; "
                "without one, set restart_steps to 0"
            )
        if self.label not in (None, 0, 1):
            raise ValueError(f"label must be 0, 1 or None (both classes), not {self.label!r}")
        object.__setattr__(self, "gen_widths", tuple(self.gen_widths))
        object.__setattr__(self, "critic_widths", tuple(self.critic_widths))

    @property
    def restart_cycles(self) -> tuple:
        """The warm restarts, in order: ``(first step, steps, rate)`` each (none: empty)."""
        steps = _one_or_many(self.restart_steps)
        if steps == (0,):
            return ()
        lrs = _one_or_many(self.restart_lr)
        lrs = lrs * len(steps) if len(lrs) == 1 else lrs
        starts = self.restart_from + np.cumsum((0, *steps[:-1]))
        return tuple((int(a), n, lr) for a, n, lr in zip(starts, steps, lrs))

    def schedule_marks(self) -> dict:
        """Where a plot of the training marks the schedule: the step annealing begins (None
        without annealing) and the steps the warm restarts begin."""
        return {
            "anneal_from": self.anneal_from if self.anneal_steps else None,
            "restarts": [start for start, _, _ in self.restart_cycles],
        }

    @property
    def classes(self) -> tuple:
        """The classes this GAN draws: both, or its one class."""
        return (0, 1) if self.label is None else (self.label,)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> GanConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def _one_or_many(value) -> tuple:
    """A setting given as one value or a sequence of them (a list, tuple or array), as a
    tuple."""
    return tuple(np.ravel(value).tolist()) if np.ndim(value) else (value,)


def _whole_steps(value) -> tuple:
    """``restart_steps`` as a tuple of whole numbers (plain ints, so that it stores as JSON),
    or a ``ValueError`` that says what is wrong."""
    steps = _one_or_many(value)
    if not steps or any(float(n) != int(n) for n in steps):
        raise ValueError(
            f"restart_steps must be a whole number of steps or a list of them, not {value!r}"
        )
    return tuple(int(n) for n in steps)


def config_from_params(p) -> GanConfig:
    """The GAN's configuration from a profile's parameters (a dict, or a chapter's parameters
    with ``as_dict()``): ``gen_image_size`` (the diffusion generator's size: both are judged
    after the same round trip), ``gan_widths``, ``gan_anneal_from``, ``gan_anneal_steps``,
    ``gan_restart_from``, ``gan_restart_steps``, ``gan_restart_lr`` and ``seed``; the rest are
    :class:`GanConfig`'s defaults. The chapter and
    ``tools/gan_probe.py`` both build it here, so that a published GAN fits the chapter."""
    p = p.as_dict() if hasattr(p, "as_dict") else p
    return GanConfig(
        image_size=p["gen_image_size"],
        gen_widths=tuple(p["gan_widths"]),
        anneal_from=p["gan_anneal_from"],
        anneal_steps=p["gan_anneal_steps"],
        restart_from=p["gan_restart_from"],
        restart_steps=p["gan_restart_steps"],
        restart_lr=p["gan_restart_lr"],
        seed=p["seed"],
    )


def build_generator(cfg: GanConfig):
    """(latent vectors, classes) -> patches in [-1, 1] of ``cfg.image_size`` pixels."""
    import keras
    from keras import layers

    z = keras.Input((cfg.latent,))
    y = keras.Input((), dtype="int32")
    h = layers.Concatenate()([z, layers.Embedding(2, cfg.latent)(y)])
    start = cfg.image_size // 2 ** len(cfg.gen_widths)
    h = layers.Dense(start * start * cfg.gen_widths[0])(h)
    h = layers.Reshape((start, start, cfg.gen_widths[0]))(h)
    for w in cfg.gen_widths:
        h = layers.UpSampling2D(2)(h)
        h = layers.Conv2D(w, 3, padding="same")(h)
        h = layers.BatchNormalization(center=False, scale=False)(h)
        # conditional BatchNorm: each class scales and shifts every channel its own way
        gain = layers.Reshape((1, 1, w))(layers.Embedding(2, w, embeddings_initializer="zeros")(y))
        bias = layers.Reshape((1, 1, w))(layers.Embedding(2, w, embeddings_initializer="zeros")(y))
        h = layers.Lambda(lambda t: t[0] * (1 + t[1]) + t[2])([h, gain, bias])
        h = layers.ReLU()(h)
    out = layers.Conv2D(3, 3, padding="same", activation="tanh")(h)
    return keras.Model([z, y], out, name="gan_generator")


def build_critic(cfg: GanConfig):
    """(patches, classes) -> a score per patch: high for real, low for synthetic."""
    import keras
    import tensorflow as tf
    from keras import layers

    x = keras.Input((cfg.image_size, cfg.image_size, 3))
    y = keras.Input((), dtype="int32")
    h = x
    for k, w in enumerate(cfg.critic_widths):
        stride = 1 if k == 0 else 2
        conv = layers.Conv2D(w, 3 if stride == 1 else 4, stride, padding="same")
        h = layers.LeakyReLU(0.1)(layers.SpectralNormalization(conv)(h))
    phi = layers.Lambda(lambda t: tf.reduce_sum(t, [1, 2]))(h)  # sum pooling
    out = layers.SpectralNormalization(layers.Dense(1))(phi)
    proj = layers.Dot(1)([layers.Embedding(2, cfg.critic_widths[-1])(y), phi])
    return keras.Model([x, y], layers.Add()([out, proj]), name="gan_critic")


def augmentation_draws(rng: np.random.Generator, n: int, size: int) -> dict:
    """One patch-wise draw of the differentiable augmentation: brightness, saturation and
    contrast factors, and a translation by up to ``size // 8`` pixels each way."""
    pad = size // 8
    return {
        "brightness": (rng.random((n, 1, 1, 1)) - 0.5).astype(np.float32),
        "saturation": (2 * rng.random((n, 1, 1, 1))).astype(np.float32),
        "contrast": (0.5 + rng.random((n, 1, 1, 1))).astype(np.float32),
        "shift": rng.integers(0, 2 * pad + 1, (n, 2)).astype(np.int32),
    }


def diff_augment(x, draws: dict):
    """``x`` augmented by ``draws`` (:func:`augmentation_draws`); differentiable in ``x``, so
    the generator learns through it."""
    import tensorflow as tf

    size = x.shape[1]
    pad = size // 8
    x = x + draws["brightness"]
    mean = tf.reduce_mean(x, 3, keepdims=True)
    x = (x - mean) * draws["saturation"] + mean
    mean = tf.reduce_mean(x, [1, 2, 3], keepdims=True)
    x = (x - mean) * draws["contrast"] + mean
    padded = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    rows = draws["shift"][:, :1] + tf.range(size)[None]
    cols = draws["shift"][:, 1:] + tf.range(size)[None]
    x = tf.gather(padded, rows, batch_dims=1)
    return tf.gather(x, cols, axis=2, batch_dims=1)


def step_draws(cfg: GanConfig, step: int, n_train: int) -> dict:
    """Every random draw of step ``step``, from ``(cfg.seed, step)`` alone: the batch and its
    quarter turn and flip, two sets of latent vectors (the critic's step, the generator's) and
    three of augmentation (real and synthetic for the critic, synthetic for the generator)."""
    rng = np.random.default_rng([cfg.seed, step])
    n = cfg.batch_size
    return {
        "idx": rng.integers(0, n_train, n),
        "turn": int(rng.integers(4)),
        "flip": bool(rng.random() < 0.5),
        "z_critic": rng.standard_normal((n, cfg.latent)).astype(np.float32),
        "z_gen": rng.standard_normal((n, cfg.latent)).astype(np.float32),
        "aug": [augmentation_draws(rng, n, cfg.image_size) for _ in range(3)],
    }


def learning_rate(cfg: GanConfig, step: int) -> float:
    """Both networks' learning rate at step ``step`` (counted from 0): ``cfg.lr`` until
    annealing begins, then falling along a half cosine to 0 at ``anneal_from + anneal_steps``;
    with warm restarts, each cycle's rate at its first step, falling to 0 again by its end."""
    for start, length, lr in reversed(cfg.restart_cycles):
        if step >= start:
            return cosine_annealed(lr, step, start, length)
    return cosine_annealed(cfg.lr, step, cfg.anneal_from, cfg.anneal_steps)


_SCHEDULE = ("anneal_from", "anneal_steps", "restart_from", "restart_steps", "restart_lr")


def trains_alike(a: dict, b: dict, steps: int) -> bool:
    """Whether configurations ``a`` and ``b`` (as dicts) make the same first ``steps`` steps:
    equal but for their learning-rate schedules, which agree on every one of those steps (a
    checkpoint of ``steps`` steps of one then continues as the other)."""
    a, b = GanConfig.from_dict(a), GanConfig.from_dict(b)

    def plain(c):
        return {k: v for k, v in c.to_dict().items() if k not in _SCHEDULE}

    if plain(a) != plain(b):
        return False
    return all(learning_rate(a, s) == learning_rate(b, s) for s in range(steps))


def ema_decay(cfg: GanConfig, step: int) -> float:
    """The moving average's decay at ``step`` (counted from 1): short while the generator
    changes fast, ``cfg.ema_max_decay`` later."""
    return min(cfg.ema_max_decay, (1 + step) / (10 + step))


def _train_step_fn(gen, critic, ema, optimizers):
    """One compiled step: the critic's hinge loss on real and synthetic patches, then the
    generator's, then the moving average (BatchNorm's statistics are copied)."""
    import tensorflow as tf

    opt_c, opt_g = optimizers

    @tf.function
    def step(real, labels, z_critic, z_gen, aug, decay):
        with tf.GradientTape() as tape:
            fake = gen([z_critic, labels], training=True)
            on_real = critic([diff_augment(real, aug[0]), labels], training=True)
            on_fake = critic([diff_augment(fake, aug[1]), labels], training=True)
            loss_c = tf.reduce_mean(tf.nn.relu(1 - on_real))
            loss_c += tf.reduce_mean(tf.nn.relu(1 + on_fake))
        grads = tape.gradient(loss_c, critic.trainable_variables)
        opt_c.apply_gradients(zip(grads, critic.trainable_variables))
        with tf.GradientTape() as tape:
            fake = gen([z_gen, labels], training=True)
            loss_g = -tf.reduce_mean(critic([diff_augment(fake, aug[2]), labels], training=True))
        grads = tape.gradient(loss_g, gen.trainable_variables)
        opt_g.apply_gradients(zip(grads, gen.trainable_variables))
        for a, b in zip(ema.weights, gen.weights):
            a.assign(decay * a + (1 - decay) * b if a.trainable else b)
        return loss_c, loss_g

    return step


@dataclass
class GanGenerator:
    """A trained GAN: configuration, the moving-average generator that samples, progress."""

    cfg: GanConfig
    network: object
    steps: int
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    training_rows_digest: str = ""
    seconds: float = 0.0

    def sample(
        self, n: int, label: int, seed: int, *_sampler_settings, temperature: float = 1.0
    ) -> np.ndarray:
        """``n`` uint8 patches of class ``label`` (``cfg.image_size`` pixels), the same for the
        same seed. The diffusion generator's sampler settings (steps, guidance) are accepted and
        ignored, so that one judge serves both. A GAN of one class draws only that class.
        ``temperature`` scales the latent vectors: below 1 they stay nearer the middle of what
        the generator was trained on (the "truncation trick"), at some cost in variety."""
        if self.cfg.label is not None and label != self.cfg.label:
            raise ValueError(
                f"this GAN was trained on class {self.cfg.label} only; ask it for that class, "
                "or train one on the other (GanConfig.label)"
            )
        z = np.random.default_rng(seed).standard_normal((n, self.cfg.latent)).astype(np.float32)
        z *= np.float32(temperature)
        out = self.network.predict([z, np.full(n, label, np.int32)], verbose=0, batch_size=256)
        return to_uint8(out)


#: The seed of the reference patches a published GAN carries (:func:`write_reference`).
REFERENCE_SEED = 2026


def reference_patches(gan: GanGenerator, per_class: int = 16) -> np.ndarray:
    """``per_class`` patches of each class the GAN makes (classes stacked on the first axis),
    drawn from :data:`REFERENCE_SEED`: the same on every machine up to float noise."""
    return np.stack([gan.sample(per_class, c, REFERENCE_SEED + c) for c in gan.cfg.classes])


def write_reference(folder: str | Path, machine: str = "") -> Path:
    """Draw the reference patches of the GAN published in ``folder`` and store them there
    (``reference_patches.npz``, with the machine that drew them), so that another machine can
    check that it samples the same patches (:func:`drift_from_reference`)."""
    folder = Path(folder)
    out = folder / "reference_patches.npz"
    np.savez_compressed(out, patches=reference_patches(load_gan(folder)), machine=machine)
    return out


#: The most a machine's draw of the reference patches may differ from the stored one and still
#: count as the same patches (float noise): grey levels, and the share of values that differ.
REFERENCE_TOLERANCE = {"max_grey_levels": 2, "share_differing": 0.001}


def reference_agrees(drift: dict) -> bool:
    """Whether a :func:`drift_from_reference` result is float noise
    (:data:`REFERENCE_TOLERANCE`)."""
    return all(drift[k] <= v for k, v in REFERENCE_TOLERANCE.items())


def drift_from_reference(folder: str | Path) -> dict:
    """How far this machine's draw of the reference patches is from the stored one: the
    largest difference in grey levels (0-255), the share of values that differ, and the
    machine that drew the stored patches."""
    folder = Path(folder)
    path = folder / "reference_patches.npz"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder: give a published GAN's folder")
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: publish the GAN with commit_gan (tools/gan_probe.py --publish), "
            "which stores it"
        )
    with np.load(path) as saved:
        stored, machine = saved["patches"], str(saved["machine"])
    here = reference_patches(load_gan(folder), stored.shape[1]).astype(np.int16)
    diff = np.abs(here - stored.astype(np.int16))
    return {
        "max_grey_levels": int(diff.max()),
        "share_differing": float((diff > 0).mean()),
        "drawn_on": machine,
    }


def _paths(out_dir: Path) -> dict:
    names = ("generator", "critic", "ema")
    return {"state": out_dir / "gan.json", **{k: out_dir / f"{k}.weights.h5" for k in names}}


def _class_rows(rows: pd.DataFrame, cfg: GanConfig) -> pd.DataFrame:
    """The training rows the GAN learns from: all of them, or its class's."""
    if "split" in rows and not (rows["split"] == "train").all():
        others = sorted(set(rows["split"]) - {"train"})
        raise ValueError(
            f"the GAN's training data must be training patients only; got rows of {others}. "
            "Pass df[df.split == 'train']"
        )
    if cfg.label is None:
        if rows["label"].nunique() < 2:
            raise ValueError("a class-conditional GAN needs patches of both classes")
        return rows
    mine = rows[rows["label"] == cfg.label]
    if mine.empty:
        raise ValueError(f"no training patches of class {cfg.label} for a GAN of that class")
    return mine


class _Training:
    """The three networks, the two optimizers and the progress of one training, and the
    checkpoint in ``out_dir`` they are saved to and resumed from."""

    def __init__(self, cfg: GanConfig, out_dir: Path, digest: str):
        import keras

        self.cfg, self.out_dir, self.digest = cfg, out_dir, digest
        self.paths = _paths(out_dir)
        keras.utils.set_random_seed(cfg.seed)
        gen, critic, ema = build_generator(cfg), build_critic(cfg), build_generator(cfg)
        ema.set_weights(gen.get_weights())
        self.nets = {"generator": gen, "critic": critic, "ema": ema}
        self.optimizers = [keras.optimizers.Adam(cfg.lr, beta_1=0.0, beta_2=0.9) for _ in "cg"]
        self.optimizers[0].build(critic.trainable_variables)
        self.optimizers[1].build(gen.trainable_variables)
        self.progress = {"steps": 0, "history": [], "seconds": 0.0}

    def open(self, steps: int, restart: bool, log) -> None:
        """Resume the checkpoint of the same configuration and rows, of at most ``steps``
        steps; delete another (``restart``) or refuse it."""
        if not self.paths["state"].exists():
            return
        state = json.loads(self.paths["state"].read_text())
        same = (
            trains_alike(state["config"], self.cfg.to_dict(), state["steps"])
            and state["training_rows_digest"] == self.digest
        )
        if same and state["steps"] <= steps:
            for name, net in self.nets.items():
                net.load_weights(self.paths[name])
            with np.load(self.out_dir / "optimizers.npz") as saved:
                for k, opt in enumerate(self.optimizers):
                    for j, v in enumerate(opt.variables):
                        v.assign(saved[f"o{k}_{j}"])
            self.progress = {key: state[key] for key in self.progress}
            log(f"[gan] resuming at step {state['steps']}")
        elif restart:
            log(f"[gan] configuration or training set changed: starting over in {self.out_dir}")
            shutil.rmtree(self.out_dir)
            self.out_dir.mkdir(parents=True)
        else:
            raise ValueError(
                f"{self.out_dir} holds a GAN of another configuration or training set (or of "
                f"more than {steps} steps); use a new folder, delete it, or pass restart=True"
            )

    def save(self) -> None:
        """The weights of the three networks, the optimizers' state and the progress."""
        for name, net in self.nets.items():
            net.save_weights(self.paths[name])
        moments = {
            f"o{k}_{j}": np.asarray(v)
            for k, opt in enumerate(self.optimizers)
            for j, v in enumerate(opt.variables)
        }
        np.savez(self.out_dir / "optimizers.npz", **moments)
        state = {"config": self.cfg.to_dict(), "training_rows_digest": self.digest}
        state.update(self.progress, trained_on="training patients only")
        self.paths["state"].write_text(json.dumps(state, indent=1))

    def generator(self) -> GanGenerator:
        return _generator(self.cfg, self.nets["ema"], self.progress, self.digest)


def train_gan(
    images_uint8: np.ndarray,
    rows: pd.DataFrame,
    cfg: GanConfig,
    out_dir: str | Path,
    *,
    steps: int,
    checkpoint_every: int = 1000,
    restart: bool = False,
    on_checkpoint=None,
    log=print,
) -> GanGenerator:
    """Train (or continue) a GAN on ``rows`` (``i`` indexes ``images_uint8``; ``label``;
    ``split`` all "train"; with ``cfg.label`` set, only that class's rows are used) until it has
    made ``steps`` steps, checkpointing into ``out_dir`` every ``checkpoint_every`` steps and at
    the end; the mean losses are recorded every 25 steps and at every checkpoint. A checkpoint
    of the same configuration and rows, of at most ``steps`` steps, is resumed; another is an
    error, or deleted with ``restart``. ``on_checkpoint(generator)`` is called after each
    checkpoint (a probe judges it there)."""
    rows = _class_rows(rows, cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = _Training(cfg, out_dir, training_rows_digest(rows.assign(split="train")))
    run.open(steps, restart, log)
    progress, nets = run.progress, run.nets
    order = rows["i"].to_numpy()
    labels = rows["label"].to_numpy().astype(np.int32)
    train_step = _train_step_fn(nets["generator"], nets["critic"], nets["ema"], run.optimizers)
    t0, losses = time.perf_counter(), []
    while progress["steps"] < steps:
        d = step_draws(cfg, progress["steps"], len(order))
        x = to_model_range(images_uint8[order[d["idx"]]], cfg.image_size)
        x = np.rot90(x, d["turn"], (1, 2))
        x = np.ascontiguousarray(x[:, :, ::-1] if d["flip"] else x)
        decay = np.float32(ema_decay(cfg, progress["steps"] + 1))
        if cfg.anneal_steps or cfg.restart_steps:
            for opt in run.optimizers:
                opt.learning_rate.assign(learning_rate(cfg, progress["steps"]))
        out = train_step(x, labels[d["idx"]], d["z_critic"], d["z_gen"], d["aug"], decay)
        losses.append([float(v) for v in out])
        progress["steps"] += 1
        checkpoint = progress["steps"] % checkpoint_every == 0 or progress["steps"] == steps
        if progress["steps"] % 25 == 0 or checkpoint:
            mean = np.mean(losses, axis=0)
            progress["history"].append(
                {"step": progress["steps"], "loss_critic": mean[0], "loss_generator": mean[1]}
            )
            losses = []
        if checkpoint:
            progress["seconds"] += time.perf_counter() - t0
            run.save()
            if on_checkpoint is not None:  # judging is not training time
                on_checkpoint(run.generator())
            t0 = time.perf_counter()
    log(f"[gan] {progress['steps']} steps of {steps} in {progress['seconds']:.0f} s")
    return run.generator()


def _generator(cfg, ema, progress, digest) -> GanGenerator:
    history = pd.DataFrame(progress["history"])
    return GanGenerator(cfg, ema, progress["steps"], history, digest, progress["seconds"])


def commit_gan(
    src_dir: str | Path, rows: pd.DataFrame, dest: str | Path, *, command: str, **notes
) -> Path:
    """A finished GAN in ``src_dir`` (:func:`train_gan`) made fit to publish in ``dest``: the
    moving-average weights that sample, and a state file with the configuration, the steps,
    the loss curve, the digest of the training patches by name (``rows``, as trained on), the
    command that made it and any ``notes``, and the reference patches it draws
    (:func:`write_reference`). :func:`load_committed_gan` reads it back and checks it; the
    critic and the optimizers, which only training needs, stay behind."""
    from idc_utils.data.split import training_patches_digest

    src, dest = Path(src_dir), Path(dest)
    paths = _paths(src)
    if not paths["state"].exists():
        raise FileNotFoundError(f"no GAN in {src} (no gan.json) to publish")
    state = json.loads(paths["state"].read_text())
    cfg = GanConfig.from_dict(state["config"])
    mine = _class_rows(rows, cfg)
    if state["training_rows_digest"] != training_rows_digest(mine.assign(split="train")):
        raise ValueError(f"{src} was not trained on these rows")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(paths["ema"], _paths(dest)["ema"])
    state.update(
        config=cfg.to_dict(),  # every setting, by name
        training_patches_digest=training_patches_digest(mine),
        command=command,
        **notes,
    )
    _paths(dest)["state"].write_text(json.dumps(state, indent=1))
    write_reference(dest, notes.get("machine", ""))
    return dest


def load_committed_gan(
    folder: str | Path, cfg: GanConfig, steps: int, rows: pd.DataFrame
) -> GanGenerator:
    """The GAN published in ``folder`` (:func:`commit_gan`), when it was made with
    configuration ``cfg``, for ``steps`` steps, on the patches of ``rows`` (by name and label,
    so another machine's copy of the same split fits); otherwise a ``ValueError`` that says
    which of them differs."""
    folder = Path(folder)
    state_path = _paths(folder)["state"]
    if not state_path.exists():
        raise FileNotFoundError(f"no published GAN in {folder} (no gan.json)")
    state = json.loads(state_path.read_text())
    saved = GanConfig.from_dict(state["config"]).to_dict()
    remedy = "Train one (gan_checkpoint = None) or make it with tools/gan_probe.py --publish"
    check_fits("GAN", folder, state, saved, cfg.to_dict(), steps, _class_rows(rows, cfg), remedy)
    return load_gan(folder)


def load_gan(out_dir: str | Path) -> GanGenerator:
    """The GAN saved in ``out_dir`` by :func:`train_gan`, its moving average sampling."""
    paths = _paths(Path(out_dir))
    if not paths["state"].exists():
        raise FileNotFoundError(
            f"no GAN in {out_dir} (no gan.json): train one with training.adversarial.train_gan "
            "(tools/gan_probe.py does)"
        )
    state = json.loads(paths["state"].read_text())
    cfg = GanConfig.from_dict(state["config"])
    ema = build_generator(cfg)
    ema.load_weights(paths["ema"])
    return _generator(cfg, ema, state, state["training_rows_digest"])
