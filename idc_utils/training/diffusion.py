"""Synthetic patches from a small class-conditional diffusion model: the network, its noise
schedule, sampling, and the sizes synthetic patches are compared at.

Why diffusion and not a GAN: a denoising model trains with one plain regression loss (predict
the noise that was added), so it is stable on a few thousand patches and a CPU, and its sampler
(DDIM, deterministic) gives the same patches for the same seed. The structure follows the
"Denoising Diffusion Implicit Models" example of keras.io (cosine schedule, a small U-Net fed with
the noise level), with the class (IDC- / IDC+) added as an embedding beside the noise level, and
an exponential moving average of the weights for sampling.

Patches are resized from 50 to :data:`GEN_SIZE` pixels. Training, on training patients only, is
:mod:`idc_utils.training.generator`; judging the patches is
:mod:`idc_utils.evaluation.synthetic_quality`. Research and teaching software, not a medical
device.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

GEN_SIZE = 32
MIN_SIGNAL_RATE = 0.02
MAX_SIGNAL_RATE = 0.95
PREDICTIONS = ("eps", "v")


@dataclass(frozen=True)
class GenConfig:
    """The generator's settings (recorded with every checkpoint)."""

    image_size: int = GEN_SIZE
    widths: tuple = (32, 64, 96)
    block_depth: int = 1
    patch: int = 1  # the U-Net's first step folds patch x patch pixels into channels (1: none)
    embedding_dims: int = 32
    batch_size: int = 32
    lr: float = 1e-3
    ema: float = 0.99  # each step the average keeps this share of itself
    # annealing: from step anneal_from on, the learning rate falls to 0 along a half cosine
    # over anneal_steps steps (0: never) and the average keeps anneal_ema (a longer memory)
    anneal_from: int = 0
    anneal_steps: int = 0
    anneal_ema: float = 0.999
    uncond_share: float = 0.1  # share of training patches shown without their class (guidance)
    prediction: str = "eps"  # what the network outputs: "eps" (the noise) or "v" (velocity)
    max_signal_rate: float = MAX_SIGNAL_RATE  # the signal rate at t = 0: how clean it gets
    mixed_precision: bool = False  # float16 compute (a GPU's tensor cores); weights stay float32
    seed: int = 0
    architecture: int = 2  # bumped when build_denoiser changes: old checkpoints do not resume

    def __post_init__(self):
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, not {self.prediction!r}")
        # the U-Net halves the folded size once per width but the last
        halvings = 2 ** (len(self.widths) - 1)
        if self.patch < 1 or self.image_size % (self.patch * halvings):
            raise ValueError(
                f"gen_image_size {self.image_size} must divide by gen_patch x 2^(levels - 1) = "
                f"{self.patch} x {halvings} (gen_patch {self.patch}, {len(self.widths)} "
                "gen_widths); change one of them"
            )

        if self.anneal_from < 0 or self.anneal_steps < 0 or not 0 < self.anneal_ema < 1:
            raise ValueError(
                "gen_anneal_from and gen_anneal_steps must be >= 0 and gen_anneal_ema in (0, 1); "
                f"got {self.anneal_from}, {self.anneal_steps}, {self.anneal_ema}"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> GenConfig:
        d = dict(d)
        d["widths"] = tuple(d["widths"])
        d.setdefault("prediction", "eps")  # checkpoints made before v-prediction existed
        d.setdefault("max_signal_rate", MAX_SIGNAL_RATE)  # and before the schedule was a setting
        d.setdefault("patch", 1)  # and before pixels could be folded into channels
        return cls(**d)  # (and before annealing: the defaults, no annealing)


def schedule_at(cfg: GenConfig, step: int) -> tuple[float, float]:
    """The learning rate and the moving average's decay of step ``step`` (counted from 0):
    ``cfg.lr`` and ``cfg.ema`` until annealing begins, then a learning rate that falls along a
    half cosine to 0 at step ``anneal_from + anneal_steps`` (and stays there) with the decay
    ``anneal_ema``. A smaller step and a longer average settle the weights that the constant
    rate keeps shaking."""
    if not cfg.anneal_steps or step < cfg.anneal_from:
        return cfg.lr, cfg.ema
    return cosine_annealed(cfg.lr, step, cfg.anneal_from, cfg.anneal_steps), cfg.anneal_ema


def cosine_annealed(lr: float, step: int, start: int, length: int) -> float:
    """``lr`` at step ``step`` of a half cosine that begins at ``start`` and reaches 0 at
    ``start + length`` (``lr`` before it, 0 after; ``length`` 0: no annealing). The diffusion
    generator's and the GAN's schedules both use it."""
    if not length or step < start:
        return lr
    done = min(1.0, (step - start) / length)
    return lr * 0.5 * (1.0 + math.cos(math.pi * done))


def trains_alike(a: GenConfig, b: GenConfig, steps: int) -> bool:
    """Whether configurations ``a`` and ``b`` make the same first ``steps`` steps: equal, or
    equal but for annealing that neither begins before step ``steps`` (a checkpoint of ``steps``
    steps of one then continues as the other)."""
    if a.to_dict() == b.to_dict():  # (as dicts: widths given as a list or a tuple alike)
        return True

    def plain(c):
        return replace(c, anneal_from=0, anneal_steps=0, anneal_ema=GenConfig.anneal_ema)

    def late(c):
        return not c.anneal_steps or c.anneal_from >= steps

    return plain(a).to_dict() == plain(b).to_dict() and late(a) and late(b)


def _sinusoidal(x, dims: int):
    import keras
    from keras import ops

    freqs = ops.exp(ops.linspace(math.log(1.0), math.log(1000.0), dims // 2))
    angles = 2.0 * math.pi * freqs * ops.cast(x, freqs.dtype)
    return keras.ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)


def _fold(x, patch: int):
    """Each ``patch`` x ``patch`` block of pixels as one position's channels (space to depth):
    a rearrangement, nothing lost, patch squared times fewer positions to convolve."""
    import tensorflow as tf

    return tf.nn.space_to_depth(x, patch)


def _unfold(x, patch: int):
    """The inverse of :func:`_fold` (depth to space)."""
    import tensorflow as tf

    return tf.nn.depth_to_space(x, patch)


def _folded(cfg) -> tuple:
    return (cfg.image_size // cfg.patch, cfg.image_size // cfg.patch, 3 * cfg.patch**2)


def _residual_block(x, width: int, cond):
    """Two convolutions with a skip; the condition (noise level and class) is added between
    them, so that every block hears it."""
    from keras import layers

    residual = x if x.shape[-1] == width else layers.Conv2D(width, 1)(x)
    x = layers.BatchNormalization(center=False, scale=False)(x)
    x = layers.Conv2D(width, 3, padding="same", activation="swish")(x)
    x = x + layers.Dense(width)(cond)
    x = layers.Conv2D(width, 3, padding="same")(x)
    return layers.Add()([x, residual])


#: pixels per sampling batch (256 patches of 32 px): a batch of twice that many patches (with
#: and without their class, for guidance) goes through the U-Net, whose activations grow with it
SAMPLING_BATCH_PIXELS = 256 * 32 * 32
NULL_LABEL = 2  # "no class": trained on a share of batches, for classifier-free guidance


def build_denoiser(cfg: GenConfig):
    """A small U-Net: (noisy images, noise variance, class or NULL_LABEL) -> predicted noise.
    Down: residual blocks at each width but the last, each followed by 2x2 average pooling (their
    outputs kept as skips); the last width at the lowest resolution; up: bilinear upsampling,
    the skip of the same resolution concatenated, residual blocks. The noise variance (as
    sinusoidal features) and the class (a learned embedding) form the condition every block
    hears."""
    import keras
    from keras import layers

    size, dims = cfg.image_size, cfg.embedding_dims
    images = keras.Input((size, size, 3), name="noisy")
    variance = keras.Input((1, 1, 1), name="noise_variance")
    label = keras.Input((), dtype="int32", name="label")
    e = layers.Lambda(lambda v: _sinusoidal(v, dims), output_shape=(1, 1, dims))(variance)
    c = layers.Reshape((1, 1, dims))(layers.Embedding(3, dims)(label))
    cond = layers.Dense(2 * dims, activation="swish")(layers.Concatenate()([e, c]))
    x = images
    if cfg.patch > 1:  # fold patch x patch pixels into channels: each position sees a block
        x = layers.Lambda(lambda v: _fold(v, cfg.patch), output_shape=_folded(cfg))(x)
    x = layers.Conv2D(cfg.widths[0], 1)(x)  # the condition enters every block instead
    skips = []
    for width in cfg.widths[:-1]:
        for _ in range(cfg.block_depth):
            x = _residual_block(x, width, cond)
            skips.append(x)
        x = layers.AveragePooling2D(2)(x)
    for _ in range(cfg.block_depth):
        x = _residual_block(x, cfg.widths[-1], cond)
    for width in reversed(cfg.widths[:-1]):
        x = layers.UpSampling2D(2, interpolation="bilinear")(x)
        for _ in range(cfg.block_depth):
            x = layers.Concatenate()([x, skips.pop()])
            x = _residual_block(x, width, cond)
    out = layers.Conv2D(3 * cfg.patch**2, 1, kernel_initializer="zeros", dtype="float32")(x)
    if cfg.patch > 1:  # and unfold the output back into pixels
        out = layers.Lambda(
            lambda v: _unfold(v, cfg.patch), output_shape=(size, size, 3), dtype="float32"
        )(out)
    return keras.Model([images, variance, label], out, name="denoiser")


def diffusion_rates(t, max_signal_rate: float = MAX_SIGNAL_RATE):
    """Cosine schedule: signal and noise rates for diffusion times ``t`` in [0, 1], the square
    roots of alpha-bar and of 1 - alpha-bar (their squares add up to 1). The signal rate falls
    from ``max_signal_rate`` at t = 0 to MIN_SIGNAL_RATE at t = 1."""
    start, end = math.acos(max_signal_rate), math.acos(MIN_SIGNAL_RATE)
    angles = start + t * (end - start)
    return np.cos(angles), np.sin(angles)


def add_noise(
    x0: np.ndarray, t, noise: np.ndarray, max_signal_rate: float = MAX_SIGNAL_RATE
) -> np.ndarray:
    """The forward process in one step: patches ``x0`` (in [-1, 1]) noised to diffusion time
    ``t``, x_t = signal_rate(t) * x0 + noise_rate(t) * noise, with standard normal ``noise``."""
    signal, noise_rate = diffusion_rates(t, max_signal_rate)
    return (signal * x0 + noise_rate * noise).astype(np.float32)


def training_target(x0, noise, signal, noise_rate, prediction: str):
    """What the network learns to output for patches ``x0`` noised with ``noise`` at the given
    rates: the noise itself ("eps"), or the velocity v = signal * noise - noise_rate * x0
    ("v", Salimans & Ho 2022), a mix that leans on the noise when there is little and on the
    patch when there is much."""
    if prediction == "eps":
        return noise
    return signal * noise - noise_rate * x0


def noise_and_patch(output, noisy, signal, noise_rate, prediction: str):
    """The network's ``output`` for ``noisy`` patches read as ``(noise estimate, clean-patch
    estimate)``. With "eps" the clean patch comes from solving the forward process for x0, which
    multiplies an error of the network by noise_rate / signal (50 at t = 1, where sampling
    starts); with "v" both estimates are weighted sums whose weights are at most 1, so neither
    is worse than the network's own error."""
    if prediction == "eps":
        return output, (noisy - noise_rate * output) / signal
    return noise_rate * noisy + signal * output, signal * noisy - noise_rate * output


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize, antialiased (a reduction averages instead of skipping pixels); float32."""
    import tensorflow as tf

    x = tf.image.resize(tf.cast(images, tf.float32), (size, size), antialias=True)
    return x.numpy()


def to_model_range(images_uint8: np.ndarray, size: int = GEN_SIZE) -> np.ndarray:
    """uint8 patches -> float32 in [-1, 1] at ``size`` pixels (bilinear, antialiased)."""
    return (_resize(images_uint8, size) / 127.5 - 1.0).astype(np.float32)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Patches in the generator's range [-1, 1] back to uint8."""
    return np.clip((np.asarray(x) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


@dataclass
class Generator:
    """A trained (or training) generator: configuration, the EMA network, progress."""

    cfg: GenConfig
    network: object  # the EMA denoiser used for sampling
    steps: int
    history: pd.DataFrame
    training_rows_digest: str  # which patches it was trained on (idc_utils.data.split)
    seconds: float
    best_step: int = 0  # the step whose weights sample (lowest validation error)

    def sample(
        self, n: int, label: int, seed: int, diffusion_steps: int = 20, guidance: float = 1.0
    ) -> np.ndarray:
        return sample(self, n, label, seed, diffusion_steps, guidance)


def build_network(cfg: GenConfig):
    """One denoiser, in float16 compute when ``cfg`` asks (the global policy is left as it was)."""
    import keras

    previous = keras.config.dtype_policy()
    if cfg.mixed_precision:
        keras.config.set_dtype_policy("mixed_float16")
    try:
        network = build_denoiser(cfg)
        network.prediction = cfg.prediction  # how its output is read (validation_loss)
        network.max_signal_rate = cfg.max_signal_rate  # and its schedule
        return network
    finally:
        keras.config.set_dtype_policy(previous)


def build_pair(cfg: GenConfig):
    """The trained network and its moving average, which starts equal to it."""
    network, ema = build_network(cfg), build_network(cfg)
    ema.set_weights(network.get_weights())
    return network, ema


def validation_loss(network, x_val: np.ndarray, y_val: np.ndarray, seed: int = 0) -> float:
    """Mean error of the noise estimate on validation patches, with noise and noise levels fixed
    by ``seed`` (the same draw at every evaluation, so that values are comparable along training,
    and between networks that output the noise or the velocity)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(x_val.shape).astype(np.float32)
    t = np.linspace(0.05, 0.95, len(x_val), dtype=np.float32).reshape(-1, 1, 1, 1)
    top = getattr(network, "max_signal_rate", MAX_SIGNAL_RATE)
    signal, noise_rate = diffusion_rates(t, top)
    noisy = add_noise(x_val, t, noise, top)
    prediction = getattr(network, "prediction", "eps")
    errors = []
    for s in range(0, len(x_val), 256):
        b = slice(s, s + 256)
        out = np.asarray(
            network([noisy[b], (noise_rate[b] ** 2).astype(np.float32), y_val[b]], training=False)
        )
        pred = noise_and_patch(out, noisy[b], signal[b], noise_rate[b], prediction)[0]
        errors.append(np.abs(pred - noise[b]).mean(axis=(1, 2, 3)))
    return float(np.concatenate(errors).mean())


def guided_noise(network, noisy, variance, labels, guidance):
    """The network's output with classifier-free guidance: its estimate with the class
    (``cond``) and without it (NULL_LABEL, ``uncond``), in one batch of twice the size, and the
    estimate moved away from the class-free one: (1 + w) cond - w uncond. The output is the
    noise or the velocity (``cfg.prediction``); both are linear in it, so guiding one guides the
    other the same way."""
    import tensorflow as tf

    n = tf.shape(noisy)[0]
    free = tf.fill([n], NULL_LABEL)
    both = network(
        [
            tf.concat([noisy, noisy], 0),
            tf.concat([variance, variance], 0),
            tf.concat([labels, free], 0),
        ],
        training=False,
    )
    cond, uncond = both[:n], both[n:]
    return cond + guidance * (cond - uncond)


def _denoise_fn(gen: Generator):
    """:func:`guided_noise` with the generator's network, compiled once per generator."""
    import tensorflow as tf

    fn = getattr(gen, "_denoise", None)
    if fn is None:

        @tf.function(reduce_retracing=True)
        def fn(noisy, variance, labels, guidance):
            return guided_noise(gen.network, noisy, variance, labels, guidance)

        gen._denoise = fn
    return fn


def ddim_sample(
    denoise,
    noisy,
    labels,
    diffusion_steps: int,
    guidance: float,
    trace=None,
    prediction="eps",
    max_signal_rate: float = MAX_SIGNAL_RATE,
):
    """DDIM with eta = 0: from pure noise ``noisy`` at t = 1 down to t = 1 / diffusion_steps
    in equal steps. Each step estimates the noise and the clean patches (from the network's
    output, read as ``prediction`` says), and moves the clean estimate to the next noise level
    along the same noise: no new randomness. Returns the last estimate of the clean patches (in
    [-1, 1]); ``trace``, a list, collects (t, x_t, estimate) per step."""
    step = 1.0 / diffusion_steps
    pred_images = noisy
    for k in range(diffusion_steps):
        t = np.full((len(noisy), 1, 1, 1), 1.0 - k * step, np.float32)
        signal, noise_rate = diffusion_rates(t, max_signal_rate)
        variance = (noise_rate**2).astype(np.float32)
        output = denoise(noisy, variance, labels, np.float32(guidance)).numpy()
        pred_noise, pred_images = noise_and_patch(output, noisy, signal, noise_rate, prediction)
        if trace is not None:
            trace.append((1.0 - k * step, noisy, pred_images))
        next_signal, next_noise = diffusion_rates(t - step, max_signal_rate)
        noisy = (next_signal * pred_images + next_noise * pred_noise).astype(np.float32)
    return np.clip(pred_images, -1, 1)


def sample(
    gen: Generator,
    n: int,
    label: int,
    seed: int,
    diffusion_steps: int = 20,
    guidance: float = 1.0,
    batch_size: int | None = None,
):
    """``n`` synthetic patches of class ``label`` (uint8, ``image_size`` pixels), the same for
    the same seed: the starting noise comes from ``seed`` and DDIM's steps are deterministic.
    ``guidance`` > 0 pushes the samples towards their class (classifier-free guidance: the
    class-conditional noise estimate moved away from the unconditional one by that factor).
    ``batch_size``: patches per call of the network; by default as many as have the pixels of
    256 patches of 32 px (113 of 48 px), so that memory does not grow with the patch size."""
    size = gen.cfg.image_size
    batch_size = batch_size or max(1, SAMPLING_BATCH_PIXELS // size**2)
    noise0 = np.random.default_rng(seed).standard_normal((n, size, size, 3)).astype(np.float32)
    denoise = _denoise_fn(gen)
    out = []
    for s in range(0, n, batch_size):
        noisy = noise0[s : s + batch_size]
        labels = np.full(len(noisy), int(label), np.int32)
        x0 = ddim_sample(
            denoise,
            noisy,
            labels,
            diffusion_steps,
            guidance,
            prediction=gen.cfg.prediction,
            max_signal_rate=gen.cfg.max_signal_rate,
        )
        out.append(to_uint8(x0))
    return np.concatenate(out) if out else np.zeros((0, size, size, 3), np.uint8)


def sampling_trace(
    gen: Generator, label: int, seed: int, diffusion_steps: int = 20, guidance: float = 1.0
) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """The first patch of ``gen.sample(n, label, seed, ...)`` on its way: for each DDIM step,
    ``(t, x_t, estimate of the clean patch)``, both as uint8 patches."""
    size = gen.cfg.image_size
    rng = np.random.default_rng(seed)
    noisy = rng.standard_normal((1, size, size, 3)).astype(np.float32)
    labels = np.full(1, int(label), np.int32)
    trace = []
    denoise = _denoise_fn(gen)
    cfg = gen.cfg
    ddim_sample(
        denoise,
        noisy,
        labels,
        diffusion_steps,
        guidance,
        trace,
        cfg.prediction,
        cfg.max_signal_rate,
    )
    return [(t, to_uint8(x)[0], to_uint8(e)[0]) for t, x, e in trace]


def sample_sets(
    gen: Generator,
    per_class: int,
    seeds,
    diffusion_steps: int = 20,
    guidance: float = 1.0,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each seed, ``per_class`` synthetic IDC- and ``per_class`` IDC+ patches and their
    labels (IDC- first): independent draws, one set per seed, for comparisons over seeds."""
    sets = {}
    for seed in seeds:
        neg = gen.sample(per_class, 0, 2 * int(seed), diffusion_steps, guidance)
        pos = gen.sample(per_class, 1, 2 * int(seed) + 1, diffusion_steps, guidance)
        sets[int(seed)] = (
            np.concatenate([neg, pos]),
            np.r_[np.zeros(per_class, int), np.ones(per_class, int)],
        )
    return sets


def to_patch_size(images_uint8: np.ndarray, size: int = 50) -> np.ndarray:
    """Synthetic patches (or any uint8 patches) resized to ``size`` pixels, bilinear: the input
    size of the book's classifiers and embedder."""
    return np.clip(np.round(_resize(images_uint8, size)), 0, 255).astype(np.uint8)


def round_trip(images_uint8: np.ndarray, gen_size: int, size: int = 50) -> np.ndarray:
    """Real patches taken down to the generator's resolution and back up: what a real patch
    looks like with the detail a ``gen_size`` generator cannot make. Comparisons of real and
    synthetic patches are fair only at the same resolution."""
    return enlarge(to_model_range(images_uint8, gen_size), size)


def enlarge(x: np.ndarray, size: int = 50) -> np.ndarray:
    """Patches in the generator's range ([-1, 1], its size) as uint8 patches of ``size``
    pixels: the second half of :func:`round_trip`, for patches already reduced."""
    return to_patch_size(to_uint8(x), size)


def resolve_mixed_precision(setting) -> bool:
    """``True``/``False`` as given; ``"auto"``: on when TensorFlow sees a GPU (float16 is slower
    than float32 on a CPU)."""
    if isinstance(setting, str):
        if setting != "auto":
            raise ValueError(f"mixed precision must be true, false or 'auto', not {setting!r}")
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    return bool(setting)


def config_from_params(p) -> GenConfig:
    """The generator's configuration from a profile's parameters (a dict, or a chapter's
    parameters with ``as_dict()``): ``gen_image_size``, ``gen_widths``, ``gen_block_depth``,
    ``gen_patch``, ``gen_batch_size``, ``gen_prediction``, ``gen_max_signal_rate``,
    ``gen_anneal_from``, ``gen_anneal_steps``, ``gen_anneal_ema``, ``gen_mixed_precision`` and
    ``seed``. The chapter and ``tools/generator_study.py`` both
    build it here, so that a published generator fits the chapter that loads it."""
    p = p.as_dict() if hasattr(p, "as_dict") else p
    return GenConfig(
        image_size=p["gen_image_size"],
        widths=tuple(p["gen_widths"]),
        block_depth=p["gen_block_depth"],
        patch=p["gen_patch"],
        batch_size=p["gen_batch_size"],
        prediction=p["gen_prediction"],
        max_signal_rate=p["gen_max_signal_rate"],
        anneal_from=p["gen_anneal_from"],
        anneal_steps=p["gen_anneal_steps"],
        anneal_ema=p["gen_anneal_ema"],
        mixed_precision=resolve_mixed_precision(p["gen_mixed_precision"]),
        seed=p["seed"],
    )
