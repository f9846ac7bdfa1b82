"""Synthetic patches from a small class-conditional diffusion model, and how to judge them.

Why diffusion and not a GAN: a denoising model trains with one plain regression loss (predict
the noise that was added), so it is stable on a few thousand patches and a CPU, and its sampler
(DDIM, deterministic) gives the same patches for the same seed. The structure follows the
"Denoising Diffusion Implicit Models" example of keras.io (cosine schedule, a small U-Net fed with
the noise level), with the class (IDC- / IDC+) added as an embedding beside the noise level, and
an exponential moving average of the weights for sampling.

Patches are resized from 50 to :data:`GEN_SIZE` pixels; flips and quarter turns, true invariances
of an H&E patch, augment the training images. The generator is trained on **training patients
only**; :func:`train_generator` refuses rows of other splits and records the training split's
fingerprint in its state.

Judging synthetic patches (all on frozen ImageNet embeddings, no Inception download):
:func:`kid` (kernel inception distance: unbiased MMD with a cubic polynomial kernel),
:func:`nearest_distances` (memorisation: is each synthetic patch a copy of a training patch?) and
:func:`real_vs_synthetic_auc` (could a classifier tell them apart?).

Research and teaching software, not a medical device.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

GEN_SIZE = 32
MIN_SIGNAL_RATE = 0.02
MAX_SIGNAL_RATE = 0.95


@dataclass(frozen=True)
class GenConfig:
    """The generator's settings (recorded with every checkpoint)."""

    image_size: int = GEN_SIZE
    widths: tuple = (32, 64, 96)
    block_depth: int = 1
    embedding_dims: int = 32
    batch_size: int = 32
    lr: float = 1e-3
    ema: float = 0.99
    uncond_share: float = 0.1  # batches' share trained without their class (for guidance)
    seed: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> GenConfig:
        d = dict(d)
        d["widths"] = tuple(d["widths"])
        return cls(**d)


# ----------------------------------------------------------------------------- the network


