"""Preprocessing and augmentation: identity at inference, exact quarter turns, one affine
map, stain jitter."""

from __future__ import annotations

import numpy as np
import pytest

from idc_utils.models import augment, preprocessing
from idc_utils.models.augment import AugmentConfig


def asymmetric_batch(n=16):
    base = np.zeros((50, 50, 3), np.float32)
    base[5:15, 5:30] = 255  # a bar near the top-left: every rotation and flip looks different
    base[30:45, 40:45] = 128
    return np.repeat(base[None], n, axis=0), base


def only(**kw):
    off = AugmentConfig.none().as_dict()
    off.update(kw)
    return off


def test_inference_passes_patches_through():
    x, _ = asymmetric_batch(4)
    layer = augment.Augment(AugmentConfig(), seed=0)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)


def test_quarter_turns_are_exact_and_drawn_per_patch():
    x, base = asymmetric_batch(32)
    out = np.asarray(augment.Augment(only(rot90=True), seed=3)(x, training=True))
    turns = [np.rot90(base, k, axes=(0, 1)) for k in range(4)]
    seen = set()
    for img in out:
        k = [j for j, t in enumerate(turns) if np.array_equal(img, t)]
        assert len(k) == 1, "every output is an exact quarter turn of the input"
        seen.add(k[0])
    assert len(seen) >= 3, f"the turns must differ between patches of one batch, saw {seen}"


def test_affine_with_zero_ranges_is_identity_and_rotation_keeps_content():
    x, base = asymmetric_batch(4)
    ident = augment.Augment(only(rotation_deg=1e-6, zoom=1e-6, translate=1e-6), seed=0)
    np.testing.assert_allclose(np.asarray(ident(x, training=True)), x, atol=0.5)
    rot = np.asarray(augment.Augment(only(rotation_deg=15.0), seed=1)(x, training=True))
    assert not np.allclose(rot[0], base)
    assert abs(rot.mean() - base.mean()) < 0.05 * base.mean(), "reflect fill: no black corners"


def test_affine_is_one_interpolation_sharper_than_three():
    """Rotation + zoom + shift in one map keep more detail than chained layers would."""
    import keras

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (32, 50, 50, 3)).astype(np.float32)  # high-frequency texture
    one = np.asarray(
        augment.Augment(only(rotation_deg=15.0, zoom=0.1, translate=0.1), seed=0)(x, training=True)
    )
    L = keras.layers
    chained = x
    for layer in (
        L.RandomRotation(15 / 360, fill_mode="reflect", seed=0),
        L.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=1),
        L.RandomZoom(0.1, 0.1, fill_mode="reflect", seed=2),
    ):
        chained = layer(chained, training=True)
    # each interpolation averages neighbours and flattens the texture: one keeps more of it
    assert one.std() > np.asarray(chained).std() * 1.05


def test_hed_jitter_changes_stain_not_structure():
    rng = np.random.default_rng(1)
    x = rng.integers(60, 230, (8, 50, 50, 3)).astype(np.float32)
    out = np.asarray(augment.Augment(only(hed=0.05), seed=0)(x, training=True))
    assert 0 < np.abs(out - x).mean() < 30
    for a, b in zip(out, x):
        assert np.corrcoef(a[..., 0].ravel(), b[..., 0].ravel())[0, 1] > 0.9


def test_augment_survives_saving_config():
    layer = augment.Augment(AugmentConfig(rotation_deg=5.0), seed=7)
    cfg = layer.get_config()
    clone = type(layer).from_config(cfg)
    assert clone.config["rotation_deg"] == 5.0 and clone.seed == 7


def test_the_model_layers_resize_bilinearly_and_scale_as_each_backbone_wants():
    import keras
    import tensorflow as tf

    def by_hand(images, size, scaling):
        scale, offset = preprocessing.SCALING[scaling]
        return tf.image.resize(images, (size, size), method="bilinear").numpy() * scale + offset

    x = np.random.default_rng(0).integers(0, 256, (2, 50, 50, 3)).astype(np.float32)
    for scaling in ("unit", "lite", "raw"):
        inp = keras.Input((50, 50, 3))
        m = keras.Model(inp, preprocessing.input_layers(inp, 96, scaling))
        np.testing.assert_allclose(m.predict(x, verbose=0), by_hand(x, 96, scaling), atol=1e-4)
    lo, hi = by_hand(np.array([[[[0, 127, 255]]]], np.float32), 1, "lite").ravel()[[0, 2]]
    assert lo == pytest.approx(-127 / 128) and hi == pytest.approx(1.0)


def test_what_the_paper_states_covers_every_augmentation_and_one_strength():
    from idc_utils.models.augment import PAPER_STATES, PAPER_STRENGTHS, AugmentConfig

    assert set(PAPER_STATES) == set(AugmentConfig().as_dict())
    stated = {k for k, v in PAPER_STATES.items() if "not stated" not in v}
    assert stated == set(PAPER_STRENGTHS) == {"rotation_deg"}
    assert AugmentConfig.paper().rotation_deg == PAPER_STRENGTHS["rotation_deg"]
