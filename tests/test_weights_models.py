"""The legacy-checkpoint reader, the Lite0 port (against PyTorch's own output), model building."""

from __future__ import annotations

import collections
import pickle
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from idc_utils import models
from idc_utils.torch_weights import LEGACY_MAGIC, TorchCheckpointError, load_legacy_state_dict

FIXTURES = Path(__file__).parent / "fixtures"


# ----------------------------------------------------------------------------- reader


@pytest.fixture
def fake_torch(monkeypatch):
    """Stand-in 'torch' modules so the test can *write* a legacy checkpoint without torch."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    class LongStorage:
        pass

    def _rebuild_tensor_v2(*a):
        raise AssertionError("never called when writing")

    FloatStorage.__module__ = LongStorage.__module__ = "torch"
    FloatStorage.__qualname__, LongStorage.__qualname__ = "FloatStorage", "LongStorage"
    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    torch.FloatStorage, torch.LongStorage, torch._utils = FloatStorage, LongStorage, utils
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


def write_legacy(path, tensors: dict, torch):
    """Write tensors like torch.save(..., _use_new_zipfile_serialization=False) does."""

    class Tensor:
        def __init__(self, key, arr, offset, size, stride):
            self.key, self.arr, self.args = key, arr, (offset, size, stride)

        def __reduce__(self):
            offset, size, stride = self.args
            return (
                torch._utils._rebuild_tensor_v2,
                (
                    StorageRef(self.key, self.arr),
                    offset,
                    size,
                    stride,
                    False,
                    collections.OrderedDict(),
                ),
            )

    class StorageRef:
        def __init__(self, key, arr):
            self.key, self.arr = key, arr

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, StorageRef):
                kind = torch.FloatStorage if obj.arr.dtype == np.float32 else torch.LongStorage
                return ("storage", kind, obj.key, "cpu", obj.arr.size, None)
            return None

    storages = {}
    state = collections.OrderedDict()
    for k, (name, (arr, offset, size, stride)) in enumerate(tensors.items()):
        storages[str(k)] = arr
        state[name] = Tensor(str(k), arr, offset, size, stride)
    with open(path, "wb") as f:
        pickle.dump(LEGACY_MAGIC, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump(
            {"protocol_version": 1001, "little_endian": True, "type_sizes": {}}, f, protocol=2
        )
        P(f, protocol=2).dump(state)
        pickle.dump(list(storages), f, protocol=2)
        for arr in storages.values():
            f.write(struct.pack("<q", arr.size))
            f.write(arr.astype(arr.dtype.newbyteorder("<")).tobytes())


def test_reader_rebuilds_tensors_with_offsets_and_strides(tmp_path, fake_torch):
    base = np.arange(24, dtype=np.float32)
    counts = np.array([7], dtype=np.int64)
    path = tmp_path / "w.pth"
    write_legacy(
        path,
        {
            "conv.weight": (base, 0, (2, 3, 4), (12, 4, 1)),
            "transposed": (base, 0, (4, 3), (1, 4)),  # a non-contiguous view
            "tail": (base, 20, (4,), (1,)),  # an offset into the storage
            "bn.num_batches_tracked": (counts, 0, (), ()),
        },
        fake_torch,
    )
    sd = load_legacy_state_dict(path)
    np.testing.assert_array_equal(sd["conv.weight"], base.reshape(2, 3, 4))
    np.testing.assert_array_equal(sd["transposed"], base[:12].reshape(3, 4).T)
    np.testing.assert_array_equal(sd["tail"], base[20:])
    assert sd["bn.num_batches_tracked"] == 7 and sd["bn.num_batches_tracked"].dtype == np.int64


def test_reader_refuses_code_and_other_files(tmp_path):
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump(LEGACY_MAGIC, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump({"little_endian": True}, f, protocol=2)
        f.write(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(TorchCheckpointError, match="refusing to load os.system"):
        load_legacy_state_dict(evil)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(TorchCheckpointError, match="not a PyTorch checkpoint"):
        load_legacy_state_dict(junk)
    zipped = tmp_path / "new.pth"
    zipped.write_bytes(b"PK\x03\x04rest")
    with pytest.raises(TorchCheckpointError, match="zip-format"):
        load_legacy_state_dict(zipped)


# ----------------------------------------------------------------------------- the real weights


def test_shipped_lite0_checkpoint_reads_completely():
    sd = load_legacy_state_dict(models.lite0_weights_path())
    assert len(sd) == 296
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_fc.weight"].shape == (1000, 1280)
    assert not any("_se_" in k for k in sd), "Lite0 has no squeeze-excite"


@pytest.fixture(scope="module")
def imagenet_lite0():
    return models.lite0_imagenet_classifier(224)


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

    top5 = models.imagenet_top5(imagenet_lite0, skdata.chelsea())
    classes = [c for c, _ in top5]
    assert classes[0] in models.IMAGENET_CATS
    assert len(set(classes) & set(models.IMAGENET_CATS)) >= 3, top5
    assert top5[0][1] > 0.5


# ----------------------------------------------------------------------------- classifiers


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
    m = models.build_classifier(backbone, size, weights="imagenet" if backbone != "cnn" else None)
    assert m.input_shape == (None, 50, 50, 3) and m.output_shape == (None, 1)
    x = np.random.default_rng(0).integers(0, 256, (3, 50, 50, 3)).astype(np.uint8)
    p = m.predict(x, verbose=0)
    assert p.shape == (3, 1) and ((p > 0) & (p < 1)).all()
    assert m.get_layer("pre_resize").output.shape[1] == size


def test_imagenet_features_survive_into_the_classifier():
    m = models.build_classifier("efficientnet_lite0", 96)
    sd = load_legacy_state_dict(models.lite0_weights_path())
    np.testing.assert_array_equal(
        m.get_layer("lite0_stem_conv").get_weights()[0],
        np.transpose(sd["_conv_stem.weight"], (2, 3, 1, 0)),
    )


def test_set_trainable_unfreezes_only_the_last_blocks():
    import keras

    m = models.build_classifier("efficientnet_lite0", 64, weights=None)
    c = models.set_trainable(m, "efficientnet_lite0", 0)
    assert {w.path.split("/")[0] for w in m.trainable_weights} == {"head_prob"}
    models.set_trainable(m, "efficientnet_lite0", 2)
    names = {layer.name for layer in m.layers if layer.trainable and layer.weights}
    assert "lite0_block15_project_conv" in names and "lite0_block14_dwconv" in names
    assert "lite0_block13_dwconv" not in names and "lite0_top_conv" in names
    assert not any(isinstance(m.get_layer(n), keras.layers.BatchNormalization) for n in names)
    models.set_trainable(m, "efficientnet_lite0", "all", train_bn=True)
    # everything trains except BatchNorm's moving statistics, which are never gradient-trained
    assert all("moving_" in w.path for w in m.non_trainable_weights)
    assert c["trainable_params"] == 1281


def test_b0_without_network_says_what_to_do(monkeypatch):
    import keras

    def offline(*a, **k):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(keras.applications, "EfficientNetB0", offline)
    with pytest.raises(models.WeightsUnavailableError, match="efficientnet_lite0"):
        models.build_classifier("efficientnet_b0", 64)


def test_b0_builds_without_weights():
    m = models.build_classifier("efficientnet_b0", 64, weights=None)
    assert m.get_layer("top_activation") is not None and m.output_shape == (None, 1)


def test_unknown_backbone():
    with pytest.raises(ValueError, match="unknown backbone"):
        models.build_classifier("resnet", 64)
