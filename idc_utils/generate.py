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
    mixed_precision: bool = False  # float16 compute (a GPU's tensor cores); weights stay float32
    seed: int = 0
    architecture: int = 2  # bumped when build_denoiser changes: old checkpoints do not resume

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
    angles = 2.0 * math.pi * freqs * ops.cast(x, freqs.dtype)
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
    x = layers.Conv2D(cfg.widths[0], 1)(images)  # the condition enters every block instead
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
    out = layers.Conv2D(3, 1, kernel_initializer="zeros", dtype="float32")(x)
    return keras.Model([images, variance, label], out, name="denoiser")


def diffusion_rates(t):
    """Cosine schedule: signal and noise rates for diffusion times ``t`` in [0, 1]."""
    start, end = math.acos(MAX_SIGNAL_RATE), math.acos(MIN_SIGNAL_RATE)
    angles = start + t * (end - start)
    return np.cos(angles), np.sin(angles)


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize, antialiased (a reduction averages instead of skipping pixels); float32."""
    import tensorflow as tf

    x = tf.image.resize(tf.cast(images, tf.float32), (size, size), antialias=True)
    return x.numpy()


def to_model_range(images_uint8: np.ndarray, size: int = GEN_SIZE) -> np.ndarray:
    """uint8 patches -> float32 in [-1, 1] at ``size`` pixels (bilinear, antialiased)."""
    return (_resize(images_uint8, size) / 127.5 - 1.0).astype(np.float32)


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
    best_step: int = 0  # the step whose weights sample (lowest validation error)

    def sample(
        self, n: int, label: int, seed: int, diffusion_steps: int = 20, guidance: float = 1.0
    ) -> np.ndarray:
        return sample(self, n, label, seed, diffusion_steps, guidance)


def _state_paths(out_dir: Path) -> tuple[Path, Path, Path, Path]:
    return (
        out_dir / "generator.json",
        out_dir / "denoiser.weights.h5",
        out_dir / "ema.weights.h5",
        out_dir / "best.weights.h5",
    )


def _build_pair(cfg: GenConfig):
    """The trained network and its moving average, in float16 compute when asked."""
    import keras

    previous = keras.config.dtype_policy()
    if cfg.mixed_precision:
        keras.config.set_dtype_policy("mixed_float16")
    try:
        network, ema = build_denoiser(cfg), build_denoiser(cfg)
    finally:
        keras.config.set_dtype_policy(previous)
    ema.set_weights(network.get_weights())
    return network, ema


def _check_split(rows: pd.DataFrame, split: str, what: str) -> None:
    if "split" in rows and not (rows["split"] == split).all():
        others = sorted(set(rows["split"]) - {split})
        raise ValueError(
            f"the generator's {what} must be {split} patients only; got rows of {others}. "
            f"Pass df[df.split == '{split}']"
        )


def validation_loss(network, x_val: np.ndarray, y_val: np.ndarray, seed: int = 0) -> float:
    """Mean denoising error on validation patches with noise and noise levels fixed by ``seed``
    (the same draw at every evaluation, so that values are comparable along training)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(x_val.shape).astype(np.float32)
    t = np.linspace(0.05, 0.95, len(x_val), dtype=np.float32).reshape(-1, 1, 1, 1)
    signal, noise_rate = diffusion_rates(t)
    noisy = (signal * x_val + noise_rate * noise).astype(np.float32)
    errors = []
    for s in range(0, len(x_val), 256):
        b = slice(s, s + 256)
        pred = np.asarray(
            network([noisy[b], (noise_rate[b] ** 2).astype(np.float32), y_val[b]], training=False)
        )
        errors.append(np.abs(pred - noise[b]).mean(axis=(1, 2, 3)))
    return float(np.concatenate(errors).mean())


