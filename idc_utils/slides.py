"""Rebuild a patient's tissue region from patch coordinates, and map values over it.

Each Kaggle patch name carries the position of its top-left corner in the original slide
(``x1001_y1051``; the patches lie on a 50-pixel grid). Placing every patch of a patient at its
(x, y) rebuilds the tissue region the patches were cut from (a *mosaic*); placing one number per
patch on the same grid gives a *map* (ground-truth IDC, or a model's probability). One tiling
logic serves the EDA mosaic, the evaluation heatmaps and the app.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .data import PATCH_SIZE


@dataclass(frozen=True)
class SlideGrid:
    """Where each patch of a slide sits: origin, grid step and the grid cell of every row."""

    x0: int
    y0: int
    step: int
    rows: int
    cols: int
    row: np.ndarray  # grid row of each patch
    col: np.ndarray  # grid column of each patch

    @property
    def shape_px(self) -> tuple[int, int]:
        return self.rows * self.step, self.cols * self.step

    @classmethod
    def from_coords(cls, x, y, step: int = PATCH_SIZE) -> "SlideGrid":
        x = np.asarray(x, dtype=np.int64)
        y = np.asarray(y, dtype=np.int64)
        if len(x) == 0:
            raise ValueError("no patches to place")
        x0, y0 = int(x.min()), int(y.min())
        col = (x - x0) // step
        row = (y - y0) // step
        return cls(x0, y0, step, int(row.max()) + 1, int(col.max()) + 1, row, col)


def mosaic(images: np.ndarray, x, y, *, step: int = PATCH_SIZE, background: int = 255):
    """Place patches ``images[k]`` at ``(x[k], y[k])``: the rebuilt region as uint8 RGB, and its
    grid. Missing cells (background the dataset does not contain) stay ``background``."""
    grid = SlideGrid.from_coords(x, y, step)
    h, w = grid.shape_px
    canvas = np.full((h, w, 3), background, dtype=np.uint8)
    size = images.shape[1]
    for k in range(len(images)):
        r0, c0 = grid.row[k] * step, grid.col[k] * step
        canvas[r0 : r0 + size, c0 : c0 + size] = images[k][: h - r0, : w - c0]
    return canvas, grid


def value_map(grid: SlideGrid, values, fill: float = np.nan) -> np.ndarray:
    """One value per patch on the slide grid ``(rows, cols)``; cells without a patch get ``fill``."""
    out = np.full((grid.rows, grid.cols), fill, dtype=np.float64)
    out[grid.row, grid.col] = np.asarray(values, dtype=np.float64)
    return out


def patient_rows(manifest: pd.DataFrame, patient_id: str) -> pd.DataFrame:
    rows = manifest[manifest["patient_id"].astype(str) == str(patient_id)]
    if rows.empty:
        have = manifest["patient_id"].astype(str).value_counts()
        raise ValueError(
            f"patient {patient_id} is not in the data; patients with the most patches: "
            + ", ".join(f"{p} ({n})" for p, n in have.head(5).items())
        )
    return rows


def draw_outline(ax, mask: np.ndarray, step: int, color="lime", lw=1.4, label=None):
    """Outline the cells where ``mask`` is true, on an image drawn at ``step`` pixels per cell."""
    mask = np.asarray(mask, dtype=bool)
    segs = []
    rows, cols = mask.shape
    padded = np.pad(mask, 1, constant_values=False)
    for r, c in zip(*np.nonzero(mask)):
        pr, pc = r + 1, c + 1
        y0, y1, x0, x1 = r * step, (r + 1) * step, c * step, (c + 1) * step
        if not padded[pr - 1, pc]:
            segs.append([(x0, y0), (x1, y0)])
        if not padded[pr + 1, pc]:
            segs.append([(x0, y1), (x1, y1)])
        if not padded[pr, pc - 1]:
            segs.append([(x0, y0), (x0, y1)])
        if not padded[pr, pc + 1]:
            segs.append([(x1, y0), (x1, y1)])
    from matplotlib.collections import LineCollection

    coll = LineCollection(segs, colors=color, linewidths=lw, label=label)
    ax.add_collection(coll)
    return coll


def plot_mosaic(ax, images, rows: pd.DataFrame, *, outline_positive: bool = True, title=None):
    """Draw a patient's rebuilt tissue region, with IDC+ patches outlined."""
    canvas, grid = mosaic(images, rows["x"], rows["y"])
    ax.imshow(canvas, interpolation="nearest")
    if outline_positive:
        pos = value_map(grid, rows["label"], fill=0) > 0.5
        draw_outline(ax, pos, grid.step, label="IDC+ (ground truth)")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return grid
