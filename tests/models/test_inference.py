"""Forward passes with and without test-time augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from idc_utils.models import classifier, inference


@pytest.fixture(scope="module")
def small_model():
    import keras

    keras.utils.set_random_seed(0)
    return classifier.build_classifier("cnn", 50, weights=None, cnn_width=4, dropout=0.0)


def test_the_eight_views_are_the_symmetries_of_the_square():
    x = np.arange(2 * 4 * 4 * 1).reshape(2, 4, 4, 1)
    views = [inference.dihedral_view(x, k, f) for k, f in inference.DIHEDRAL]
    assert len({v.tobytes() for v in views}) == 8  # all different
    for v in views:
        assert sorted(v[0].ravel()) == sorted(x[0].ravel())  # pixels moved, none changed
    import tensorflow as tf

    graph = tf.split(inference._views(tf.constant(x)), 8, axis=0)
    for g, v in zip(graph, views):
        np.testing.assert_array_equal(g.numpy(), v)


def test_tta_is_the_mean_over_the_eight_views(small_model):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (5, 50, 50, 3)).astype(np.uint8)
    plain = inference.make_infer(small_model)
    expected = np.mean(
        [plain(inference.dihedral_view(x, k, f)) for k, f in inference.DIHEDRAL], axis=0
    )
    np.testing.assert_allclose(
        inference.make_infer(small_model, tta=True)(x), expected, rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(plain(x), expected, atol=1e-6), "the views must matter for this model"


def test_predict_proba_keeps_the_order_of_the_index(small_model):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (20, 50, 50, 3)).astype(np.uint8)
    idx = np.array([7, 3, 19, 3, 0])
    direct = inference.make_infer(small_model, tta=True)(images[idx])
    np.testing.assert_allclose(
        inference.predict_proba(small_model, images, idx, tta=True, batch_size=16),
        direct,
        rtol=1e-5,
        atol=1e-6,
    )