def train_generator(
    images_uint8: np.ndarray,
    rows: pd.DataFrame,
    cfg: GenConfig,
    out_dir: str | Path,
    *,
    val_rows: pd.DataFrame | None = None,
    budget_s: float = 60.0,
    max_steps: int | None = None,
    eval_every: int = 100,
    restart: bool | None = None,
    log=print,
) -> Generator:
    """Train (or continue training) the generator on ``rows`` (column ``i`` indexes
    ``images_uint8``; ``label``; ``split`` all "train") until ``budget_s`` seconds or
    ``max_steps`` steps in total, checkpointing into ``out_dir``. A checkpoint of the same
    configuration and training data is resumed; another is an error.

    With ``val_rows`` (validation patients only), the moving-average network's denoising error
    on them is measured every ``eval_every`` steps, and the weights with the lowest error are the
    ones kept for sampling: validation patients decide when the generator was best, the training
    patients are all it learns from, and test patients never come near it.

    ``restart``: a checkpoint of another configuration or training set is deleted and training
    starts over (the book's chapter does this when its parameters or split change); ``None``
    restarts when ``$IDC_FORCE_TRAIN`` is set (``make book FORCE=1``), else such a checkpoint is
    an error."""
    import os
    import shutil

    import keras
    import tensorflow as tf

    from .train import split_fingerprint

    _check_split(rows, "train", "training data")
    if val_rows is not None:
        _check_split(val_rows, "val", "stopping data")
    if rows["label"].nunique() < 2:
        raise ValueError("the generator needs patches of both classes")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path, weights_path, ema_path, best_path = _state_paths(out_dir)
    fingerprint = split_fingerprint(rows.assign(split="train"))
    keras.utils.set_random_seed(cfg.seed)
    network, ema = _build_pair(cfg)
    steps, history, seconds, best = 0, [], 0.0, {"step": 0, "val_loss": math.inf}
    force = os.environ.get("IDC_FORCE_TRAIN", "") not in ("", "0")
    if state_path.exists() and force and restart is None:
        log(f"[generator] IDC_FORCE_TRAIN is set: starting over in {out_dir}")
        shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
    if state_path.exists():
        state = json.loads(state_path.read_text())
        changed = state["config"] != cfg.to_dict() or state["data_fingerprint"] != fingerprint
        if changed and restart:
            log(f"[generator] configuration or training set changed: starting over in {out_dir}")
            shutil.rmtree(out_dir)
            out_dir.mkdir(parents=True)
            state = None
        elif changed:
            raise ValueError(
                f"{out_dir} holds a generator of another configuration or training set; "
                "use a new folder, delete it, or pass restart=True to start again"
            )
    if state_path.exists():
        network.load_weights(weights_path)
        ema.load_weights(ema_path)
        steps, history, seconds = state["steps"], state["history"], state["seconds"]
        best = state.get("best", best)
        log(f"[generator] resuming at step {steps}")
    x_all = to_model_range(images_uint8[rows["i"].to_numpy()], cfg.image_size)
    y_all = rows["label"].to_numpy().astype(np.int32)
    x_val = y_val = None
    if val_rows is not None and len(val_rows):
        pick = val_rows.sample(min(len(val_rows), 512), random_state=cfg.seed).sort_index()
        x_val = to_model_range(images_uint8[pick["i"].to_numpy()], cfg.image_size)
        y_val = pick["label"].to_numpy().astype(np.int32)
    optimizer = keras.optimizers.AdamW(cfg.lr, weight_decay=1e-4)
    if cfg.mixed_precision:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    start, end = math.acos(MAX_SIGNAL_RATE), math.acos(MIN_SIGNAL_RATE)

    @tf.function
    def train_step(x, y, noise, t):
        angles = start + t * (end - start)
        signal, noise_rate = tf.cos(angles), tf.sin(angles)
        noisy = signal * x + noise_rate * noise
        with tf.GradientTape() as tape:
            pred = network([noisy, noise_rate**2, y], training=True)
            loss = tf.reduce_mean(tf.abs(tf.cast(pred, tf.float32) - noise))
            scaled = optimizer.scale_loss(loss) if cfg.mixed_precision else loss
        grads = tape.gradient(scaled, network.trainable_weights)
        optimizer.apply_gradients(zip(grads, network.trainable_weights))
        for w, e in zip(network.weights, ema.weights):
            e.assign(cfg.ema * e + (1 - cfg.ema) * w)
        return loss

    def evaluate_and_keep_best():
        if x_val is None:
            return None
        v = validation_loss(ema, x_val, y_val, cfg.seed)
        if v < best["val_loss"]:
            best.update(step=steps, val_loss=v)
            ema.save_weights(best_path)
        return v

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
            entry = {"step": steps, "loss": float(np.mean(losses))}
            if steps % eval_every == 0:
                entry["val_loss"] = evaluate_and_keep_best()
            history.append(entry)
            losses = []
    if losses:
        history.append(
            {"step": steps, "loss": float(np.mean(losses)), "val_loss": evaluate_and_keep_best()}
        )
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
                "best": best,
                "trained_on": "training patients only",
                "stopped_on": "validation patients" if x_val is not None else "the time budget",
            },
            indent=1,
        )
    )
    log(f"[generator] {steps} steps in {seconds:.0f} s (budget {budget_s:.0f} s)")
    return load_generator(out_dir)


