"""Chapter 8's figure: the slide streamed over DICOMweb, the map computed from it, and the
Segmentation read back from the server, drawn over the slide."""

from __future__ import annotations

import numpy as np

from idc_utils.chapters.style import draw_outline
from idc_utils.data.mosaic import per_pixel


def plot_dicom_roundtrip(
    image: np.ndarray, truth: np.ndarray, per_tile: np.ndarray, stored: np.ndarray, step: int = 50
):
    """Three panels: the level streamed over DICOMweb with the annotated IDC outlined; the
    probability map computed from it; the Segmentation read back from the server, drawn over the
    slide as a viewer would."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 5.4))
    axes[0].imshow(image)
    draw_outline(axes[0], truth, step, label="annotated IDC")
    axes[0].set_title("streamed over DICOMweb, annotated IDC outlined")
    full = per_pixel(per_tile, step, image.shape[:2])
    axes[1].imshow(np.ma.masked_invalid(full), cmap="magma", vmin=0, vmax=1)
    draw_outline(axes[1], truth, step, color="cyan")
    axes[1].set_title("P(IDC+) per 50x50 tile (computed)")
    axes[2].imshow(image)
    im = axes[2].imshow(stored, cmap="magma", vmin=0, vmax=1, alpha=np.where(stored > 0, 0.6, 0))
    fig.colorbar(im, ax=axes[2], fraction=0.035, label="P(IDC+)")
    axes[2].set_title("stored Segmentation, read back, over the slide")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
