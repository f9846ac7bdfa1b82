"""Augmentation (per-patch, exact where it should be) and the tf.data pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from idc_utils import figures, preprocess
from idc_utils.preprocess import AugmentConfig


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
    layer = preprocess.Augment(AugmentConfig(), seed=0)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)


def test_quarter_turns_are_exact_and_drawn_per_patch():
    x, base = asymmetric_batch(32)
    out = np.asarray(preprocess.Augment(only(rot90=True), seed=3)(x, training=True))
    turns = [np.rot90(base, k, axes=(0, 1)) for k in range(4)]
    seen = set()
    for img in out:
        k = [j for j, t in enumerate(turns) if np.array_equal(img, t)]
        assert len(k) == 1, "every output is an exact quarter turn of the input"
        seen.add(k[0])
    assert len(seen) >= 3, f"the turns must differ between patches of one batch, saw {seen}"


def test_affine_with_zero_ranges_is_identity_and_rotation_keeps_content():
    x, base = asymmetric_batch(4)
    ident = preprocess.Augment(only(rotation_deg=1e-6, zoom=1e-6, translate=1e-6), seed=0)
    np.testing.assert_allclose(np.asarray(ident(x, training=True)), x, atol=0.5)
    rot = np.asarray(preprocess.Augment(only(rotation_deg=15.0), seed=1)(x, training=True))
    assert not np.allclose(rot[0], base)
    assert abs(rot.mean() - base.mean()) < 0.05 * base.mean(), "reflect fill: no black corners"


def test_affine_is_one_interpolation_sharper_than_three():
    """Rotation + zoom + shift in one map keep more detail than chained layers would."""
    import keras

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (32, 50, 50, 3)).astype(np.float32)  # high-frequency texture
    one = np.asarray(
        preprocess.Augment(only(rotation_deg=15.0, zoom=0.1, translate=0.1), seed=0)(
            x, training=True
        )
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
    out = np.asarray(preprocess.Augment(only(hed=0.05), seed=0)(x, training=True))
    assert 0 < np.abs(out - x).mean() < 30
    for a, b in zip(out, x):
        assert np.corrcoef(a[..., 0].ravel(), b[..., 0].ravel())[0, 1] > 0.9


def test_augment_survives_saving_config():
    layer = preprocess.Augment(AugmentConfig(rotation_deg=5.0), seed=7)
    cfg = layer.get_config()
    clone = type(layer).from_config(cfg)
    assert clone.config["rotation_deg"] == 5.0 and clone.seed == 7


def test_patch_batches_keep_images_and_labels_together():
    n = 100
    images = np.zeros((n, 50, 50, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(n)  # each image carries its own index
    index = np.arange(0, n, 2)[::-1]  # a subset, in a shuffled-looking order
    labels = index.astype(np.float32)
    seen = []
    for x, y in preprocess.patch_batches(images, index, labels, batch_size=7, shuffle=True, seed=0):
        x = x.numpy()
        np.testing.assert_array_equal(x[:, 0, 0, 0].astype(np.float32), y.numpy())
        seen.extend(y.numpy().tolist())
    assert sorted(seen) == sorted(labels.tolist()), "one epoch visits every patch once"


def test_patch_batches_shuffle_is_seeded():
    images = np.zeros((40, 50, 50, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(40)
    order = lambda seed: [
        int(v)
        for x, _ in preprocess.patch_batches(
            images, np.arange(40), None, batch_size=8, shuffle=True, seed=seed
        )
        for v in x.numpy()[:, 0, 0, 0]
    ]
    assert order(1) == order(1) and order(1) != order(2) and order(1) != list(range(40))


def test_resize_and_scale_match_the_model_layers():
    import keras

    x = np.random.default_rng(0).integers(0, 256, (2, 50, 50, 3)).astype(np.float32)
    for scaling in ("unit", "lite", "raw"):
        inp = keras.Input((50, 50, 3))
        m = keras.Model(inp, preprocess.input_layers(inp, 96, scaling))
        np.testing.assert_allclose(
            m.predict(x, verbose=0), preprocess.resize_and_scale(x, 96, scaling), atol=1e-4
        )
    lo, hi = preprocess.resize_and_scale(
        np.array([[[[0, 127, 255]]]], np.float32), 1, "lite"
    ).ravel()[[0, 2]]
    assert lo == pytest.approx(-127 / 128) and hi == pytest.approx(1.0)


def test_pipeline_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="labels"):
        preprocess.patch_batches(np.zeros((4, 50, 50, 3), np.uint8), [0, 1], [0.0])


def test_chapter_figures_and_tables():
    x, base = asymmetric_batch(2)
    patches = x.astype(np.uint8)
    t = figures.scaling_table(patches)
    assert t.loc["unit", "max"] == pytest.approx(1.0) and t.loc["lite", "min"] == pytest.approx(
        -127 / 128
    )
    fig = figures.plot_resize(patches, ["a", "b"], 96)  # each patch: stored, nearest, bilinear
    shown = [ax.images[0].get_array() for ax in fig.axes]
    assert len(shown) == 6 and shown[0].shape[:2] == (50, 50) and shown[1].shape[:2] == (96, 96)
    np.testing.assert_array_equal(np.asarray(shown[0]), patches[0])
    fig = figures.plot_hed(patches, ["a", "b"])
    np.testing.assert_allclose(
        np.asarray(fig.axes[1].images[0].get_array()), preprocess.hed_channels(patches[0])[..., 0]
    )
    fig = figures.plot_scaling(patches)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["unit", "lite"]
    gallery = figures.augmentation_gallery(patches[0], AugmentConfig(), draws=3)
    assert set(gallery) >= {"original", "flips", "hed", "all together"}
    assert all(v.shape == (3, 50, 50, 3) for v in gallery.values())
    np.testing.assert_array_equal(gallery["original"][0], patches[0])
    assert not np.array_equal(gallery["all together"][0], patches[0])
    fig = figures.plot_gallery(gallery)
    assert len(fig.axes) == 3 * len(gallery) and fig.axes[0].get_ylabel() == "original"
    # the profile trains without free rotation: the gallery shows the paper's, marked off
    trained = AugmentConfig(rotation_deg=0.0, translate=0.0, zoom=0.0)
    marked = figures.augmentation_gallery(patches[0], trained, draws=3, paper=AugmentConfig.paper())
    off = "rotation_deg 15 (paper; off in training)"
    assert off in marked and "rotation_deg" not in marked
    assert not np.array_equal(marked[off][0], patches[0])
    assert set(figures.augmentation_gallery(patches[0], trained, draws=3)).isdisjoint(
        {off, "rotation_deg", "zoom", "translate"}
    )
    n, seconds = preprocess.pipeline_throughput(
        preprocess.patch_batches(patches, [0, 1], None, batch_size=1)
    )
    assert n == 2 and seconds > 0