def load_generator(out_dir: str | Path) -> Generator:
    """The saved generator, with the moving-average weights that did best on validation
    patients (or the last ones when training had no validation patients)."""
    state_path, _, ema_path, best_path = _state_paths(Path(out_dir))
    if not state_path.exists():
        raise FileNotFoundError(
            f"no generator in {out_dir}: train one with generate.train_generator "
            "(the synthetic-patches chapter does)"
        )
    state = json.loads(state_path.read_text())
    cfg = GenConfig.from_dict(state["config"])
    _, ema = _build_pair(cfg)
    best = state.get("best", {})
    use_best = best.get("step", 0) > 0 and best_path.exists()
    ema.load_weights(best_path if use_best else ema_path)
    return Generator(
        cfg,
        ema,
        state["steps"],
        pd.DataFrame(state["history"]),
        state["data_fingerprint"],
        state["seconds"],
        best_step=int(best["step"]) if use_best else int(state["steps"]),
    )


def _denoise_fn(gen: Generator):
    """One compiled call of the network for a batch, with the class-free estimate computed in
    the same batch (classifier-free guidance costs one pass of twice the size, not two)."""
    import tensorflow as tf

    fn = getattr(gen, "_denoise", None)
    if fn is None:

        @tf.function(reduce_retracing=True)
        def fn(noisy, variance, labels, guidance):
            n = tf.shape(noisy)[0]
            free = tf.fill([n], NULL_LABEL)
            both = gen.network(
                [
                    tf.concat([noisy, noisy], 0),
                    tf.concat([variance, variance], 0),
                    tf.concat([labels, free], 0),
                ],
                training=False,
            )
            cond, uncond = both[:n], both[n:]
            return cond + guidance * (cond - uncond)

        gen._denoise = fn
    return fn


