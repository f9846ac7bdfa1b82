"""A probe, not a chapter's code: can an adversarial generator (a GAN) make tissue on a CPU where
the diffusion generator did not? Judged exactly as chapter 10 and ``tools/generator_study.py``
judge the diffusion generator, on the book's own split.

The diffusion generator the sample book loads (``book/data/generator/``) trained for 18,000
steps, two hours on a 2-core CPU, and its samples still score KID x 1000 of about 450 (IDC+) and
550-640 (IDC-) against real validation tissue, where the bar is 150. This script trains a small
class-conditional GAN instead, for ``--steps`` steps, on the same training patients' patches at
the same 32 px, and every ``--every`` steps judges its moving-average generator:

- KID x 1000 of 150 synthetic patches per class against real validation patches of that class
  (the same 1,000 validation patches, embedder, subsets and seed as the study's judge);
- the share of them the run's EfficientNet calls IDC+ (label fidelity).

The GAN: a generator of upsampling convolutions with class-conditional BatchNorm (``--cbn``);
a critic with spectral normalisation, sum pooling and a class projection (Miyato & Koyama
2018), hinge loss, Adam (2e-4, betas 0 and 0.9); differentiable augmentation of real and
synthetic patches alike before the critic sees them (colour and translation, Zhao et al. 2020:
the critic cannot memorise 4,551 patches); quarter turns and flips of the real patches (true
symmetries of tissue); a moving average of the generator's weights samples.

    IDC_DATA_DIR=../shared/idc-sample .venv/bin/python tools/gan_probe.py \\
        --run runs/sample --steps 6000 --every 1000 --cbn --out runs/gan_probe.json

Test patients are never used. The output (JSON) holds the judgements, the settings, the
machine and the command (run ``../shared/cpu_ref.py`` beside it for a timing's reference);
``--grid`` writes 16 patches per class as a PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from idc_utils.book import machine
from idc_utils.chapters import profiles
from idc_utils.data import split
from idc_utils.models import embeddings
from idc_utils.serving import predictor
from idc_utils.studies import generator_study as study
from idc_utils.training import diffusion

LATENT = 128
GEN_WIDTHS = (128, 64, 32)  # 4 -> 8 -> 16 -> 32 px
CRITIC = ((32, 1), (64, 2), (128, 2), (256, 2))  # (width, stride): 32 -> 16 -> 8 -> 4 px


def build_generator(size: int, cbn: bool):
    import keras
    from keras import layers

    z = keras.Input((LATENT,))
    y = keras.Input((), dtype="int32")
    h = layers.Concatenate()([z, layers.Embedding(2, LATENT)(y)])
    start = size // 2 ** len(GEN_WIDTHS)
    h = layers.Dense(start * start * GEN_WIDTHS[0])(h)
    h = layers.Reshape((start, start, GEN_WIDTHS[0]))(h)
    for w in GEN_WIDTHS:
        h = layers.UpSampling2D(2)(h)
        h = layers.Conv2D(w, 3, padding="same")(h)
        h = layers.BatchNormalization(center=not cbn, scale=not cbn)(h)
        if cbn:  # each class scales and shifts every channel its own way
            gain = layers.Embedding(2, w, embeddings_initializer="zeros")(y)
            bias = layers.Embedding(2, w, embeddings_initializer="zeros")(y)
            gain, bias = layers.Reshape((1, 1, w))(gain), layers.Reshape((1, 1, w))(bias)
            h = layers.Lambda(lambda t: t[0] * (1 + t[1]) + t[2])([h, gain, bias])
        h = layers.ReLU()(h)
    out = layers.Conv2D(3, 3, padding="same", activation="tanh")(h)
    return keras.Model([z, y], out)


def build_critic(size: int):
    import keras
    import tensorflow as tf
    from keras import layers

    x = keras.Input((size, size, 3))
    y = keras.Input((), dtype="int32")
    h = x
    for w, stride in CRITIC:
        conv = layers.Conv2D(w, 4 if stride == 2 else 3, stride, padding="same")
        h = layers.LeakyReLU(0.1)(layers.SpectralNormalization(conv)(h))
    phi = layers.Lambda(lambda t: tf.reduce_sum(t, [1, 2]))(h)  # sum pooling
    out = layers.SpectralNormalization(layers.Dense(1))(phi)
    proj = layers.Dot(1)([layers.Embedding(2, CRITIC[-1][0])(y), phi])
    return keras.Model([x, y], layers.Add()([out, proj]))


def diff_augment(x, size: int):
    """Colour (brightness, saturation, contrast) and translation by up to size/8 px, drawn per
    patch; differentiable, so the generator learns through it."""
    import tensorflow as tf

    n = tf.shape(x)[0]
    x = x + (tf.random.uniform([n, 1, 1, 1]) - 0.5)
    mean = tf.reduce_mean(x, 3, keepdims=True)
    x = (x - mean) * tf.random.uniform([n, 1, 1, 1], 0.0, 2.0) + mean
    mean = tf.reduce_mean(x, [1, 2, 3], keepdims=True)
    x = (x - mean) * tf.random.uniform([n, 1, 1, 1], 0.5, 1.5) + mean
    pad = size // 8
    padded = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    shift = tf.random.uniform([n, 2], 0, 2 * pad + 1, tf.int32)
    rows = shift[:, :1] + tf.range(size)[None]
    cols = shift[:, 1:] + tf.range(size)[None]
    x = tf.gather(padded, rows, batch_dims=1)
    return tf.gather(x, cols, axis=2, batch_dims=1)


def train_step_fn(gen, critic, ema, size: int, batch: int):
    import keras
    import tensorflow as tf

    opt_g = keras.optimizers.Adam(2e-4, beta_1=0.0, beta_2=0.9)
    opt_c = keras.optimizers.Adam(2e-4, beta_1=0.0, beta_2=0.9)

    @tf.function
    def step(real, labels, decay):
        with tf.GradientTape() as tape:
            fake = gen([tf.random.normal([batch, LATENT]), labels], training=True)
            on_real = critic([diff_augment(real, size), labels], training=True)
            on_fake = critic([diff_augment(fake, size), labels], training=True)
            loss_c = tf.reduce_mean(tf.nn.relu(1 - on_real))
            loss_c += tf.reduce_mean(tf.nn.relu(1 + on_fake))
        grads = tape.gradient(loss_c, critic.trainable_variables)
        opt_c.apply_gradients(zip(grads, critic.trainable_variables))
        with tf.GradientTape() as tape:
            fake = gen([tf.random.normal([batch, LATENT]), labels], training=True)
            loss_g = -tf.reduce_mean(critic([diff_augment(fake, size), labels], training=True))
        grads = tape.gradient(loss_g, gen.trainable_variables)
        opt_g.apply_gradients(zip(grads, gen.trainable_variables))
        for a, b in zip(ema.weights, gen.weights):  # BatchNorm's statistics are copied
            a.assign(decay * a + (1 - decay) * b if a.trainable else b)
        return loss_c, loss_g

    return step


class Sampler:
    """The generator behind the diffusion generator's ``sample`` signature, so that the study's
    own judge (``generator_study.judge_generator``) judges it; steps and guidance do not apply."""

    def __init__(self, gen):
        self.gen = gen

    def sample(self, n: int, label: int, seed: int, *_unused) -> np.ndarray:
        """``n`` uint8 patches of class ``label``, the same for the same seed."""
        z = np.random.default_rng(seed).standard_normal((n, LATENT)).astype(np.float32)
        out = self.gen.predict([z, np.full(n, label, np.int32)], verbose=0, batch_size=256)
        return diffusion.to_uint8(out)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--run", default="runs/sample", help="a run folder with split.csv and models/")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--cbn", action="store_true", help="class-conditional BatchNorm")
    ap.add_argument("--per-class", type=int, default=150)
    ap.add_argument("--out", default="runs/gan_probe.json")
    ap.add_argument("--grid", default=None, help="a PNG of the last judgement's patches")
    args = ap.parse_args()

    import keras

    run = Path(args.run)
    p = profiles.profile_params("sample")
    seed, size = int(p["seed"]), int(p["gen_image_size"])
    ds, df = split.dataset_with_split(None, run / "split.csv")
    train = df[df.split == "train"].sort_values("i")
    x_train = diffusion.to_model_range(ds.images[train["i"].to_numpy()], size)
    y_train = train["label"].to_numpy().astype(np.int32)
    # the study's judge: the same validation patches, embedder and classifier
    val = df[df.split == "val"]
    pick = np.random.default_rng(seed).choice(val["i"].to_numpy(), min(1000, len(val)), False)
    pick = np.sort(pick)
    val_labels = df.set_index("i").loc[pick, "label"].to_numpy().astype(int)
    net = embeddings.embedder(p["embed_backbone"], p["embed_image_size"])

    def embed(x):
        return embeddings.embed(net, x, np.arange(len(x)))

    val_small = diffusion.to_model_range(ds.images[pick], size)
    classifier = predictor.Predictor.load(run / "models" / "efficientnet.keras")

    keras.utils.set_random_seed(seed)
    gen, critic = build_generator(size, args.cbn), build_critic(size)
    ema = build_generator(size, args.cbn)
    ema.set_weights(gen.get_weights())
    step = train_step_fn(gen, critic, ema, size, args.batch)
    rng = np.random.default_rng(seed)
    results = {
        "command": shlex.join([sys.executable.rsplit("/", 1)[-1], *sys.argv]),
        "machine": machine.machine_description(),
        "settings": {**vars(args), "seed": seed, "image_size": size},
        "params": {"generator": gen.count_params(), "critic": critic.count_params()},
        "bars": {"kid_x1000_max": study.KID_BAR_X1000},
        "judged": [],
    }
    trained, t0 = 0.0, time.perf_counter()
    for k in range(1, args.steps + 1):
        idx = rng.choice(len(x_train), args.batch, replace=False)
        x = np.rot90(x_train[idx], int(rng.integers(4)), axes=(1, 2))
        x = np.ascontiguousarray(x[:, :, ::-1] if rng.random() < 0.5 else x)
        decay = np.float32(min(0.999, (1 + k) / (10 + k)))
        loss_c, loss_g = step(x, y_train[idx], decay)
        if k % args.every and k != args.steps:
            continue
        trained += time.perf_counter() - t0  # judging time is not training time
        row = {"step": k, "train_seconds": round(trained, 1)}
        row.update(loss_critic=float(loss_c), loss_generator=float(loss_g))
        row.update(
            study.judge_generator(
                Sampler(ema),
                val_small,
                val_labels,
                embed,
                classifier.probabilities,
                classifier.threshold,
                per_class=args.per_class,
                seed=seed,
            )
        )
        print(json.dumps(row), flush=True)
        results["judged"].append(row)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
        if args.grid:
            from PIL import Image

            rows = [
                np.concatenate(list(Sampler(ema).sample(16, c, 2 * seed + c)), 1) for c in (0, 1)
            ]
            Image.fromarray(np.concatenate(rows, 0)).save(args.grid)
        t0 = time.perf_counter()
    return 0


if __name__ == "__main__":
    sys.exit(main())
