"""Input pipeline and augmentation.

Design: patches are decoded **once** (the uint8 cache of :mod:`idc_utils.data`) and fed to the
model as raw 50x50 uint8 RGB. Resizing and scaling live *inside* the Keras models, so that
training, evaluation, the ``predict`` CLI and the app cannot disagree:

* :func:`input_layers` resizes 50 -> ``image_size`` (bilinear) and scales the way the backbone
  expects (``[0, 1]`` for the CNN as in the source paper, ``(x - 127) / 128`` for
  EfficientNet-Lite0, raw ``[0, 255]`` for Keras EfficientNetB0 which scales internally);
* :class:`Augment` holds the histology augmentations (flips and 90-degree turns, which are
  lossless, rotation +-15 deg, translation, zoom, brightness, contrast, and HED stain jitter,
  Tellez et al. 2019). Training applies it in the input pipeline, on raw 50x50 patches, so the
  saved model carries no training-only layer and can be XLA-compiled on a GPU.

:func:`patch_batches` is the ``tf.data`` pipeline: it shuffles *indices*, batches them, gathers
the patches from the (memory-mapped) array and prefetches, so the full 277k set never has to be
copied into a tensor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .data import PATCH_SIZE

#: how each backbone wants its pixels: (scale, offset) applied after resizing, to [0, 255] input
SCALING = {
    "unit": (1.0 / 255.0, 0.0),  # [0, 1], the source paper's scaling
    "lite": (1.0 / 128.0, -127.0 / 128.0),  # EfficientNet-Lite: (x - 127) / 128
    "raw": (1.0, 0.0),  # keras EfficientNetB0 rescales/normalises inside
}

# Ruifrok & Johnston (2001) stain vectors for H&E-DAB, rows = hematoxylin, eosin, DAB
_RGB_FROM_HED = np.array(
    [[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=np.float32
)
_RGB_FROM_HED = _RGB_FROM_HED / np.linalg.norm(_RGB_FROM_HED, axis=1, keepdims=True)
_HED_FROM_RGB = np.linalg.inv(_RGB_FROM_HED).astype(np.float32)


@dataclass(frozen=True)
class AugmentConfig:
    """Histology augmentation strengths (0 turns one off)."""

    flips: bool = True  # horizontal and vertical flips
    rot90: bool = True  # random multiples of 90 degrees: lossless, tissue has no "up"
    rotation_deg: float = 15.0  # small free rotation, as in the source paper
    translate: float = 0.1  # fraction of the patch
    zoom: float = 0.1  # +- fraction
    brightness: float = 0.1  # +- fraction of the value range
    contrast: float = 0.1  # +- factor
    hed: float = 0.03  # HED stain jitter sigma (Tellez et al. 2019)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> AugmentConfig | None:
        return None if d is None else cls(**d)

    @classmethod
    def none(cls) -> AugmentConfig:
        return cls(False, False, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    @classmethod
    def paper(cls) -> AugmentConfig:
        """The source paper's strengths (rotation +-15 degrees, 0.1 shift and zoom, brightness,
        contrast) with this book's lossless flips, quarter turns and stain jitter. The profiles
        train without the free rotation, shift and zoom (chapter 6's recipe study)."""
        return cls()


def _keras():
    import keras

    return keras


def hed_jitter(images, sigma: float, seed_gen, value_range: float = 255.0):
    """Perturb each image's hematoxylin, eosin and DAB concentrations: ``s * a + b`` with
    ``a ~ U(1 - sigma, 1 + sigma)`` and ``b ~ U(-sigma, sigma)`` per image and stain."""
    from keras import ops, random

    eps = 1e-6
    x = ops.clip(ops.cast(images, "float32") / value_range, eps, 1.0)
    od = -ops.log(x)  # optical density
    hed = ops.matmul(od, ops.convert_to_tensor(_HED_FROM_RGB))
    shape = (ops.shape(images)[0], 1, 1, 3)
    alpha = random.uniform(shape, 1.0 - sigma, 1.0 + sigma, seed=seed_gen)
    beta = random.uniform(shape, -sigma, sigma, seed=seed_gen)
    hed = hed * alpha + beta
    od = ops.matmul(hed, ops.convert_to_tensor(_RGB_FROM_HED))
    rgb = ops.exp(-ops.maximum(od, 0.0))
    return ops.cast(ops.clip(rgb * value_range, 0.0, value_range), images.dtype)


def _register(cls):
    return _keras().saving.register_keras_serializable(package="idc_utils")(cls)


def _augment_layer_class():
    keras = _keras()
    from keras import ops, random

    @_register
    class Augment(keras.layers.Layer):
        """All histology augmentations in one layer; identity unless ``training``."""

        def __init__(self, config: dict | None = None, seed: int = 0, **kw):
            super().__init__(**kw)
            self.config = dict(config or AugmentConfig().as_dict())
            self.seed = int(seed)
            c = AugmentConfig(**self.config)
            self.seed_gen = random.SeedGenerator(self.seed)
            L = keras.layers
            f32 = {"dtype": "float32"}  # augment in float32 even under a mixed-precision policy
            self.steps = []
            if c.flips:
                self.steps.append(
                    L.RandomFlip("horizontal_and_vertical", seed=self.seed + 1, **f32)
                )
            self.rot90 = c.rot90
            self.rotation = float(c.rotation_deg)
            self.translate = float(c.translate)
            self.zoom = float(c.zoom)
            self.photometric = []
            if c.brightness:
                self.photometric.append(
                    L.RandomBrightness(
                        c.brightness, value_range=(0.0, 255.0), seed=self.seed + 5, **f32
                    )
                )
            if c.contrast:
                self.photometric.append(
                    L.RandomContrast(
                        c.contrast, value_range=(0.0, 255.0), seed=self.seed + 6, **f32
                    )
                )
            self.hed = float(c.hed)

        def build(self, input_shape):
            for step in self.steps + self.photometric:
                step.build(input_shape)
            self.built = True

        def _quarter_turns(self, x):
            """Rotate each patch by its own random multiple of 90 degrees (exact, no
            interpolation)."""
            n = ops.shape(x)[0]
            k = random.randint((n,), 0, 4, seed=self.seed_gen)
            odd = ops.reshape(ops.equal(k % 2, 1), (-1, 1, 1, 1))
            x = ops.where(odd, ops.flip(ops.transpose(x, (0, 2, 1, 3)), 1), x)  # 90 degrees
            half = ops.reshape(k >= 2, (-1, 1, 1, 1))
            return ops.where(half, ops.flip(ops.flip(x, 1), 2), x)  # + 180 degrees

        def _affine(self, x):
            """Rotation, zoom and shift as ONE affine map per patch: a single bilinear
            interpolation instead of three, which matters on 50x50 pixels."""
            import math

            n = ops.shape(x)[0]
            h, w = x.shape[1], x.shape[2]
            theta = random.uniform((n,), -self.rotation, self.rotation, seed=self.seed_gen) * (
                math.pi / 180
            )
            scale = random.uniform((n,), 1 - self.zoom, 1 + self.zoom, seed=self.seed_gen)
            tx = random.uniform((n,), -self.translate, self.translate, seed=self.seed_gen) * w
            ty = random.uniform((n,), -self.translate, self.translate, seed=self.seed_gen) * h
            cos, sin = ops.cos(theta) / scale, ops.sin(theta) / scale
            cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
            # output pixel (x, y) samples input at A (p - c) + c - t, A = rotation(-theta) / scale
            a2 = cx - cos * cx + sin * cy - tx
            b2 = cy - sin * cx - cos * cy - ty
            zeros = ops.zeros_like(cos)
            m = ops.stack([cos, -sin, a2, sin, cos, b2, zeros, zeros], axis=1)
            return ops.image.affine_transform(x, m, interpolation="bilinear", fill_mode="reflect")

        def call(self, x, training=None):
            if not training:
                return x
            x = ops.cast(x, "float32")
            for step in self.steps:
                x = step(x, training=True)
            if self.rot90:
                x = self._quarter_turns(x)
            if self.rotation or self.zoom or self.translate:
                x = self._affine(x)
            for step in self.photometric:
                x = step(x, training=True)
            if self.hed:
                x = hed_jitter(x, self.hed, self.seed_gen)
            return ops.clip(x, 0.0, 255.0)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "config": self.config, "seed": self.seed}

    return Augment


