"""Keras callbacks of the fit loop: the source paper's two, ``ModelCheckpoint`` (keep the best
epoch) and ``EarlyStopping`` (stop when validation AUC has not improved for ``patience`` epochs);
a one-line log per epoch with the time left, and one history CSV shared by all phases (each row
names its phase)."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd


def best_epoch_callbacks(best_path: Path, patience: int, best_so_far: float | None = None) -> list:
    """The source paper's two callbacks, both watching validation AUC after every epoch.

    ``ModelCheckpoint`` saves the weights whenever validation AUC beats its best so far (an
    interrupted run passes the best it had reached as ``best_so_far``), so the best epoch, not
    the last, is kept. ``EarlyStopping`` ends the phase when validation AUC has not improved for
    ``patience`` epochs in a row."""
    import keras

    return [
        keras.callbacks.ModelCheckpoint(
            str(best_path),
            monitor="val_auc",
            mode="max",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=best_so_far,
        ),
        keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=patience),
    ]


def epoch_logger(total_epochs: int, phase: str, log):
    """Log one line per epoch: its time, at most how long the phase has left, the metrics."""
    import keras

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            dt = time.perf_counter() - self.t0
            left = (total_epochs - epoch - 1) * dt
            keys = ("loss", "auc", "val_loss", "val_auc", "val_recall", "val_precision")
            vals = "  ".join(f"{k} {logs[k]:.4f}" for k in keys if k in logs)
            log(
                f"[{phase}] epoch {epoch + 1}/{total_epochs}  {dt:5.0f} s  (at most "
                f"{left / 60:.1f} min left)  {vals}"
            )

    return EpochLog()


def phase_history(path: Path, phase: str) -> pd.DataFrame:
    """The rows of the history CSV at ``path`` that belong to ``phase``."""
    if not path.exists():
        return pd.DataFrame(columns=["phase", "val_auc"])
    h = pd.read_csv(path)
    return h[h["phase"] == phase]


def phase_csv(path: Path, phase: str):
    """A callback that appends each epoch's metrics, with the phase name, to ``path``."""
    import keras

    class PhaseCSV(keras.callbacks.Callback):
        """Append one row per epoch (with the phase name) to a CSV shared by all phases."""

        def on_epoch_end(self, epoch, logs=None):
            row = {
                "phase": phase,
                "epoch": epoch + 1,
                **{k: float(v) for k, v in (logs or {}).items()},
            }
            df = pd.DataFrame([row])
            df.to_csv(path, mode="a", header=not path.exists(), index=False)

    return PhaseCSV()
