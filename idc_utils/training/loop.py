"""The fit loop: train a classifier in phases, keep the best weights, choose its threshold on
validation patients, save the model and its card.

A training run is a list of **phases** (:mod:`idc_utils.training.config`). The CNN has one
(everything trainable, BatchNorm included). Transfer learning has two, as in the source paper:
(1) the ImageNet backbone frozen, only the new head learns, at Adam 1e-3 (with
``head_on_features`` on the frozen backbone's features, computed once: the same result as full
passes, in seconds); (2) the last ``unfreeze_blocks`` blocks unfrozen at a lower learning rate,
constant or decaying along a cosine. BatchNorm statistics stay frozen in phase 2 unless
``train_bn`` (re-estimating them doubles the CPU cost and needs batches of 16 or more). Binary
cross-entropy, class weights, EarlyStopping on validation AUC with the best weights kept, a CSV
history, seeds; the operating threshold is chosen on validation patients' scores (with test-time
augmentation when ``tta``).

An identical earlier training is reused (:mod:`idc_utils.training.reuse`); ``force=True`` (or
``IDC_FORCE_TRAIN=1``, what ``make book FORCE=1`` sets) retrains. Interrupted runs resume: each
phase backs up its state every epoch (``keras.callbacks.BackupAndRestore``) and a finished phase
leaves its best weights, so calling :func:`fit` again with the same arguments carries on where it
stopped.

:func:`fit` is :func:`prepare`, then each phase (:meth:`Training.start_phase`, ``model.compile``,
``model.fit`` with :meth:`Training.callbacks`, :meth:`Training.end_phase`), then
:meth:`Training.finish`. Chapter 5 writes these steps out for the CNN, so that its compile and fit
are in view and can be changed there.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from idc_utils.core.digests import file_sha256
from idc_utils.core.paths import display_path
from idc_utils.data.pipeline import patch_batches
from idc_utils.evaluation.thresholds import validation_operating_point
from idc_utils.models import cards, classifier
from idc_utils.models.augment import Augment
from idc_utils.models.preprocessing import SCALING
from idc_utils.training.callbacks import (
    best_epoch_callbacks,
    epoch_logger,
    phase_csv,
    phase_history,
)
from idc_utils.training.class_weights import class_weights
from idc_utils.training.compile import compile_model, learning_rate
from idc_utils.training.config import Phase, TrainConfig
from idc_utils.training.devices import Device, configure_device, fit_scope
from idc_utils.training.head_on_features import fit_head_on_features
from idc_utils.training.reuse import TrainResult, reusable_result, reuse_key


def build_model(cfg: TrainConfig):
    """The classifier that is trained and saved (preprocessing inside, augmentation not)."""
    return classifier.build_classifier(
        cfg.backbone,
        cfg.image_size,
        weights=cfg.weights,
        dropout=cfg.dropout,
        cnn_width=cfg.cnn_width,
    )


def training_batches(cfg: TrainConfig, images, rows, repeat: bool = False):
    """Shuffled, augmented training batches. Augmentation runs in the input pipeline (on the
    CPU, overlapped with the model by prefetching), so the model itself stays XLA-compilable and
    the saved model holds no training-only layers."""
    import tensorflow as tf

    ds = patch_batches(
        images,
        rows["i"],
        rows["label"],
        batch_size=cfg.batch_size,
        shuffle=True,
        seed=cfg.seed,
        repeat=repeat,
    )
    if cfg.augment:
        aug = Augment(cfg.augment, seed=cfg.seed, dtype="float32")
        ds = ds.map(
            lambda x, y: (aug(tf.cast(x, tf.float32), training=True), y)
        )  # sequential: seeded order
    return ds.prefetch(tf.data.AUTOTUNE)


def prepare(
    cfg: TrainConfig,
    images: np.ndarray,
    split_df: pd.DataFrame,
    out_dir: str | Path,
    name: str,
    *,
    data_fingerprint: str = "",
    device: Device | None = None,
    log=print,
    force: bool | None = None,
) -> Training:
    """Everything a training needs before ``model.fit``, or the earlier identical training.

    Returns a :class:`Training`. When a model trained with the same configuration, data and split
    is saved in ``out_dir``, ``needs_training`` is false and :meth:`Training.finish` returns it
    (``force=True``, or ``IDC_FORCE_TRAIN=1``, retrains). Otherwise it holds the built model, the
    training and validation batches and the class weights, and picks up an interrupted run of
    the same configuration. ``split_df`` needs columns ``i`` (row of ``images``), ``label``,
    ``split``, ``patient_id``.
    """
    from idc_utils.core.seeding import seed_everything

    device = device or configure_device()
    out_dir = Path(out_dir)
    if not device.is_chief:
        # every worker saves (all take part in each step); the chief's copy is the one that counts
        out_dir = out_dir / f"worker-{device.worker}"
    out_dir.mkdir(parents=True, exist_ok=True)
    key = reuse_key(cfg, split_df, data_fingerprint)
    train = split_df[split_df["split"] == "train"]
    val = split_df[split_df["split"] == "val"]
    if force is None:
        force = os.environ.get("IDC_FORCE_TRAIN", "") not in ("", "0")
    done = None if force else reusable_result(out_dir, name, key)
    if done is not None:
        log(
            f"[{name}] reused {done.model_path.name}, trained {done.card.get('created', '?')}: "
            "same configuration, data and split (force=True or make book FORCE=1 retrains)"
        )
        return Training(
            cfg,
            images,
            train,
            val,
            out_dir,
            name,
            device,
            log,
            data_fingerprint,
            done.model,
            key=key,
            done=done,
        )
    seed_everything(cfg.seed)
    if train.empty or val.empty:
        raise ValueError("need both a 'train' and a 'val' split (run chapter 01 first)")
    run = _start(cfg, images, train, val, out_dir, name, device, log, data_fingerprint)
    run.key = key
    return run


def fit(
    cfg: TrainConfig,
    images: np.ndarray,
    split_df: pd.DataFrame,
    out_dir: str | Path,
    name: str,
    *,
    data_fingerprint: str = "",
    device: Device | None = None,
    log=print,
    verbose: int = 0,
    extra_callbacks: list | None = None,
    force: bool | None = None,
) -> TrainResult:
    """Train on ``split_df[split == 'train']``, early-stop on ``val``; save ``<name>.keras`` and
    the model card ``<name>.json`` (with the validation-chosen threshold) into ``out_dir``:
    :func:`prepare`, each phase (:func:`run_phase`), :meth:`Training.finish`."""
    run = prepare(
        cfg,
        images,
        split_df,
        out_dir,
        name,
        data_fingerprint=data_fingerprint,
        device=device,
        log=log,
        force=force,
    )
    if run.needs_training:
        for phase in cfg.phases:
            run_phase(run, phase, verbose, extra_callbacks or [])
    return run.finish()


@dataclass
class Training:
    """One training in progress (or an identical earlier one, ``done``, reused): what it trains
    on, where it keeps its state, its model, its batches."""

    cfg: TrainConfig
    images: np.ndarray
    train: pd.DataFrame | None
    val: pd.DataFrame | None
    out_dir: Path
    name: str
    device: Device
    log: object
    data_fingerprint: str
    model: object = None
    state: dict = field(default_factory=dict)
    batches: tuple = ()  # (training, validation) tf.data pipelines, shared by the phases
    key: dict = field(default_factory=dict)
    done: TrainResult | None = None
    _t0: float = 0.0

    @property
    def needs_training(self) -> bool:
        """False when an identical earlier training is reused."""
        return self.done is None

    @property
    def work(self) -> Path:
        return self.out_dir / f"{self.name}.work"

    @property
    def history_csv(self) -> Path:
        return self.out_dir / f"{self.name}.history.csv"

    @property
    def train_batches(self):
        """Shuffled, augmented training batches (:func:`training_batches`)."""
        return self.batches[0]

    @property
    def val_batches(self):
        """Validation batches, in order, never augmented."""
        return self.batches[1]

    @property
    def class_weight(self) -> dict | None:
        """``model.fit``'s ``class_weight``: each class carries half of the loss, or ``None``."""
        return class_weights(self.train["label"]) if self.cfg.class_weights else None

    @property
    def steps_per_epoch(self) -> int:
        """Steps in one epoch: the cap of a rehearsal, or one pass over the training split."""
        return self.cfg.steps_per_epoch or int(np.ceil(len(self.train) / self.cfg.batch_size))

    def best_path(self, phase: Phase) -> Path:
        """Where ``ModelCheckpoint`` keeps the best weights of ``phase``."""
        return self.work / f"{phase.name}.best.weights.h5"

    def learning_rate(self, phase: Phase):
        """The phase's rate for Adam: a number, or a cosine decay over the phase's steps."""
        steps = phase.epochs * self.steps_per_epoch
        return learning_rate(phase.learning_rate, self.cfg.schedule, steps)

    def callbacks(self, phase: Phase, extra: list | tuple = ()) -> list:
        """``model.fit``'s callbacks for ``phase``: the best epoch kept and early stopping on
        validation AUC (:func:`~idc_utils.training.callbacks.best_epoch_callbacks`), then the
        plumbing: a backup every epoch (to resume), the history CSV, a log line per epoch."""
        import keras

        prior = phase_history(self.history_csv, phase.name)
        best_so_far = float(prior["val_auc"].max()) if len(prior) else None
        return [
            keras.callbacks.BackupAndRestore(str(self.work / phase.name)),
            *best_epoch_callbacks(self.best_path(phase), self.cfg.patience, best_so_far),
            phase_csv(self.history_csv, phase.name),
            epoch_logger(phase.epochs, phase.name, self.log),
            *extra,
        ]

    def start_phase(self, phase: Phase) -> bool:
        """Set which layers train in ``phase`` and say so; False (and its best weights restored)
        when an interrupted run already finished it."""
        if phase.name in self.state["done"]:
            self.model.load_weights(self.best_path(phase))
            self.log(f"[{self.name}] phase {phase.name}: already done, weights restored")
            return False
        cfg = self.cfg
        counts = classifier.set_trainable(
            self.model,
            cfg.backbone,
            phase.unfreeze_blocks,
            train_bn=cfg.train_bn and phase.unfreeze_blocks != 0,
        )
        cw = self.class_weight
        self.log(
            f"[{self.name}] phase {phase.name}: {phase.epochs} epochs at lr "
            f"{phase.learning_rate:g}, {counts['trainable_params']:,} of "
            f"{counts['total_params']:,} parameters trainable"
            + (f", class weights {{0: {cw[0]:.2f}, 1: {cw[1]:.2f}}}" if cw else "")
        )
        self._t0 = time.perf_counter()
        return True

    def end_phase(self, phase: Phase, seconds: float | None = None) -> None:
        """Keep the best epoch of ``phase`` (not the last) and record the phase as done."""
        best = self.best_path(phase)
        if best.exists():
            self.model.load_weights(best)
        else:  # no epoch beat an earlier best (possible after a resume)
            self.model.save_weights(best)
        took = time.perf_counter() - self._t0 if seconds is None else seconds
        done = self.state["seconds"]
        done[phase.name] = done.get(phase.name, 0) + took
        self.state["done"].append(phase.name)
        self.save_state()

    def finish(self) -> TrainResult:
        """Choose the threshold on validation patients, save the model and its card (or return
        the reused training)."""
        return self.done if self.done is not None else _finish(self, self.key)

    def save_state(self) -> None:
        (self.work / "state.json").write_text(json.dumps(self.state, indent=1))


