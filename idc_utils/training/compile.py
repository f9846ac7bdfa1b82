"""How a model is compiled for training: Adam at a constant learning rate or one decaying along a
cosine, binary cross-entropy (optionally label-smoothed), and the metrics the callbacks watch
(AUC, recall, precision)."""

from __future__ import annotations

from idc_utils.training.devices import Device


def learning_rate(lr: float, schedule: str, total_steps: int):
    """A constant rate, or cosine decay from ``lr`` to 0 over the phase's ``total_steps``."""
    import keras

    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            lr, decay_steps=max(1, total_steps), alpha=0.0
        )
    raise ValueError(f"unknown schedule {schedule!r}; use 'constant' or 'cosine'")


def training_metrics() -> list:
    """What ``model.fit`` reports after each epoch, on training and validation batches: AUC (which
    the callbacks watch), and recall and precision at a threshold of 0.5."""
    import keras

    return [
        keras.metrics.AUC(name="auc", num_thresholds=500),
        keras.metrics.Recall(name="recall"),
        keras.metrics.Precision(name="precision"),
    ]


def compile_model(model, lr, device: Device, label_smoothing: float = 0.0):
    """Compile ``model`` with Adam at ``lr`` (a rate or a schedule), binary cross-entropy and
    :func:`training_metrics` (XLA when the device uses it). Chapter 5 writes this call out."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing),
        metrics=training_metrics(),
        jit_compile=device.jit_compile,
    )