def sample(
    gen: Generator,
    n: int,
    label: int,
    seed: int,
    diffusion_steps: int = 20,
    guidance: float = 1.0,
    batch_size: int = 256,
):
    """``n`` synthetic patches of class ``label`` (uint8, ``image_size`` pixels), the same for
    the same seed: the starting noise comes from ``seed`` and DDIM's steps are deterministic.
    ``guidance`` > 0 pushes the samples towards their class (classifier-free guidance: the
    class-conditional noise estimate moved away from the unconditional one by that factor)."""
    size = gen.cfg.image_size
    noise0 = np.random.default_rng(seed).standard_normal((n, size, size, 3)).astype(np.float32)
    denoise = _denoise_fn(gen)
    out = []
    step = 1.0 / diffusion_steps
    for s in range(0, n, batch_size):
        noisy = noise0[s : s + batch_size]
        m = len(noisy)
        labels = np.full(m, int(label), np.int32)
        pred_images = noisy
        for k in range(diffusion_steps):
            t = np.full((m, 1, 1, 1), 1.0 - k * step, np.float32)
            signal, noise_rate = diffusion_rates(t)
            variance = (noise_rate**2).astype(np.float32)
            pred_noise = denoise(noisy, variance, labels, np.float32(guidance)).numpy()
            pred_images = (noisy - noise_rate * pred_noise) / signal
            next_signal, next_noise = diffusion_rates(t - step)
            noisy = (next_signal * pred_images + next_noise * pred_noise).astype(np.float32)
        out.append(to_uint8(np.clip(pred_images, -1, 1)))
    return np.concatenate(out) if out else np.zeros((0, size, size, 3), np.uint8)


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
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict

    from .balance import linear_head, one_blas_thread

    x = np.concatenate([real, synthetic])
    y = np.r_[np.zeros(len(real)), np.ones(len(synthetic))]
    folds = min(5, int(min(len(real), len(synthetic))))
    with one_blas_thread():
        p = cross_val_predict(
            linear_head(C=0.1, seed=seed),
            x,
            y,
            cv=_stratified(folds, seed),
            method="predict_proba",
        )[:, 1]
    return float(roc_auc_score(y, p))


def _stratified(folds: int, seed: int):
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(folds, shuffle=True, random_state=seed)


# ----------------------------------------------------------------------------- sizes and sets


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


def with_synthetic_rows(
    images: np.ndarray, split_df: pd.DataFrame, synthetic: np.ndarray, labels
) -> tuple[np.ndarray, pd.DataFrame]:
    """The dataset with synthetic patches appended as **training** rows (patient
    ``synthetic``), for retraining a classifier on real + synthetic patches. Validation and test
    rows are untouched."""
    if synthetic.shape[1:] != images.shape[1:]:
        raise ValueError(
            f"synthetic patches are {synthetic.shape[1:]}, the dataset's {images.shape[1:]}: "
            "resize them with generate.to_patch_size first"
        )
    extra = pd.DataFrame(
        {
            "i": np.arange(len(images), len(images) + len(synthetic)),
            "label": np.asarray(labels).astype(int),
            "patient_id": "synthetic",
            "split": "train",
        }
    )
    return np.concatenate([np.asarray(images), synthetic]), pd.concat(
        [split_df, extra], ignore_index=True
    )


def retrain_cnn_with_synthetic(
    images: np.ndarray,
    split_df: pd.DataFrame,
    synthetic: np.ndarray,
    labels,
    cnn_card: dict,
    out_dir,
    *,
    data_fingerprint: str,
    name: str = "cnn_synthetic",
    log=print,
):
    """Chapter 4's CNN recipe (read from its model card) trained again on real + synthetic
    training patches, with as many steps per epoch as the real-only CNN took: a difference
    between the two is then the synthetic patches', not more training's. Validation patients
    choose its threshold as before."""
    from dataclasses import replace

    from . import train

    cfg = train.TrainConfig.from_dict(cnn_card["training"])
    n_real = int((split_df["split"] == "train").sum())
    steps = cfg.steps_per_epoch or int(np.ceil(n_real / cfg.batch_size))
    cfg = replace(cfg, steps_per_epoch=steps)
    patches = (
        to_patch_size(synthetic, images.shape[1])
        if synthetic.shape[1] != images.shape[1]
        else synthetic
    )
    all_images, all_rows = with_synthetic_rows(images, split_df, patches, labels)
    return train.fit(
        cfg, all_images, all_rows, out_dir, name, data_fingerprint=data_fingerprint, log=log
    )


# ----------------------------------------------------------------------------- the chapter's checks

