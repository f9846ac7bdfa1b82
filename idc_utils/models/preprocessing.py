"""Preprocessing inside the model: resize 50 -> ``image_size`` (bilinear) and scale the way the
backbone expects (``[0, 1]`` for the CNN as in the source paper, ``(x - 127) / 128`` for
EfficientNet-Lite0, raw ``[0, 255]`` for Keras EfficientNetB0, which scales internally).

Patches are decoded **once** and fed to every model as raw 50x50 uint8 RGB; because resizing and
scaling are layers of the saved model, training, evaluation, ``predict`` and the app cannot
disagree about them.
"""

from __future__ import annotations

#: how each backbone wants its pixels: (scale, offset) applied after resizing, to [0, 255] input
SCALING = {
    "unit": (1.0 / 255.0, 0.0),  # [0, 1], the source paper's scaling
    "lite": (1.0 / 128.0, -127.0 / 128.0),  # EfficientNet-Lite: (x - 127) / 128
    "raw": (1.0, 0.0),  # keras EfficientNetB0 rescales/normalises inside
}


def input_layers(x, image_size: int, scaling: str, name: str = "pre"):
    """Resize (bilinear) and scale a raw ``[0, 255]`` tensor inside a functional model."""
    import keras

    scale, offset = SCALING[scaling]
    x = keras.layers.Resizing(
        image_size, image_size, interpolation="bilinear", name=f"{name}_resize"
    )(x)
    if (scale, offset) != (1.0, 0.0):
        x = keras.layers.Rescaling(scale, offset, name=f"{name}_scale")(x)
    return x
