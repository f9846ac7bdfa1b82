"""The ``tf.data`` input pipeline: batches of raw uint8 patches (and labels) gathered from the
(memory-mapped) patch array by index, so the full 277k set never has to be copied into a
tensor."""

from __future__ import annotations

import numpy as np


def patch_batches(
    images: np.ndarray,
    index: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    repeat: bool = False,
):
    """``tf.data`` pipeline of ``(uint8 patches, float labels)`` batches.

    ``index`` selects rows of ``images`` (e.g. ``manifest['i']`` of the train split). Shuffling
    happens on indices each epoch (seeded), batches are gathered from the array with NumPy (the
    array may be a memory map), and prefetching overlaps loading with the model's work.
    """
    import tensorflow as tf

    index = np.asarray(index, dtype=np.int64)
    labels_arr = (
        np.zeros(len(index), np.float32) if labels is None else np.asarray(labels, np.float32)
    )
    if len(labels_arr) != len(index):
        raise ValueError(f"{len(index)} indices but {len(labels_arr)} labels")
    h, w, c = images.shape[1:]

    def gather(rows):
        rows = np.asarray(rows)
        order = np.argsort(index[rows], kind="stable")  # sorted reads are kinder to a memory map
        got = np.empty((len(rows), h, w, c), np.uint8)
        got[order] = images[index[rows][order]]
        return got, labels_arr[rows]

    ds = tf.data.Dataset.range(len(index))
    if shuffle:
        ds = ds.shuffle(len(index), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size)

    def load(rows):
        x, y = tf.numpy_function(gather, [rows], [tf.uint8, tf.float32], stateful=False)
        x.set_shape([None, h, w, c])
        y.set_shape([None])
        return x, y

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def pipeline_throughput(pipe) -> tuple[int, float]:
    """One full pass over a ``tf.data`` pipeline: ``(patches, seconds)``."""
    import time

    n, t0 = 0, time.perf_counter()
    for _, y in pipe:
        n += len(y)
    return n, time.perf_counter() - t0