def _start(cfg, images, train, val, out_dir, name, device, log, data_fingerprint) -> Training:
    """Build the model and pick up the state of an interrupted run of the same configuration
    (another configuration's is deleted)."""
    run = Training(cfg, images, train, val, out_dir, name, device, log, data_fingerprint)
    run.work.mkdir(exist_ok=True)
    state_path = run.work / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    if state and state.get("config") != cfg.as_dict():
        log(f"[{name}] configuration changed since the interrupted run: starting over")
        shutil.rmtree(run.work)
        run.work.mkdir()
        state = {}
    state.setdefault("config", cfg.as_dict())
    state.setdefault("done", [])
    state.setdefault("seconds", {})
    run.state = state
    with device.strategy.scope():
        run.model = build_model(cfg)
    run.batches = (
        training_batches(cfg, images, train, repeat=cfg.steps_per_epoch is not None),
        patch_batches(images, val["i"], val["label"], batch_size=max(cfg.batch_size, 64)),
    )
    started = any((run.work / p.name).exists() for p in cfg.phases)
    if not state["done"] and run.history_csv.exists() and not started:
        run.history_csv.unlink()  # the history of an earlier, finished training
    return run


def run_phase(run: Training, phase: Phase, verbose: int = 0, extra_callbacks=()) -> None:
    """Train one phase (or restore its best weights when an interrupted run finished it): on the
    frozen backbone's cached features (``head_on_features``), or ``model.fit`` on batches."""
    if not run.start_phase(phase):
        return
    cfg = run.cfg
    on_features = cfg.head_on_features and phase.unfreeze_blocks == 0
    if on_features and run.device.workers > 1:
        raise ValueError(
            "head_on_features trains phase 1 in one process; for multi-worker training set "
            "head_on_features to false (-p head_on_features false)"
        )
    if on_features:
        t0 = time.perf_counter()
        fit_head_on_features(
            run.model,
            cfg,
            phase,
            run.images,
            run.train,
            run.val,
            run.class_weight,
            run.best_path(phase),
            run.history_csv,
            run.device,
            run.log,
            run.data_fingerprint,
        )
        took = time.perf_counter() - t0
    else:
        took = _fit_on_batches(run, phase, verbose, list(extra_callbacks))
    run.end_phase(phase, took)


