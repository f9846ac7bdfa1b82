"""H&E colour deconvolution (Ruifrok & Johnston 2001): a patch's hematoxylin, eosin and DAB
optical densities, and the stain jitter that perturbs them during training (Tellez et al.
2019)."""

from __future__ import annotations

import numpy as np

# Ruifrok & Johnston (2001) stain vectors for H&E-DAB, rows = hematoxylin, eosin, DAB
_RGB_FROM_HED = np.array(
    [[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=np.float32
)
_RGB_FROM_HED = _RGB_FROM_HED / np.linalg.norm(_RGB_FROM_HED, axis=1, keepdims=True)
_HED_FROM_RGB = np.linalg.inv(_RGB_FROM_HED).astype(np.float32)


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


def hed_channels(patch: np.ndarray) -> np.ndarray:
    """Hematoxylin, eosin and DAB optical densities of a patch, ``(H, W, 3)`` (for figures)."""
    x = np.clip(patch.astype(np.float32) / 255.0, 1e-6, 1.0)
    return np.maximum(-np.log(x) @ _HED_FROM_RGB, 0)
