"""The legacy PyTorch checkpoint reader: tensors rebuilt with NumPy alone, code refused."""

from __future__ import annotations

import collections
import pickle
import struct
import sys
import types

import numpy as np
import pytest

from idc_utils.core.torch_weights import LEGACY_MAGIC, TorchCheckpointError, load_legacy_state_dict
from idc_utils.models import lite0


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


def test_shipped_lite0_checkpoint_reads_completely():
    sd = load_legacy_state_dict(lite0.lite0_weights_path())
    assert len(sd) == 296
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_fc.weight"].shape == (1000, 1280)
    assert not any("_se_" in k for k in sd), "Lite0 has no squeeze-excite"