_AUGMENT = None


def Augment(config: AugmentConfig | dict | None = None, seed: int = 0, **kw):
    """Build the augmentation layer (a Keras layer; registered for saving)."""
    global _AUGMENT
    if _AUGMENT is None:
        _AUGMENT = _augment_layer_class()
    if isinstance(config, AugmentConfig):
        config = config.as_dict()
    return _AUGMENT(config, seed, **kw)


def input_layers(x, image_size: int, scaling: str, name: str = "pre"):
    """Resize (bilinear) and scale a raw ``[0, 255]`` tensor inside a functional model."""
    keras = _keras()
    scale, offset = SCALING[scaling]
    x = keras.layers.Resizing(
        image_size, image_size, interpolation="bilinear", name=f"{name}_resize"
    )(x)
    if (scale, offset) != (1.0, 0.0):
        x = keras.layers.Rescaling(scale, offset, name=f"{name}_scale")(x)
    return x


def resize_and_scale(images: np.ndarray, image_size: int, scaling: str) -> np.ndarray:
    """The same resize + scaling as :func:`input_layers`, eagerly on a NumPy batch (for figures)."""
    import tensorflow as tf

    scale, offset = SCALING[scaling]
    out = tf.image.resize(tf.cast(images, tf.float32), (image_size, image_size), method="bilinear")
    return (out.numpy() * scale + offset).astype(np.float32)


