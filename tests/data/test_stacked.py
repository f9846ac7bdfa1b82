"""Patch arrays read as one: every way the pipeline and inference index them gives what
np.concatenate would, and a memory map is never read whole."""

from __future__ import annotations

import numpy as np
import pytest

from idc_utils.data import pipeline
from idc_utils.data.stacked import StackedPatches


def parts(seed=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 255, (7, 4, 4, 3), dtype=np.uint8)
    b = rng.integers(0, 255, (3, 4, 4, 3), dtype=np.uint8)
    return a, b


def test_every_kind_of_index_reads_as_the_concatenation():
    a, b = parts()
    whole, stacked = np.concatenate([a, b]), StackedPatches(a, b)
    assert len(stacked) == 10 and stacked.shape == whole.shape and stacked.dtype == np.uint8
    for rows in ([9, 0, 7, 6, 9], np.array([], int), slice(5, 9), slice(None, None, -3)):
        np.testing.assert_array_equal(stacked[rows], whole[rows])
    for row in (0, 6, 7, 9, -1, np.int64(8)):
        np.testing.assert_array_equal(stacked[row], whole[row])
    mask = np.arange(10) % 3 == 0
    np.testing.assert_array_equal(stacked[mask], whole[mask])
    np.testing.assert_array_equal(np.asarray(stacked), whole)
    with pytest.raises(IndexError):
        stacked[10]
    with pytest.raises(IndexError):
        stacked[[3, 11]]


def test_parts_of_another_shape_are_refused():
    a, _ = parts()
    with pytest.raises(ValueError, match="resize or convert them first"):
        StackedPatches(a, np.zeros((2, 5, 5, 3), np.uint8))


def test_the_input_pipeline_reads_a_memory_map_and_extra_patches_without_a_copy(tmp_path):
    a, b = parts()
    np.save(tmp_path / "images.npy", a)
    mapped = np.load(tmp_path / "images.npy", mmap_mode="r")
    stacked = StackedPatches(mapped, b)
    assert stacked.parts[0] is mapped  # kept as a memory map, not read into memory
    index = np.array([8, 1, 9, 0])
    got = np.concatenate(
        [x.numpy() for x, _ in pipeline.patch_batches(stacked, index, batch_size=3)]
    )
    np.testing.assert_array_equal(got, np.concatenate([a, b])[index])