FIDELITY_PAIRS = (
    ("real train vs real validation (the floor)", "train", "val"),
    ("real train vs real validation, both at the generator's size", "train_rt", "val_rt"),
    ("synthetic vs real validation at the generator's size", "synthetic", "val_rt"),
    ("synthetic vs real train at the generator's size", "synthetic", "train_rt"),
)


def fidelity_table(emb: dict, labels: dict, seed: int = 0, subset_size: int = 100) -> pd.DataFrame:
    """KID per class for the pairs of :data:`FIDELITY_PAIRS`. ``emb`` and ``labels`` hold the
    sets ``train``, ``val`` (real, 50 px), ``train_rt``, ``val_rt`` (real, round trip through the
    generator's size) and ``synthetic``; each row gives KID x 1000 and its spread over subsets."""
    rows = []
    for name, a, b in FIDELITY_PAIRS:
        for c, cname in ((0, "IDC-"), (1, "IDC+")):
            xa = emb[a][np.asarray(labels[a]) == c]
            xb = emb[b][np.asarray(labels[b]) == c]
            m = min(subset_size, len(xa), len(xb))
            if m < 2:
                continue
            value, spread = kid(xa, xb, subset_size=m, seed=seed)
            rows.append(
                {
                    "comparison": name,
                    "class": cname,
                    "KID x 1000": 1000 * value,
                    "spread x 1000": 1000 * spread,
                }
            )
    table = pd.DataFrame(rows).pivot(index="comparison", columns="class")
    table.columns = [f"{c} {m}" for m, c in table.columns]
    return table.loc[[n for n, _, _ in FIDELITY_PAIRS if n in table.index]]


@dataclass
class Memorisation:
    """Nearest-training-neighbour distances of synthetic patches against those of real patches
    of new patients (validation), in embedding and pixel space."""

    distances: dict  # (space, "synthetic" | "validation") -> distances
    nearest: dict  # space -> index into the reference set of each synthetic patch's neighbour

    def summary(self) -> pd.DataFrame:
        rows = []
        for space in ("embedding", "pixel"):
            syn, ref = self.distances[space, "synthetic"], self.distances[space, "validation"]
            close = np.quantile(ref, 0.01)
            rows.append(
                {
                    "space": space,
                    "median, synthetic -> train": float(np.median(syn)),
                    "median, validation -> train": float(np.median(ref)),
                    "ratio": float(np.median(syn) / np.median(ref)),
                    "synthetic closer than 99% of validation patches": float((syn < close).mean()),
                }
            )
        return pd.DataFrame(rows).set_index("space")

    def closest(self, space: str, k: int = 6) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the ``k`` synthetic patches nearest to a training patch, and those
        training patches' positions in the reference set."""
        order = np.argsort(self.distances[space, "synthetic"])[:k]
        return order, self.nearest[space][order]


def memorisation(syn_emb, syn_px, train_emb, train_px, val_emb, val_px) -> Memorisation:
    """Distances from each synthetic patch and each validation patch to its nearest training
    patch, in embedding space and in pixels (at the generator's size). The training patches
    given are the ones searched (see :func:`memorisation_reference` for large sets)."""
    distances, nearest = {}, {}
    for space, s, r, v in (
        ("embedding", syn_emb, train_emb, val_emb),
        ("pixel", syn_px, train_px, val_px),
    ):
        distances[space, "synthetic"], nearest[space] = nearest_distances(s, r)
        distances[space, "validation"], _ = nearest_distances(v, r)
    return Memorisation(distances, nearest)


def label_fidelity(prob: np.ndarray, labels, threshold: float) -> pd.DataFrame:
    """How a trained classifier calls synthetic patches of each class (not used to filter
    them): the share called IDC+ at its operating threshold, and the median P(IDC+)."""
    labels = np.asarray(labels).astype(int)
    rows = []
    for c in (1, 0):
        p = np.asarray(prob)[labels == c]
        rows.append(
            {
                "patches": int(len(p)),
                "called IDC+": float((p >= threshold).mean()) if len(p) else np.nan,
                "median P(IDC+)": float(np.median(p)) if len(p) else np.nan,
            }
        )
    return pd.DataFrame(rows, index=["synthetic IDC+", "synthetic IDC-"])


