"""Rebuild a patient's tissue region from patch coordinates, and map values over it.

Each Kaggle patch name carries the position of its top-left corner in the original slide
(``x1001_y1051``; the patches lie on a 50-pixel grid). Placing every patch of a patient at its
(x, y) rebuilds the tissue region the patches were cut from (a *mosaic*); placing one number per
patch on the same grid gives a *map* (ground-truth IDC, or a model's probability). One tiling
logic serves the EDA mosaic, the evaluation heatmaps and the app. :func:`tile_image` cuts any
RGB image (an upload, a slide level) on the same grid.

"Mosaic" here always means a region rebuilt from patches; a *slide* is a whole-slide image file
(:mod:`idc_utils.data.dicom_slide`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from idc_utils.core.constants import PATCH_SIZE


@dataclass(frozen=True)
class MosaicGrid:
    """Where each patch of a mosaic sits: origin, grid step and the grid cell of every row."""

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
    def from_coords(cls, x, y, step: int = PATCH_SIZE) -> MosaicGrid:
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
    grid = MosaicGrid.from_coords(x, y, step)
    h, w = grid.shape_px
    canvas = np.full((h, w, 3), background, dtype=np.uint8)
    size = images.shape[1]
    for k in range(len(images)):
        r0, c0 = grid.row[k] * step, grid.col[k] * step
        canvas[r0 : r0 + size, c0 : c0 + size] = images[k][: h - r0, : w - c0]
    return canvas, grid


def value_map(grid: MosaicGrid, values, fill: float = np.nan) -> np.ndarray:
    """One value per patch on the mosaic grid ``(rows, cols)``; cells without a patch get
    ``fill``."""
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


def tissue_fractions(tiles: np.ndarray) -> np.ndarray:
    """For each tile ``(n, h, w, 3)``, the share of pixels that look like stained tissue rather
    than glass or background: not near-white, and with some colour saturation (vectorised)."""
    lo = tiles.min(axis=-1)
    hi = tiles.max(axis=-1)
    tissue = (lo <= 215) & ((hi.astype(np.int16) - lo) > 18)
    return tissue.reshape(len(tiles), -1).mean(axis=1)


def grid_tiles(image: np.ndarray, tile: int = PATCH_SIZE) -> np.ndarray:
    """Cut an RGB image into ``tile`` x ``tile`` tiles, row by row; partial tiles at the right
    and bottom are padded with white (like the dataset's edge patches)."""
    h, w = image.shape[:2]
    rows_, cols_ = int(np.ceil(h / tile)), int(np.ceil(w / tile))
    rgb = image[..., :3]
    if (h, w) != (rows_ * tile, cols_ * tile):
        padded = np.full((rows_ * tile, cols_ * tile, 3), 255, np.uint8)
        padded[:h, :w] = rgb
        rgb = padded
    return rgb.reshape(rows_, tile, cols_, tile, 3).swapaxes(1, 2).reshape(-1, tile, tile, 3)


def per_pixel(per_tile: np.ndarray, step: int, shape: tuple[int, int]) -> np.ndarray:
    """A per-tile map (rows x cols) repeated to the pixels of an image of ``shape`` (h, w)."""
    h, w = shape
    return np.repeat(np.repeat(np.asarray(per_tile), step, axis=0), step, axis=1)[:h, :w]


def tile_image(image: np.ndarray, tile: int = PATCH_SIZE, min_tissue: float = 0.25):
    """Cut an RGB image into ``tile`` x ``tile`` patches on a grid; partial tiles at the right and
    bottom are padded with white (like the dataset's edge patches). Returns ``(tiles, table)``
    where ``table`` has ``x, y, tissue, is_tissue`` per tile; only tissue tiles need scoring."""
    tiles = grid_tiles(image, tile)
    cols_ = int(np.ceil(image.shape[1] / tile))
    frac = tissue_fractions(tiles)
    ys, xs = np.divmod(np.arange(len(tiles)), cols_)
    table = pd.DataFrame(
        {"x": xs * tile, "y": ys * tile, "tissue": frac, "is_tissue": frac >= min_tissue}
    )
    return tiles, table
