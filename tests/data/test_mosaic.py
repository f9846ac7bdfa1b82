"""Mosaics rebuilt from patch coordinates, and images tiled on the same grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from idc_utils.data import mosaic


def test_tile_image_grid_padding_and_tissue_mask():
    img = np.full((120, 170, 3), 250, np.uint8)  # glass
    img[:50, :50] = (150, 60, 160)  # stained tissue in the first tile
    tiles, table = mosaic.tile_image(img, 50)
    assert tiles.shape == (3 * 4, 50, 50, 3)
    assert list(table["x"][:4]) == [0, 50, 100, 150] and list(table["y"][::4]) == [0, 50, 100]
    assert table.loc[0, "is_tissue"] and not table.loc[1:, "is_tissue"].any()
    assert (tiles[3][:, 20:] == 255).all(), "the partial right tile is padded with white"
    frac = mosaic.tissue_fractions(tiles)
    assert frac[0] == 1.0 and frac[5] == 0.0


def test_mosaic_places_patches_at_their_coordinates():
    imgs = np.stack([np.full((50, 50, 3), v, np.uint8) for v in (10, 20, 30)])
    x = np.array([101, 151, 101])
    y = np.array([51, 51, 151])
    canvas, grid = mosaic.mosaic(imgs, x, y)
    assert canvas.shape == (150, 100, 3)
    assert (canvas[:50, :50] == 10).all() and (canvas[:50, 50:] == 20).all()
    assert (canvas[50:100] == 255).all(), "no patch there: background"
    assert (canvas[100:, :50] == 30).all()
    vm = mosaic.value_map(grid, [0.1, 0.2, 0.3])
    assert vm.shape == (3, 2) and vm[0, 1] == pytest.approx(0.2) and np.isnan(vm[1, 0])


def test_patient_rows_names_alternatives():
    m = pd.DataFrame(
        {"patient_id": ["1", "1", "2"], "x": [1, 51, 1], "y": [1, 1, 1], "label": [0, 1, 0]}
    )
    assert len(mosaic.patient_rows(m, "1")) == 2
    with pytest.raises(ValueError, match=r"1 \(2\)"):
        mosaic.patient_rows(m, "77")
