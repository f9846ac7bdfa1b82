"""The classifiers: the Lite0 weight port, raw patches in, which layers train."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

from idc_utils.core import errors
from idc_utils.core.torch_weights import load_legacy_state_dict
from idc_utils.models import classifier, lite0

FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="module")
def imagenet_lite0():
    return lite0.lite0_imagenet_classifier(224)


def test_keras_port_matches_pytorch_reference(imagenet_lite0):
    """tests/fixtures/lite0_reference.npz holds PyTorch's probabilities for a fixed input
    (tools/make_lite0_reference.py); the Keras port must reproduce them."""
    ref = np.load(FIXTURES / "lite0_reference.npz")
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (2, 28, 28, 3)).astype(np.float32)
    x = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)
    probs = imagenet_lite0.predict(x, verbose=0)
    np.testing.assert_allclose(probs, ref["probs"], atol=2e-5)
    assert (probs.argmax(1) == ref["probs"].argmax(1)).all()


def test_port_recognises_the_cat(imagenet_lite0):
    from skimage import data as skdata

    top5 = lite0.imagenet_top5(imagenet_lite0, skdata.chelsea())
    classes = [c for c, _ in top5]
    assert classes[0] in lite0.IMAGENET_CATS
    assert len(set(classes) & set(lite0.IMAGENET_CATS)) >= 3, top5
    assert top5[0][1] > 0.5


@pytest.mark.parametrize(
    "backbone, size",
    [
        ("cnn", 50),
        ("efficientnet_lite0", 50),
        ("efficientnet_lite0", 96),
        ("efficientnet_lite0", 200),
    ],
)
def test_classifiers_build_and_take_raw_patches(backbone, size):
    m = classifier.build_classifier(
        backbone, size, weights="imagenet" if backbone != "cnn" else None
    )
    assert m.input_shape == (None, 50, 50, 3) and m.output_shape == (None, 1)
    x = np.random.default_rng(0).integers(0, 256, (3, 50, 50, 3)).astype(np.uint8)
    p = m.predict(x, verbose=0)
    assert p.shape == (3, 1) and ((p > 0) & (p < 1)).all()
    assert m.get_layer("pre_resize").output.shape[1] == size


def test_imagenet_features_survive_into_the_classifier():
    m = classifier.build_classifier("efficientnet_lite0", 96)
    sd = load_legacy_state_dict(lite0.lite0_weights_path())
    np.testing.assert_array_equal(
        m.get_layer("lite0_stem_conv").get_weights()[0],
        np.transpose(sd["_conv_stem.weight"], (2, 3, 1, 0)),
    )


def test_set_trainable_unfreezes_only_the_last_blocks():
    import keras

    m = classifier.build_classifier("efficientnet_lite0", 64, weights=None)
    c = classifier.set_trainable(m, "efficientnet_lite0", 0)
    assert {w.path.split("/")[0] for w in m.trainable_weights} == {"head_prob"}
    classifier.set_trainable(m, "efficientnet_lite0", 2)
    names = {layer.name for layer in m.layers if layer.trainable and layer.weights}
    assert "lite0_block15_project_conv" in names and "lite0_block14_dwconv" in names
    assert "lite0_block13_dwconv" not in names and "lite0_top_conv" in names
    assert not any(isinstance(m.get_layer(n), keras.layers.BatchNormalization) for n in names)
    classifier.set_trainable(m, "efficientnet_lite0", "all", train_bn=True)
    # everything trains except BatchNorm's moving statistics, which are never gradient-trained
    assert all("moving_" in w.path for w in m.non_trainable_weights)
    assert c["trainable_params"] == 1281


def test_b0_without_network_says_what_to_do(monkeypatch):
    import keras

    def offline(*a, **k):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(keras.applications, "EfficientNetB0", offline)
    with pytest.raises(errors.WeightsUnavailableError, match="efficientnet_lite0"):
        classifier.build_classifier("efficientnet_b0", 64)


def test_b0_builds_without_weights():
    m = classifier.build_classifier("efficientnet_b0", 64, weights=None)
    assert m.get_layer("top_activation") is not None and m.output_shape == (None, 1)


def test_unknown_backbone():
    with pytest.raises(ValueError, match="unknown backbone"):
        classifier.build_classifier("resnet", 64)


def test_the_block_table_is_read_from_the_built_model_and_matches_b0s_table():
    m = classifier.build_classifier("efficientnet_lite0", 96, weights=None)
    table = lite0.block_table(m)
    stages = [
        (e, int(k[0]), s, c, r)
        for e, k, s, c, r in table[
            ["expansion", "kernel", "stride", "channels", "repeats"]
        ].itertuples(index=False)
    ]
    assert stages == [(e, k, s, f_out, r) for e, k, s, _, f_out, r in lite0.LITE0_STAGES]
    assert list(table["resolution"]) == [48, 24, 12, 6, 6, 3, 3], "96 px halves at each stride 2"
    # a block adds its input back only when stride 1 keeps the shape: every repeat but the first
    assert list(table["skips"]) == [r - 1 for *_, r in lite0.LITE0_STAGES]
    backbone = sum(
        layer.count_params() for layer in m.layers if layer.name.startswith("lite0_block")
    )
    assert table["params"].sum() == backbone


def test_an_mbconv_block_expands_filters_depthwise_and_projects():
    import keras

    x = keras.Input((8, 8, 16))
    block = keras.Model(x, lite0.mbconv_block(x, 6, 3, 1, 16, "b"))
    kinds = [type(layer).__name__ for layer in block.layers[1:]]
    assert kinds[0] == "Conv2D" and "DepthwiseConv2D" in kinds and kinds[-1] == "Add"
    assert block.get_layer("b_expand_conv").filters == 96
    assert block.get_layer("b_dwconv").count_params() == 3 * 3 * 96
    strided = keras.Model(x, lite0.mbconv_block(x, 6, 5, 2, 24, "c"))
    assert strided.output.shape[1:] == (4, 4, 24) and "c_add" not in [
        layer.name for layer in strided.layers
    ]


def test_multiply_adds_count_each_convolution_once():
    import keras

    x = keras.Input((10, 10, 3))
    y = keras.layers.Conv2D(4, 3, padding="same")(x)
    y = keras.layers.DepthwiseConv2D(3, padding="same")(y)
    y = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(y))
    assert classifier.multiply_adds(keras.Model(x, y)) == 100 * 4 * 27 + 100 * 4 * 9 + 4 * 2
    cnn = classifier.build_classifier("cnn", 50, weights=None, cnn_width=16)
    assert 20e6 < classifier.multiply_adds(cnn) < 30e6
