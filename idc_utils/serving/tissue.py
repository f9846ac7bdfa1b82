"""A tissue image scored tile by tile: one tiling rule (the 50-pixel grid, background skipped) for
every way in, whether an upload in the app or a slide level read over DICOMweb."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from idc_utils.core.constants import PATCH_SIZE


@dataclass
class ImageScores:
    """An image tiled on the 50-pixel grid and its tissue tiles scored: one row per tile
    (``x, y, tissue, is_tissue, prob``; background tiles have no ``prob``), and the same values
    as a grid (rows x cols, NaN = not scored)."""

    table: pd.DataFrame
    per_tile: np.ndarray
    seconds: float = 0.0

    @property
    def tissue(self) -> pd.DataFrame:
        return self.table[self.table["is_tissue"]]


def score_image(
    probabilities, image: np.ndarray, min_tissue: float = 0.25, progress=None
) -> ImageScores:
    """Tile an RGB image (the Tissue tab's upload, a slide level read over DICOMweb) on the
    50-pixel grid, skip the background and score the tissue tiles with ``probabilities``
    (e.g. :meth:`idc_utils.serving.predictor.Predictor.probabilities`). One tiling rule for every
    way in."""
    import time

    from idc_utils.data.mosaic import MosaicGrid, tile_image, value_map

    t0 = time.perf_counter()
    tiles, table = tile_image(image, PATCH_SIZE, min_tissue)
    keep = table["is_tissue"].to_numpy()
    prob = np.full(len(table), np.nan)
    if keep.any():
        prob[keep] = (
            probabilities(tiles[keep], progress) if progress else probabilities(tiles[keep])
        )
    table = table.assign(prob=prob)
    per_tile = value_map(MosaicGrid.from_coords(table["x"], table["y"]), prob)
    return ImageScores(table, per_tile, time.perf_counter() - t0)
