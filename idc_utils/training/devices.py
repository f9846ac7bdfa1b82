"""Where training runs: the device, the distribution strategy and the numeric policy.

On a GPU: mixed precision, XLA compilation, and ``tf.distribute.MirroredStrategy`` over all local
GPUs. For several machines use ``tf.distribute.MultiWorkerMirroredStrategy`` with ``TF_CONFIG``
set on each worker (``strategy="multiworker"``); the rest of the code is unchanged."""

from __future__ import annotations

import contextlib
import json
import os
import platform
from dataclasses import dataclass


@dataclass
class Device:
    """The machine a training runs on, as :func:`configure_device` set it up."""

    kind: str  # "cpu" | "gpu"
    gpus: int
    strategy: object
    mixed_precision: bool
    jit_compile: bool
    description: str
    worker: int = 0  # this process's index among the workers (multi-worker training)
    workers: int = 1

    @property
    def is_chief(self) -> bool:
        return self.worker == 0


def configure_device(
    mixed_precision: str | bool = "auto", jit: str | bool = "auto", strategy: str = "auto"
) -> Device:
    """Pick the distribution strategy and numeric policy for this machine.

    ``strategy="multiworker"``: ``tf.distribute.MultiWorkerMirroredStrategy`` over the workers of
    ``$TF_CONFIG``. It must exist before TensorFlow runs any other operation, so it is created
    first here: call this before anything else touches TensorFlow."""
    import tensorflow as tf

    worker, workers = 0, 1
    multi = None
    if strategy == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError(
                "strategy 'multiworker' needs TF_CONFIG (the cluster and this worker's index)"
            )
        multi = tf.distribute.MultiWorkerMirroredStrategy()
        tf_config = json.loads(os.environ["TF_CONFIG"])
        worker = int(tf_config.get("task", {}).get("index", 0))
        workers = len(tf_config.get("cluster", {}).get("worker", [])) or 1
    import keras

    gpus = tf.config.list_physical_devices("GPU")
    for g in gpus:
        with contextlib.suppress(RuntimeError):  # too late once the GPU is initialised
            tf.config.experimental.set_memory_growth(g, True)
    on_gpu = len(gpus) > 0
    mp = on_gpu if mixed_precision == "auto" else bool(mixed_precision)
    keras.mixed_precision.set_global_policy("mixed_float16" if mp else "float32")
    if multi is not None:
        strat = multi
    elif (strategy == "auto" and len(gpus) > 1) or strategy == "mirrored":
        strat = tf.distribute.MirroredStrategy()
    else:
        strat = tf.distribute.get_strategy()
    jit_compile = on_gpu if jit == "auto" else bool(jit)
    if on_gpu:
        names = [
            tf.config.experimental.get_device_details(g).get("device_name", "GPU") for g in gpus
        ]
        desc = f"{len(gpus)} GPU(s): {', '.join(names)}"
    else:
        desc = f"CPU ({os.cpu_count()} cores, {platform.machine()})"
    if workers > 1:
        desc += f", worker {worker} of {workers} (MultiWorkerMirroredStrategy)"
    return Device(
        "gpu" if on_gpu else "cpu", len(gpus), strat, mp, jit_compile, desc, worker, workers
    )


def fit_scope(model, device: Device):
    """Where ``model.fit`` runs. One process: nowhere special. Several workers: inside the
    strategy's scope, with two Keras 3 defects of ``MultiWorkerMirroredStrategy`` worked around
    (tensorflow/tensorflow#72388): ``fit`` reduces the first batch as a nested structure before
    training (the collective reduce takes one tensor), and averages scalar metrics along an axis
    they do not have. The model is marked as not built under a strategy so that the first is
    skipped (it is built when the step is traced, inside the scope), and scalar means reduce over
    all axes."""
    if device.workers <= 1:
        return contextlib.nullcontext()
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as tf_trainer

    if not getattr(tf_trainer.reduce_per_replica, "_idc_fixed", False):
        original = tf_trainer.reduce_per_replica

        def reduce_per_replica(values, strategy, reduction):
            if tf_trainer._collective_all_reduce_multi_worker(strategy) and reduction in (
                "auto",
                "mean",
            ):
                return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
            return original(values, strategy, reduction)

        reduce_per_replica._idc_fixed = True
        tf_trainer.reduce_per_replica = reduce_per_replica
    model._distribute_strategy = None
    return device.strategy.scope()