def memorisation_reference(n_train: int, max_reference: int = 20000, seed: int = 0) -> np.ndarray:
    """Positions of the training patches searched for each synthetic patch's nearest neighbour:
    all of them up to ``max_reference``, else a seeded draw (the full Kaggle set has 190,000)."""
    if n_train <= max_reference:
        return np.arange(n_train)
    return np.sort(np.random.default_rng(seed).choice(n_train, max_reference, replace=False))


def compare_cnns(
    baseline_path,
    retrained_path,
    images: np.ndarray,
    test_rows: pd.DataFrame,
    *,
    n_boot=1000,
    seed=0,
) -> pd.DataFrame:
    """Two saved models (each at its own validation threshold) on the same test patients: AUC,
    recall and precision with patient-bootstrap CIs, and the paired AUC difference."""
    from . import evaluate
    from .predict import Predictor

    y = test_rows["label"].to_numpy()
    patients = test_rows["patient_id"].to_numpy()
    patches = np.asarray(images[test_rows["i"].to_numpy()])
    rows, probs = [], {}
    for name, path in (
        ("CNN, real patches", baseline_path),
        ("CNN, real + synthetic", retrained_path),
    ):
        model = Predictor.load(path)
        p = model.probabilities(patches)
        probs[name] = p
        ci = evaluate.bootstrap_metrics(y, p, patients, model.threshold, n_boot, seed)
        rows.append(
            {
                "model": name,
                **{
                    m: "{:.3f} [{:.3f}, {:.3f}]".format(*ci.loc[m, ["estimate", "low", "high"]])
                    for m in ("auc", "recall", "precision")
                },
            }
        )
    d = evaluate.paired_auc_gain(
        y, probs["CNN, real + synthetic"], probs["CNN, real patches"], patients, n_boot, seed
    )
    rows[1]["AUC vs real only"] = f"{d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"
    rows[0]["AUC vs real only"] = ""
    return pd.DataFrame(rows).set_index("model")


def why_sentence(gain: bool, probe_auc: float, idc_pos_called: float, memorised: float) -> str:
    """The reasons this run's measures give for the gain study's outcome, one clause per
    measure that speaks (``probe_auc``: real vs synthetic at the same size; ``idc_pos_called``:
    share of synthetic IDC+ the classifier calls IDC+; ``memorised``: share of synthetic patches
    closer to a training patch than 99% of new patients' patches are)."""
    clauses = []
    if probe_auc >= 0.9:
        clauses.append(
            f"a probe tells the synthetic patches from real ones at the same size (AUC "
            f"{probe_auc:.2f}), so they carry a cue about the generator, not the tissue"
        )
    if idc_pos_called < 0.8:
        clauses.append(
            f"the chapter-5 model calls only {idc_pos_called:.0%} of the synthetic IDC+ patches "
            "IDC+, so the class detail is not all there"
        )
    if memorised >= 0.05:
        clauses.append(
            f"{memorised:.0%} of them sit closer to a training patch than new patients' patches "
            "do, so some are near-copies"
        )
    if gain:
        head = "The synthetic patches helped on these test patients."
        tail = (
            " Before trusting that, check that it holds for other seeds of the generator itself"
            + ("; and note that " + "; ".join(clauses) if clauses else "")
            + ": a gain that rides on a shortcut can vanish on another lab's slides."
        )
        return head + tail
    clauses.append(
        "a generator trained on the training patients interpolates between them and adds no "
        "new patient, stain or architecture: SMOTE's limit, reached at far greater cost"
    )
    text = "; ".join(clauses)
    return "Why no gain? " + text[0].upper() + text[1:] + "."
