"""Chapter 2's figures and tables: resizing, each backbone's scaling, the H&E stain channels, a
gallery of every augmentation alone and together, the augmentations beside what the source paper
states of them, and what the recipe study found about the free rotation, shift and zoom."""

from __future__ import annotations

import numpy as np

from idc_utils.models.augment import PAPER_STATES, PAPER_STRENGTHS, Augment, AugmentConfig
from idc_utils.models.preprocessing import SCALING
from idc_utils.models.stain import hed_channels


def augmentation_gallery(
    patch: np.ndarray,
    config: AugmentConfig,
    draws: int = 6,
    seed: int = 0,
    paper: AugmentConfig | None = None,
) -> dict:
    """Each augmentation alone, ``draws`` random draws on one patch (for the book):
    name -> images. An augmentation that ``config`` turns off but ``paper`` uses is shown at
    ``paper``'s strength, its row named "... (paper; off in training)" when the source paper
    states that strength (the rotation) and "... (off in training)" when it names the
    augmentation without one; the last row combines what ``config`` trains with."""
    import keras

    base = np.repeat(patch[None].astype(np.float32), draws, axis=0)
    out = {"original": base.astype(np.uint8)}
    fields = config.as_dict()
    shown = paper.as_dict() if paper is not None else {}
    for key, value in fields.items():
        name = key
        if not value and shown.get(key):
            value = shown[key]
            whose = "paper; " if key in PAPER_STRENGTHS else ""
            name = f"{key} {value:g} ({whose}off in training)"
        if not value:
            continue
        only = {k: (value if k == key else type(v)(0)) for k, v in fields.items()}
        layer = Augment(only, seed=seed)
        out[name] = np.asarray(layer(keras.ops.convert_to_tensor(base), training=True)).astype(
            np.uint8
        )
    out["all together"] = np.asarray(
        Augment(fields, seed=seed)(keras.ops.convert_to_tensor(base), training=True)
    ).astype(np.uint8)
    return out


def plot_resize(patches: np.ndarray, titles, image_size: int):
    """Each patch as stored, and enlarged to ``image_size`` by nearest neighbour and bilinear."""
    import matplotlib.pyplot as plt
    import tensorflow as tf

    fig, axes = plt.subplots(len(patches), 3, figsize=(9, 3.1 * len(patches)), squeeze=False)
    for row, (patch, title) in enumerate(zip(patches, titles)):
        axes[row, 0].imshow(patch, interpolation="nearest")
        axes[row, 0].set_title(f"{title}: stored 50x50")
        for col, method in ((1, "nearest"), (2, "bilinear")):
            big = tf.image.resize(
                patch[None].astype("float32"), (image_size, image_size), method=method
            )[0]
            axes[row, col].imshow(
                np.clip(big.numpy(), 0, 255).astype("uint8"), interpolation="nearest"
            )
            axes[row, col].set_title(f"{method} to {image_size}x{image_size}")
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    return fig


def scaling_table(patches: np.ndarray):
    """Range of the pixel values after each backbone's scaling."""
    import pandas as pd

    rows = []
    for name, (scale, offset) in SCALING.items():
        x = patches.astype("float32") * scale + offset
        rows.append(
            {
                "scaling": name,
                "formula": f"x * {scale:.5f} {'-' if offset < 0 else '+'} {abs(offset):.4f}",
                "min": x.min(),
                "max": x.max(),
                "mean": x.mean(),
            }
        )
    return pd.DataFrame(rows).set_index("scaling")


def plot_hed(patches: np.ndarray, titles):
    """Each patch beside its hematoxylin and eosin optical densities."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(patches), 3, figsize=(8.5, 2.9 * len(patches)), squeeze=False)
    for row, (patch, title) in enumerate(zip(patches, titles)):
        hed = hed_channels(patch)
        axes[row, 0].imshow(patch)
        axes[row, 0].set_title(title)
        axes[row, 1].imshow(hed[..., 0], cmap="Purples")
        axes[row, 1].set_title("hematoxylin (nuclei)")
        axes[row, 2].imshow(hed[..., 1], cmap="RdPu")
        axes[row, 2].set_title("eosin (stroma, cytoplasm)")
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_gallery(gallery: dict):
    """One row per augmentation (from :func:`augmentation_gallery`)."""
    import matplotlib.pyplot as plt

    draws = len(next(iter(gallery.values())))
    fig, axes = plt.subplots(
        len(gallery), draws, figsize=(1.25 * draws, 1.3 * len(gallery)), squeeze=False
    )
    for r, (name, imgs) in enumerate(gallery.items()):
        for c in range(draws):
            axes[r, c].imshow(imgs[c])
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def plot_scaling(patches: np.ndarray, names=("unit", "lite")):
    """Histogram of pixel values after each named scaling."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.8))
    for name in names:
        scale, offset = SCALING[name]
        ax.hist(
            (patches.astype("float32") * scale + offset).ravel(), bins=60, alpha=0.6, label=name
        )
    ax.set_title("pixel values after scaling (example patches)")
    ax.legend()
    fig.tight_layout()
    return fig


def augmentation_table(config: AugmentConfig):
    """Each augmentation's strength in this run beside what the source paper states of it (a
    strength for the rotation only; "named, strength not stated" for shift, zoom, brightness
    and contrast)."""
    import pandas as pd

    return pd.DataFrame(
        {"this run trains with": config.as_dict(), "source paper": PAPER_STATES}
    ).rename_axis("augmentation")


#: the recipe study's rows about the free rotation, shift and zoom (book/data/recipe_study.json)
AFFINE_VARIANTS = ("no_affine", "lr_5e-4", "no_affine_lr_5e-4", "no_affine_lr_5e-4_seed_2")


def affine_study_sentences(study: dict, variants=AFFINE_VARIANTS) -> str:
    """Markdown: what the recipe study (``tools/recipe_study.py``) measured on the validation
    patients for each of ``variants``, with its paired interval against the row it is compared
    with, and what that interval says; computed from the study, never written by hand."""
    from idc_utils.studies.recipe_study import compared_with

    lines = []
    for name in variants:
        v = study.get("variants", {}).get(name)
        d = v and v["tta"].get("val_auc_vs_reference")
        if not d:
            continue
        reads = (
            "an interval above zero"
            if d[1] > 0
            else "an interval below zero"
            if d[2] < 0
            else "an interval that contains zero"
        )
        lines.append(
            f"- **{name}**: {v['what']}. Validation AUC {d[0]:+.4f} against "
            f"**{compared_with(name)}** (paired 95% CI {d[1]:+.3f} to {d[2]:+.3f}), {reads}."
        )
    if not lines:
        return "The recipe study holds no row about the free rotation, shift and zoom."
    head = (
        f"The recipe study trained on the {study.get('profile', '?')} run's training patients "
        f"and measured on its {study.get('val_patients', '?')} validation patients:"
    )
    return "\n".join([head, "", *lines])