def _fit_on_batches(run: Training, phase: Phase, verbose, extra) -> float:
    """``model.fit`` on augmented batches for one phase, validation AUC watched
    (:meth:`Training.callbacks`). Returns the seconds ``model.fit`` took. Chapter 5 writes
    these same calls out."""
    cfg, clf = run.cfg, run.model
    with run.device.strategy.scope():
        compile_model(clf, run.learning_rate(phase), run.device, cfg.label_smoothing)
    t0 = time.perf_counter()
    with fit_scope(clf, run.device):
        clf.fit(
            run.train_batches,
            validation_data=run.val_batches,
            epochs=phase.epochs,
            class_weight=run.class_weight,
            shuffle=False,
            steps_per_epoch=cfg.steps_per_epoch,
            callbacks=run.callbacks(phase, extra),
            verbose=verbose,
        )
    return time.perf_counter() - t0


def _finish(run: Training, key: dict) -> TrainResult:
    """Choose the threshold on validation patients, save the model and its card."""
    cfg = run.cfg
    prob_val, op, ctx = validation_operating_point(
        run.model,
        run.images,
        run.val,
        target_recall=cfg.target_recall,
        method=cfg.threshold_method,
        seed=cfg.seed,
        tta=cfg.tta,
        fit_context=cfg.context,
    )
    history = pd.read_csv(run.history_csv) if run.history_csv.exists() else pd.DataFrame()
    model_path = run.out_dir / f"{run.name}.keras"
    run.model.save(model_path)
    card = _model_card(run, op.as_dict(), history)
    if ctx:
        card["context"] = ctx
    card["reuse_key"] = key
    card["model_sha256"] = file_sha256(model_path)  # reuse checks the file is still this one
    card_path = cards.save_card(card, model_path)
    shutil.rmtree(run.work, ignore_errors=True)
    run.log(
        f"[{run.name}] saved {display_path(model_path)}; threshold {op.threshold:.4f} for recall "
        f">= {cfg.target_recall} on val (val recall {op.val['recall']:.3f}, precision "
        f"{op.val['precision']:.3f}, AUC {op.val['auc']:.4f})"
    )
    return TrainResult(run.model, history, card, model_path, card_path)


def _model_card(run: Training, operating_point: dict, history: pd.DataFrame) -> dict:
    """The card of a model this loop trained (:func:`idc_utils.models.cards.build_card`)."""
    cfg = run.cfg
    spec = classifier.SPECS[cfg.backbone]
    return cards.build_card(
        run.name,
        backbone=cfg.backbone,
        backbone_note=classifier.BACKBONE_NOTES[cfg.backbone],
        image_size=cfg.image_size,
        preprocessing={
            "inside_model": True,
            "resize": f"bilinear 50 -> {cfg.image_size}",
            "scaling": spec.scaling,
            "scale_offset": list(SCALING[spec.scaling]),
        },
        last_conv_layer=spec.last_conv,
        tta=cfg.tta,
        operating_point=operating_point,
        train=run.train,
        val=run.val,
        training=cfg.as_dict(),
        epochs_run=len(history),
        seconds=run.state["seconds"],
        seed=cfg.seed,
        data_fingerprint=run.data_fingerprint,
        device=run.device.description,
        mixed_precision=run.device.mixed_precision,
    )
