"""Embeddings: what a frozen ImageNet backbone makes of a patch (its pooled feature vector).

Chapter 4 compares balancing methods on them and chapter 6 trains its phase-1 head on them, so
:func:`dataset_embeddings` computes them once per dataset and backbone and caches them on disk.
"""

from __future__ import annotations

import os

import numpy as np


def embedder(backbone: str = "efficientnet_lite0", image_size: int = 96):
    """A frozen ImageNet backbone from raw 50x50 patches to its embedding: the classifier's own
    input layers (resize to ``image_size``, the backbone's scaling), the backbone's last
    feature maps, and their global average (``head_pool``), one number per channel. The head
    after that layer (dropout, the sigmoid unit) is left out, so nothing here is trained."""
    import keras

    from idc_utils.models import classifier

    clf = classifier.build_classifier(backbone, image_size, weights="imagenet", dropout=0.0)
    return keras.Model(clf.input, clf.get_layer("head_pool").output, name=f"{backbone}_embedder")


def embed(
    model, images: np.ndarray, index, batch_size: int = 256, out: np.ndarray | None = None
) -> np.ndarray:
    """Embeddings of ``images[index]``, float32 ``(n, d)``, computed batch by batch (the images
    are never all in memory as floats); written into ``out`` when given (e.g. a memory map)."""
    import tensorflow as tf

    index = np.asarray(index, dtype=np.int64)
    forward = getattr(model, "_idc_forward", None)
    if forward is None:  # one compiled function per model, however often embed is called

        @tf.function(reduce_retracing=True)
        def forward(x):
            return model(tf.cast(x, tf.float32), training=False)

        model._idc_forward = forward

    for s in range(0, len(index), batch_size):
        rows = index[s : s + batch_size]
        f = forward(np.asarray(images[rows])).numpy().astype(np.float32)
        if out is None:
            out = np.empty((len(index), f.shape[1]), np.float32)
        out[s : s + len(rows)] = f
    return out if out is not None else np.empty((0, 0), np.float32)


def dataset_embeddings(
    images: np.ndarray,
    fingerprint: str,
    backbone: str = "efficientnet_lite0",
    image_size: int = 96,
    cache_dir=None,
    log=None,
) -> np.ndarray:
    """Frozen-backbone embeddings of **every** patch of a dataset, computed once and cached next
    to the decoded patches (a memory-mapped ``.npy``): chapter 4 compares balancing methods on
    them and chapter 6 trains its phase-1 head on them, so the pass is paid once. The cache key
    holds the data fingerprint, the backbone, the size, and the source of the model code."""
    import hashlib
    from pathlib import Path

    from idc_utils.core import torch_weights
    from idc_utils.core.paths import default_cache_dir
    from idc_utils.models import classifier, lite0, preprocessing

    code = hashlib.sha256()
    for module in (classifier, lite0, preprocessing, torch_weights):
        code.update(Path(module.__file__).read_bytes())
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    path = (
        root / "embeddings" / f"{fingerprint}-{backbone}-{image_size}-{code.hexdigest()[:10]}.npy"
    )
    if path.exists():
        arr = np.load(path, mmap_mode="r")
        if arr.shape[0] == len(images):
            if log:
                log(f"embeddings of {len(images):,} patches read from the cache ({path.name})")
            return arr
    path.parent.mkdir(parents=True, exist_ok=True)
    net = embedder(backbone, image_size)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    out = np.lib.format.open_memmap(tmp, "w+", np.float32, (len(images), net.output_shape[-1]))
    embed(net, images, np.arange(len(images)), out=out)
    out.flush()
    del out
    tmp.replace(path)
    if log:
        log(
            f"embedded {len(images):,} patches with the frozen {backbone} at {image_size} px; "
            f"cached as {path.name}"
        )
    return np.load(path, mmap_mode="r")
