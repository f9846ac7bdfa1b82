"""Grad-CAM: which parts of a patch pushed the model towards its answer.

Grad-CAM (Selvaraju et al. 2017) weighs the feature maps of a convolutional layer by the average
gradient of the class score with respect to them, keeps the positive part, and upsamples the
result to the input. Here the class score is the **logit** of IDC+ (``log p / (1 - p)``), whose
gradient does not vanish when the sigmoid saturates; for "why IDC-" the sign is flipped.

The map is only as fine as the layer: a patch enlarged to 96 px reaches 3x3 cells at EfficientNet's
last layer. :func:`default_layer` therefore picks the last convolutional output that still has at
least ``min_cells`` cells per side. A Grad-CAM map shows where the model looked, not *why*, and not
whether it was right.
"""

from __future__ import annotations

import numpy as np


def default_layer(model, min_cells: int = 6) -> str:
    """Name of the last 4-D layer output with at least ``min_cells`` x ``min_cells`` cells."""
    best = None
    for layer in model.layers:
        if layer.name.startswith(("pre_", "patch", "head_")):
            continue
        shape = getattr(layer.output, "shape", None)
        if shape is None or len(shape) != 4:
            continue
        if shape[1] is not None and shape[1] >= min_cells:
            best = layer.name
    if best is None:
        raise ValueError("the model has no convolutional layer to explain")
    return best


def gradcam(
    model,
    patches: np.ndarray,
    layer: str | None = None,
    target: str = "positive",
    batch_size: int = 64,
    normalize: bool = True,
):
    """Grad-CAM maps for a batch of raw patches ``(n, 50, 50, 3)``: ``(maps (n, 50, 50) in [0, 1],
    probabilities (n,))``. ``target``: ``positive`` (evidence for IDC+) or ``predicted``
    (evidence for whichever class the model chose at 0.5). Each map is divided by its own
    maximum, which shows where the evidence lies but hides how strong it is; ``normalize=False``
    returns the raw maps (in units of the log-odds), whose maxima can be compared across
    patches of the same model."""
    import tensorflow as tf

    if target not in ("positive", "predicted"):
        raise ValueError("target must be 'positive' or 'predicted'")
    layer = layer or default_layer(model)
    compute = _compiled_gradcam(model, layer)
    maps, probs = [], []
    for s in range(0, len(patches), batch_size):
        x = tf.convert_to_tensor(patches[s : s + batch_size].astype("float32"))
        cam, p = compute(x, tf.constant(target == "predicted"))
        cam = cam.numpy()
        if normalize:
            top = cam.reshape(len(cam), -1).max(axis=1)
            cam = cam / np.where(top > 0, top, 1)[:, None, None]
        maps.append(cam)
        probs.append(p.numpy())
    return np.concatenate(maps), np.concatenate(probs)


def _compiled_gradcam(model, layer: str):
    """One traced graph per (model, layer), kept on the model: building it and running it
    eagerly would cost more than explaining a handful of patches."""
    import keras
    import tensorflow as tf

    kept = getattr(model, "_idc_gradcam", None) or {}
    if layer in kept:
        return kept[layer]
    grad_model = keras.Model(model.inputs, [model.get_layer(layer).output, model.output])
    size = model.input_shape[1:3]

    @tf.function(reduce_retracing=True)
    def compute(x, predicted):
        with tf.GradientTape() as tape:
            feats, p = grad_model(x, training=False)
            p = tf.clip_by_value(tf.cast(p[:, 0], tf.float32), 1e-6, 1 - 1e-6)
            logit = tf.math.log(p) - tf.math.log(1 - p)
            logit = tf.where(tf.logical_and(predicted, p < 0.5), -logit, logit)
        grads = tape.gradient(logit, feats)
        weights = tf.reduce_mean(tf.cast(grads, tf.float32), axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * tf.cast(feats, tf.float32), axis=-1))
        cam = tf.image.resize(cam[..., None], size, method="bilinear")[..., 0]
        return cam, p

    model._idc_gradcam = {**kept, layer: compute}
    return compute


def overlay(
    patch: np.ndarray, cam: np.ndarray, alpha: float = 0.45, cmap: str = "jet"
) -> np.ndarray:
    """The patch with its Grad-CAM map blended on top, uint8 RGB."""
    import matplotlib

    heat = matplotlib.colormaps[cmap](np.clip(cam, 0, 1))[..., :3] * 255
    return np.clip((1 - alpha) * patch.astype(np.float32) + alpha * heat, 0, 255).astype(np.uint8)
