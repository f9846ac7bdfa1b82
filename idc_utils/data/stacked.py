"""Patch arrays read as one, without a copy: the dataset's memory map (2.1 GB for the Kaggle
set) with a few thousand synthetic patches after it, indexed as the input pipeline indexes
(:func:`~idc_utils.data.pipeline.patch_batches`: one row, a slice, or an array of rows)."""

from __future__ import annotations

import numpy as np


class StackedPatches:
    """``parts`` (arrays of patches of one shape and dtype) one after the other, as
    ``np.concatenate(parts)`` would be, but each read goes to the part that holds the row."""

    def __init__(self, *parts: np.ndarray):
        if not parts:
            raise ValueError("StackedPatches needs at least one array of patches")
        first = parts[0]
        for p in parts[1:]:
            if p.shape[1:] != first.shape[1:] or p.dtype != first.dtype:
                raise ValueError(
                    f"patches of {p.shape[1:]} {p.dtype} cannot follow {first.shape[1:]} "
                    f"{first.dtype}: resize or convert them first"
                )
        self.parts = parts
        self.starts = np.cumsum([0, *(len(p) for p in parts)])
        self.shape = (int(self.starts[-1]), *first.shape[1:])
        self.dtype = first.dtype
        self.ndim = first.ndim

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows):
        if isinstance(rows, (int, np.integer)):
            row = int(rows) + (len(self) if rows < 0 else 0)
            if not 0 <= row < len(self):
                raise IndexError(f"row {rows} of {len(self)} patches")
            k = int(np.searchsorted(self.starts, row, side="right")) - 1
            return self.parts[k][row - self.starts[k]]
        if isinstance(rows, slice):
            rows = np.arange(len(self))[rows]
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        rows = np.where(rows < 0, rows + len(self), rows).astype(np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows outside 0..{len(self) - 1}")
        out = np.empty((len(rows), *self.shape[1:]), self.dtype)
        part_of = np.searchsorted(self.starts, rows, side="right") - 1
        for k, part in enumerate(self.parts):
            mine = np.flatnonzero(part_of == k)
            if mine.size:
                out[mine] = part[rows[mine] - self.starts[k]]
        return out

    def __array__(self, dtype=None, copy=None):
        whole = np.concatenate([np.asarray(p) for p in self.parts])
        return whole if dtype is None else whole.astype(dtype)
