"""Histology augmentation in one Keras layer.

:class:`Augment` holds flips and 90-degree turns (lossless: tissue has no "up"), rotation +-15
deg, translation and zoom (one affine map), brightness, contrast, and HED stain jitter (Tellez et
al. 2019). Training applies it in the input pipeline, on raw 50x50 patches, so the saved model
carries no training-only layer and can be XLA-compiled on a GPU. :class:`AugmentConfig` holds the
strengths a profile trains with; ``AugmentConfig.paper()`` the augmentations the source paper
names, and :data:`PAPER_STATES` what the paper says of each (it gives a strength for the rotation
only).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from idc_utils.models.stain import hed_jitter


@dataclass(frozen=True)
class AugmentConfig:
    """Histology augmentation strengths (0 turns one off)."""

    flips: bool = True  # horizontal and vertical flips
    rot90: bool = True  # random multiples of 90 degrees: lossless, tissue has no "up"
    rotation_deg: float = 15.0  # small free rotation, +-15 degrees as in the source paper
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
        """Every augmentation the source paper names, on: its rotation of +-15 degrees (the only
        strength it states), shift, zoom, brightness and contrast at this book's strengths (the
        paper names them without one), with this book's flips, quarter turns and stain jitter.
        The profiles train without the free rotation, shift and zoom (the recipe study of
        chapter 8)."""
        return cls()


#: what the source paper says of each augmentation: it states a strength for the rotation only
#: and names shift, zoom, brightness and contrast without one
PAPER_STATES = {
    "flips": "not stated",
    "rot90": "not stated",
    "rotation_deg": "15 (+-15 degrees)",
    "translate": "named, strength not stated",
    "zoom": "named, strength not stated",
    "brightness": "named, strength not stated",
    "contrast": "named, strength not stated",
    "hed": "not stated",
}

#: the augmentations whose strength the paper states (PAPER_STATES)
PAPER_STRENGTHS = {"rotation_deg": 15.0}


def quarter_turns(x, seed_gen):
    """Rotate each patch of a batch by its own random multiple of 90 degrees (exact, no
    interpolation)."""
    from keras import ops, random

    n = ops.shape(x)[0]
    k = random.randint((n,), 0, 4, seed=seed_gen)
    odd = ops.reshape(ops.equal(k % 2, 1), (-1, 1, 1, 1))
    x = ops.where(odd, ops.flip(ops.transpose(x, (0, 2, 1, 3)), 1), x)  # 90 degrees
    half = ops.reshape(k >= 2, (-1, 1, 1, 1))
    return ops.where(half, ops.flip(ops.flip(x, 1), 2), x)  # + 180 degrees


def affine(x, rotation_deg: float, zoom: float, translate: float, seed_gen):
    """Rotation, zoom and shift as ONE affine map per patch: a single bilinear interpolation
    instead of three, which matters on 50x50 pixels."""
    import math

    from keras import ops, random

    n = ops.shape(x)[0]
    h, w = x.shape[1], x.shape[2]
    theta = random.uniform((n,), -rotation_deg, rotation_deg, seed=seed_gen) * (math.pi / 180)
    scale = random.uniform((n,), 1 - zoom, 1 + zoom, seed=seed_gen)
    tx = random.uniform((n,), -translate, translate, seed=seed_gen) * w
    ty = random.uniform((n,), -translate, translate, seed=seed_gen) * h
    cos, sin = ops.cos(theta) / scale, ops.sin(theta) / scale
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    # output pixel (x, y) samples input at A (p - c) + c - t, A = rotation(-theta) / scale
    a2 = cx - cos * cx + sin * cy - tx
    b2 = cy - sin * cx - cos * cy - ty
    zeros = ops.zeros_like(cos)
    m = ops.stack([cos, -sin, a2, sin, cos, b2, zeros, zeros], axis=1)
    return ops.image.affine_transform(x, m, interpolation="bilinear", fill_mode="reflect")


def _keras_steps(c: AugmentConfig, seed: int) -> tuple[list, list]:
    """Keras's own random layers that the config asks for: the flips (applied first) and the
    photometric ones (brightness, contrast; applied after the geometric ones)."""
    from keras import layers

    f32 = {"dtype": "float32"}  # augment in float32 even under a mixed-precision policy
    flips = [layers.RandomFlip("horizontal_and_vertical", seed=seed + 1, **f32)] if c.flips else []
    photometric = []
    if c.brightness:
        photometric.append(
            layers.RandomBrightness(c.brightness, value_range=(0.0, 255.0), seed=seed + 5, **f32)
        )
    if c.contrast:
        photometric.append(
            layers.RandomContrast(c.contrast, value_range=(0.0, 255.0), seed=seed + 6, **f32)
        )
    return flips, photometric


def _augment_layer_class():
    """The Keras layer class, made on first use so that importing this module does not import
    TensorFlow; registered under ``idc_utils>Augment`` for saving and loading."""
    import keras
    from keras import ops, random

    @keras.saving.register_keras_serializable(package="idc_utils")
    class Augment(keras.layers.Layer):
        """All histology augmentations in one layer; identity unless ``training``."""

        def __init__(self, config: dict | None = None, seed: int = 0, **kw):
            super().__init__(**kw)
            self.config = dict(config or AugmentConfig().as_dict())
            self.seed = int(seed)
            self.strengths = AugmentConfig(**self.config)
            self.seed_gen = random.SeedGenerator(self.seed)
            self.steps, self.photometric = _keras_steps(self.strengths, self.seed)

        def build(self, input_shape):
            for step in self.steps + self.photometric:
                step.build(input_shape)
            self.built = True

        def call(self, x, training=None):
            if not training:
                return x
            c = self.strengths
            x = ops.cast(x, "float32")
            for step in self.steps:
                x = step(x, training=True)
            if c.rot90:
                x = quarter_turns(x, self.seed_gen)
            if c.rotation_deg or c.zoom or c.translate:
                x = affine(x, float(c.rotation_deg), float(c.zoom), c.translate, self.seed_gen)
            for step in self.photometric:
                x = step(x, training=True)
            if c.hed:
                x = hed_jitter(x, float(c.hed), self.seed_gen)
            return ops.clip(x, 0.0, 255.0)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "config": self.config, "seed": self.seed}

    return Augment


_AUGMENT = None


def Augment(config: AugmentConfig | dict | None = None, seed: int = 0, **kw):
    """The augmentation layer (a Keras layer, registered for saving) with ``config``'s
    strengths."""
    global _AUGMENT
    if _AUGMENT is None:
        _AUGMENT = _augment_layer_class()
    if isinstance(config, AugmentConfig):
        config = config.as_dict()
    return _AUGMENT(config, seed, **kw)


def register_layers() -> None:
    """Register the package's Keras layers, so that a model holding one loads."""
    Augment()
