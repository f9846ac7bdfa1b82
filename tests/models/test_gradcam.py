"""Grad-CAM points at the evidence."""

from __future__ import annotations

import numpy as np
import pytest

from idc_utils.models import classifier, gradcam


@pytest.fixture(scope="module")
def corner_model():
    """A CNN trained on patches whose only evidence is a dark square in the top-left corner."""
    import keras

    rng = np.random.default_rng(0)
    n = 400
    x = rng.integers(150, 230, (n, 50, 50, 3)).astype(np.uint8)
    y = (rng.random(n) < 0.5).astype(np.float32)
    x[y == 1, 2:18, 2:18] = 30
    keras.utils.set_random_seed(0)
    m = classifier.build_classifier("cnn", 50, weights=None, cnn_width=8, dropout=0.0)
    m.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
    m.fit(x.astype("float32"), y, epochs=4, batch_size=32, verbose=0)
    return m, x, y


@pytest.mark.slow
def test_gradcam_points_at_the_evidence(corner_model):
    m, x, y = corner_model
    pos = x[y == 1][:8]
    cams, probs = gradcam.gradcam(m, pos)
    assert cams.shape == (8, 50, 50) and cams.min() >= 0 and cams.max() <= 1
    assert probs.mean() > 0.8, "the toy model learned the corner"
    mean = cams.mean(0)
    r, c = np.unravel_index(mean.argmax(), mean.shape)
    assert 2 <= r < 18 and 2 <= c < 18, f"the map peaks at {(r, c)}, outside the evidence"
    assert mean[2:18, 2:18].mean() > 1.5 * mean[30:, 30:].mean()
    quadrants = [
        mean[:25, :25].mean(),
        mean[:25, 25:].mean(),
        mean[25:, :25].mean(),
        mean[25:, 25:].mean(),
    ]
    assert int(np.argmax(quadrants)) == 0


@pytest.mark.slow
def test_gradcam_layer_choice_and_overlay(corner_model):
    m, x, _ = corner_model
    assert gradcam.default_layer(m) == "cnn_top_relu"
    cams, _ = gradcam.gradcam(m, x[:2], target="predicted")
    ov = gradcam.overlay(x[0], cams[0])
    assert ov.shape == (50, 50, 3) and ov.dtype == np.uint8
    with pytest.raises(ValueError, match="target"):
        gradcam.gradcam(m, x[:1], target="both")


@pytest.mark.slow
def test_raw_maps_keep_their_strength_and_normalised_ones_peak_at_one(corner_model):
    """normalize=False returns the maps before each is divided by its own maximum: the same
    shape, and the patch with the evidence has the stronger raw peak."""
    m, x, y = corner_model
    both = np.concatenate([x[y == 1][:4], x[y == 0][:4]])
    raw, p_raw = gradcam.gradcam(m, both, normalize=False)
    scaled, p = gradcam.gradcam(m, both)
    np.testing.assert_allclose(p_raw, p, rtol=1e-5)
    peaks = raw.reshape(8, -1).max(1)
    for k in np.flatnonzero(peaks > 0):
        np.testing.assert_allclose(scaled[k], raw[k] / peaks[k], rtol=1e-4, atol=1e-6)
        assert scaled[k].max() == pytest.approx(1.0)
    assert peaks[:4].mean() > peaks[4:].mean(), "evidence for IDC+ is stronger where it is"