def _sinusoidal(x, dims: int):
    import keras
    from keras import ops

    freqs = ops.exp(ops.linspace(math.log(1.0), math.log(1000.0), dims // 2))
    angles = 2.0 * math.pi * freqs * x
    return keras.ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)


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


NULL_LABEL = 2  # "no class": trained on a share of batches, for classifier-free guidance


def build_denoiser(cfg: GenConfig):
    """A small U-Net: (noisy images, noise variance, class or NULL_LABEL) -> predicted noise."""
    import keras
    from keras import layers

    size, dims = cfg.image_size, cfg.embedding_dims
    images = keras.Input((size, size, 3), name="noisy")
    variance = keras.Input((1, 1, 1), name="noise_variance")
    label = keras.Input((), dtype="int32", name="label")
    e = layers.Lambda(lambda v: _sinusoidal(v, dims), output_shape=(1, 1, dims))(variance)
    c = layers.Reshape((1, 1, dims))(layers.Embedding(3, dims)(label))
    cond = layers.Dense(2 * dims, activation="swish")(layers.Concatenate()([e, c]))
    x = layers.Conv2D(cfg.widths[0], 1)(images)
    x = layers.Concatenate()([x, layers.UpSampling2D(size)(cond)])
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
    out = layers.Conv2D(3, 1, kernel_initializer="zeros")(x)
    return keras.Model([images, variance, label], out, name="denoiser")


def diffusion_rates(t):
    """Cosine schedule: signal and noise rates for diffusion times ``t`` in [0, 1]."""
    start, end = math.acos(MAX_SIGNAL_RATE), math.acos(MIN_SIGNAL_RATE)
    angles = start + t * (end - start)
    return np.cos(angles), np.sin(angles)


def to_model_range(images_uint8: np.ndarray, size: int = GEN_SIZE) -> np.ndarray:
    """uint8 patches -> float32 in [-1, 1] at ``size`` pixels (bilinear, antialiased)."""
    import tensorflow as tf

    x = tf.image.resize(tf.cast(images_uint8, tf.float32), (size, size), antialias=True)
    return (x.numpy() / 127.5 - 1.0).astype(np.float32)


def to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip((np.asarray(x) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- training


@dataclass
class Generator:
    """A trained (or training) generator: configuration, the EMA network, progress."""

    cfg: GenConfig
    network: object  # the EMA denoiser used for sampling
    steps: int
    history: pd.DataFrame
    data_fingerprint: str
    seconds: float

    def sample(
        self, n: int, label: int, seed: int, diffusion_steps: int = 20, guidance: float = 1.0
    ) -> np.ndarray:
        return sample(self, n, label, seed, diffusion_steps, guidance)


def _state_paths(out_dir: Path) -> tuple[Path, Path, Path]:
    return out_dir / "generator.json", out_dir / "denoiser.weights.h5", out_dir / "ema.weights.h5"


def train_generator(
    images_uint8: np.ndarray,
    rows: pd.DataFrame,
    cfg: GenConfig,
    out_dir: str | Path,
    *,
    budget_s: float = 60.0,
    max_steps: int | None = None,
    log=print,
) -> Generator:
    """Train (or continue training) the generator on ``rows`` (column ``i`` indexes
    ``images_uint8``; ``label``; ``split`` all "train") until ``budget_s`` seconds or
    ``max_steps`` steps in total, checkpointing into ``out_dir``. A checkpoint of the same
    configuration and training data is resumed; another is an error."""
    import keras
    import tensorflow as tf

    from .train import split_fingerprint

    if "split" in rows and not (rows["split"] == "train").all():
        others = sorted(set(rows["split"]) - {"train"})
        raise ValueError(
            f"the generator trains on training patients only; got rows of {others}. "
            "Pass df[df.split == 'train']"
        )
    if rows["label"].nunique() < 2:
        raise ValueError("the generator needs patches of both classes")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path, weights_path, ema_path = _state_paths(out_dir)
    fingerprint = split_fingerprint(rows.assign(split="train"))
    keras.utils.set_random_seed(cfg.seed)
    network, ema = build_denoiser(cfg), build_denoiser(cfg)
    ema.set_weights(network.get_weights())
    steps, history, seconds = 0, [], 0.0
    if state_path.exists():
        state = json.loads(state_path.read_text())
        if state["config"] != cfg.to_dict() or state["data_fingerprint"] != fingerprint:
            raise ValueError(
                f"{out_dir} holds a generator of another configuration or training set; "
                "use a new folder, or delete it to start again"
            )
        network.load_weights(weights_path)
        ema.load_weights(ema_path)
        steps, history, seconds = state["steps"], state["history"], state["seconds"]
        log(f"[generator] resuming at step {steps}")
    x_all = to_model_range(images_uint8[rows["i"].to_numpy()], cfg.image_size)
    y_all = rows["label"].to_numpy().astype(np.int32)
    optimizer = keras.optimizers.AdamW(cfg.lr, weight_decay=1e-4)
    start, end = math.acos(MAX_SIGNAL_RATE), math.acos(MIN_SIGNAL_RATE)

    @tf.function
    def train_step(x, y, noise, t):
        angles = start + t * (end - start)
        signal, noise_rate = tf.cos(angles), tf.sin(angles)
        noisy = signal * x + noise_rate * noise
        with tf.GradientTape() as tape:
            pred = network([noisy, noise_rate**2, y], training=True)
            loss = tf.reduce_mean(tf.abs(pred - noise))
        grads = tape.gradient(loss, network.trainable_weights)
        optimizer.apply_gradients(zip(grads, network.trainable_weights))
        for w, e in zip(network.weights, ema.weights):
            e.assign(cfg.ema * e + (1 - cfg.ema) * w)
        return loss

    rng = np.random.default_rng(cfg.seed + steps)
    t0 = time.perf_counter()
    losses = []
    while True:
        if max_steps is not None and steps >= max_steps:
            break
        if seconds + (time.perf_counter() - t0) >= budget_s:
            break
        idx = rng.integers(0, len(x_all), cfg.batch_size)
        x = x_all[idx]
        x = np.rot90(x, k=int(rng.integers(4)), axes=(1, 2))  # quarter turns and flips
        if rng.random() < 0.5:
            x = x[:, :, ::-1]
        noise = rng.standard_normal(x.shape).astype(np.float32)
        t = rng.random((len(x), 1, 1, 1)).astype(np.float32)
        y = np.where(rng.random(len(idx)) < cfg.uncond_share, NULL_LABEL, y_all[idx])
        losses.append(float(train_step(np.ascontiguousarray(x), y.astype(np.int32), noise, t)))
        steps += 1
        if steps % 25 == 0:
            history.append({"step": steps, "loss": float(np.mean(losses))})
            losses = []
    if losses:
        history.append({"step": steps, "loss": float(np.mean(losses))})
    seconds += time.perf_counter() - t0
    network.save_weights(weights_path)
    ema.save_weights(ema_path)
    state_path.write_text(
        json.dumps(
            {
                "config": cfg.to_dict(),
                "data_fingerprint": fingerprint,
                "steps": steps,
                "seconds": seconds,
                "history": history,
                "trained_on": "training patients only",
            },
            indent=1,
        )
    )
    log(f"[generator] {steps} steps in {seconds:.0f} s (budget {budget_s:.0f} s)")
    return Generator(cfg, ema, steps, pd.DataFrame(history), fingerprint, seconds)


def load_generator(out_dir: str | Path) -> Generator:
    state_path, _, ema_path = _state_paths(Path(out_dir))
    state = json.loads(state_path.read_text())
    cfg = GenConfig.from_dict(state["config"])
    ema = build_denoiser(cfg)
    ema.load_weights(ema_path)
    return Generator(
        cfg,
        ema,
        state["steps"],
        pd.DataFrame(state["history"]),
        state["data_fingerprint"],
        state["seconds"],
    )


def sample(
    gen: Generator,
    n: int,
    label: int,
    seed: int,
    diffusion_steps: int = 20,
    guidance: float = 1.0,
):
    """``n`` synthetic patches of class ``label`` (uint8, ``image_size`` pixels), the same for
    the same seed: the starting noise comes from ``seed`` and DDIM's steps are deterministic.
    ``guidance`` > 0 pushes the samples towards their class (classifier-free guidance: the
    class-conditional noise estimate moved away from the unconditional one by that factor)."""
    size = gen.cfg.image_size
    noisy = np.random.default_rng(seed).standard_normal((n, size, size, 3)).astype(np.float32)
    labels = np.full(n, int(label), np.int32)
    step = 1.0 / diffusion_steps
    pred_images = noisy
    for k in range(diffusion_steps):
        t = np.full((n, 1, 1, 1), 1.0 - k * step, np.float32)
        signal, noise_rate = diffusion_rates(t)
        variance = (noise_rate**2).astype(np.float32)
        pred_noise = np.asarray(gen.network([noisy, variance, labels], training=False))
        if guidance:
            free = np.asarray(
                gen.network([noisy, variance, np.full(n, NULL_LABEL, np.int32)], training=False)
            )
            pred_noise = pred_noise + guidance * (pred_noise - free)
        pred_images = (noisy - noise_rate * pred_noise) / signal
        next_signal, next_noise = diffusion_rates(t - step)
        noisy = (next_signal * pred_images + next_noise * pred_noise).astype(np.float32)
    return to_uint8(np.clip(pred_images, -1, 1))


# ----------------------------------------------------------------------------- judging


def kid(a: np.ndarray, b: np.ndarray, subsets: int = 20, subset_size: int = 100, seed: int = 0):
    """Kernel Inception Distance between embedding sets ``a`` and ``b`` (rows): the mean, over
    random subsets, of the unbiased MMD^2 with the kernel (x.y / d + 1)^3; and its spread."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = a.shape[1]
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError("KID needs at least two rows in each set")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        off = ~np.eye(m, dtype=bool)
        values.append(kxx[off].mean() + kyy[off].mean() - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


def nearest_distances(query: np.ndarray, reference: np.ndarray, chunk: int = 1024):
    """For each row of ``query``: the Euclidean distance to its nearest row of ``reference``
    and that row's index (chunked: references of any size)."""
    q = np.asarray(query, np.float32).reshape(len(query), -1)
    r = np.asarray(reference, np.float32).reshape(len(reference), -1)
    r2 = (r**2).sum(1)
    best = np.full(len(q), np.inf)
    where = np.zeros(len(q), np.int64)
    for s in range(0, len(r), chunk):
        block = r[s : s + chunk]
        d2 = (q**2).sum(1)[:, None] - 2 * q @ block.T + r2[s : s + chunk][None]
        k = d2.argmin(1)
        val = d2[np.arange(len(q)), k]
        better = val < best
        best[better], where[better] = val[better], s + k[better]
    return np.sqrt(np.maximum(best, 0)), where


def real_vs_synthetic_auc(real: np.ndarray, synthetic: np.ndarray, seed: int = 0) -> float:
    """Cross-validated AUC of a logistic probe that tells real from synthetic embeddings: 0.5
    means indistinguishable; near 1.0 means artefacts a classifier could learn as a label cue."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([real, synthetic])
    y = np.r_[np.zeros(len(real)), np.ones(len(synthetic))]
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    folds = min(5, int(min(len(real), len(synthetic))))
    p = cross_val_predict(probe, x, y, cv=_stratified(folds, seed), method="predict_proba")[:, 1]
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def _stratified(folds: int, seed: int):
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(folds, shuffle=True, random_state=seed)
