"""The tf.data input pipeline: images and labels stay together, shuffling is seeded."""

from __future__ import annotations

import numpy as np
import pytest

from idc_utils.data import pipeline


def test_patch_batches_keep_images_and_labels_together():
    n = 100
    images = np.zeros((n, 50, 50, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(n)  # each image carries its own index
    index = np.arange(0, n, 2)[::-1]  # a subset, in a shuffled-looking order
    labels = index.astype(np.float32)
    seen = []
    for x, y in pipeline.patch_batches(images, index, labels, batch_size=7, shuffle=True, seed=0):
        x = x.numpy()
        np.testing.assert_array_equal(x[:, 0, 0, 0].astype(np.float32), y.numpy())
        seen.extend(y.numpy().tolist())
    assert sorted(seen) == sorted(labels.tolist()), "one epoch visits every patch once"


def test_patch_batches_shuffle_is_seeded():
    images = np.zeros((40, 50, 50, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(40)
    order = lambda seed: [
        int(v)
        for x, _ in pipeline.patch_batches(
            images, np.arange(40), None, batch_size=8, shuffle=True, seed=seed
        )
        for v in x.numpy()[:, 0, 0, 0]
    ]
    assert order(1) == order(1) and order(1) != order(2) and order(1) != list(range(40))


def test_pipeline_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="labels"):
        pipeline.patch_batches(np.zeros((4, 50, 50, 3), np.uint8), [0, 1], [0.0])