def patch_batches(
    images: np.ndarray,
    index: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    repeat: bool = False,
):
    """``tf.data`` pipeline of ``(uint8 patches, float labels)`` batches.

    ``index`` selects rows of ``images`` (e.g. ``manifest['i']`` of the train split). Shuffling
    happens on indices each epoch (seeded), batches are gathered from the array with NumPy (the
    array may be a memory map), and prefetching overlaps loading with the model's work.
    """
    import tensorflow as tf

    index = np.asarray(index, dtype=np.int64)
    labels_arr = (
        np.zeros(len(index), np.float32) if labels is None else np.asarray(labels, np.float32)
    )
    if len(labels_arr) != len(index):
        raise ValueError(f"{len(index)} indices but {len(labels_arr)} labels")
    h, w, c = images.shape[1:]

    def gather(rows):
        rows = np.asarray(rows)
        order = np.argsort(index[rows], kind="stable")  # sorted reads are kinder to a memory map
        got = np.empty((len(rows), h, w, c), np.uint8)
        got[order] = images[index[rows][order]]
        return got, labels_arr[rows]

    ds = tf.data.Dataset.range(len(index))
    if shuffle:
        ds = ds.shuffle(len(index), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size)

    def load(rows):
        x, y = tf.numpy_function(gather, [rows], [tf.uint8, tf.float32], stateful=False)
        x.set_shape([None, h, w, c])
        y.set_shape([None])
        return x, y

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def patch_array(images: np.ndarray, index) -> np.ndarray:
    """Gather patches into one in-memory uint8 array (small splits, figures)."""
    return np.asarray(images[np.asarray(index, dtype=np.int64)])


def hed_channels(patch: np.ndarray) -> np.ndarray:
    """Hematoxylin, eosin and DAB optical densities of a patch, ``(H, W, 3)`` (for figures)."""
    x = np.clip(patch.astype(np.float32) / 255.0, 1e-6, 1.0)
    return np.maximum(-np.log(x) @ _HED_FROM_RGB, 0)


__all__ = [
    "AugmentConfig",
    "Augment",
    "SCALING",
    "PATCH_SIZE",
    "input_layers",
    "resize_and_scale",
    "patch_batches",
    "patch_array",
    "hed_jitter",
]


def pipeline_throughput(pipe) -> tuple[int, float]:
    """One full pass over a ``tf.data`` pipeline: ``(patches, seconds)``."""
    import time

    n, t0 = 0, time.perf_counter()
    for _, y in pipe:
        n += len(y)
    return n, time.perf_counter() - t0
