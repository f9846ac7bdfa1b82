"""Training the diffusion generator (:mod:`idc_utils.training.diffusion`) on training patients
only, with validation patients choosing the weights that sample; checkpoints that resume."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from idc_utils.data.split import training_rows_digest
from idc_utils.training.diffusion import (
    MIN_SIGNAL_RATE,
    NULL_LABEL,
    GenConfig,
    Generator,
    build_network,
    build_pair,
    schedule_at,
    to_model_range,
    training_target,
    trains_alike,
    validation_loss,
)
from idc_utils.training.published import check_fits


def _state_paths(out_dir: Path) -> tuple[Path, Path, Path, Path]:
    """The state file, the network's, the moving average's and the best average's weights."""
    return (
        out_dir / "generator.json",
        out_dir / "denoiser.weights.h5",
        out_dir / "ema.weights.h5",
        out_dir / "best.weights.h5",
    )


def _check_split(rows: pd.DataFrame, split: str, what: str) -> None:
    """Refuse rows of any split but ``split`` (the generator never sees other patients)."""
    if "split" in rows and not (rows["split"] == split).all():
        others = sorted(set(rows["split"]) - {split})
        raise ValueError(
            f"the generator's {what} must be {split} patients only; got rows of {others}. "
            f"Pass df[df.split == '{split}']"
        )


def train_generator(
    images_uint8: np.ndarray,
    rows: pd.DataFrame,
    cfg: GenConfig,
    out_dir: str | Path,
    *,
    steps: int,
    val_rows: pd.DataFrame | None = None,
    eval_every: int = 100,
    checkpoint_every: int = 500,
    restart: bool | None = None,
    on_checkpoint=None,
    log=print,
) -> Generator:
    """Train (or continue training) the generator on ``rows`` (column ``i`` indexes
    ``images_uint8``; ``label``; ``split`` all "train") until it has made ``steps`` steps in
    total, checkpointing into ``out_dir`` every ``checkpoint_every`` steps and at the end. A
    checkpoint of the same configuration and training rows is resumed; another is an error.

    A step count, not a time, ends training, and step k's batch, noise and diffusion times are
    drawn from ``(cfg.seed, k)`` alone: the same seed gives the same generator on every machine,
    up to floating-point differences between processors and libraries. (A resumed run draws the
    same batches as an uninterrupted one and its optimizer's state is restored, so it ends with
    the same weights.) A checkpoint with more than ``steps`` steps counts as another
    configuration.

    With ``val_rows`` (validation patients only), the moving-average network's denoising error
    on them is measured every ``eval_every`` steps, and the weights with the lowest error are the
    ones kept for sampling: validation patients decide when the generator was best, the training
    patients are all it learns from, and test patients never come near it.

    ``on_checkpoint(generator)``, when given, is called after every checkpoint with the
    moving-average network as it is then (a study judges the generator along the way with it).

    ``restart``: a checkpoint of another configuration or training set is deleted and training
    starts over (the book's chapter does this when its parameters or split change), else such a
    checkpoint is an error. ``$IDC_FORCE_TRAIN`` (``make book FORCE=1``) wins over both: any
    checkpoint, even of the same configuration, is deleted and training starts over."""
    import keras

    _check_split(rows, "train", "training data")
    if val_rows is not None:
        _check_split(val_rows, "val", "stopping data")
    if rows["label"].nunique() < 2:
        raise ValueError("the generator needs patches of both classes")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = training_rows_digest(rows.assign(split="train"))
    keras.utils.set_random_seed(cfg.seed)
    network, ema = build_pair(cfg)
    optimizer = _optimizer(cfg, network)
    progress = _open_checkpoint(
        out_dir, cfg, digest, steps, restart, (network, ema, optimizer), log
    )
    data = _training_arrays(images_uint8, rows, val_rows, cfg)
    validated = data[2] is not None

    def save():
        _save_checkpoint(out_dir, (network, ema, optimizer), cfg, digest, progress, validated)
        if on_checkpoint is not None:
            history = pd.DataFrame(progress["history"])
            step, seconds = progress["steps"], progress["seconds"]
            on_checkpoint(Generator(cfg, ema, step, history, digest, seconds, best_step=step))

    train_step = _train_step_fn(network, ema, cfg, optimizer)
    _run_steps(
        train_step,
        (ema, optimizer),
        cfg,
        data,
        progress,
        out_dir,
        steps,
        eval_every,
        save,
        checkpoint_every,
    )
    save()
    log(f"[generator] {progress['steps']} steps of {steps} in {progress['seconds']:.0f} s")
    return load_generator(out_dir, network=ema)


def _open_checkpoint(out_dir: Path, cfg, digest: str, steps, restart, state_of, log) -> dict:
    """Resume from the checkpoint in ``out_dir`` when it holds the same training rows and a
    configuration that trains alike up to its step (the same, or one that anneals later): load
    its weights and return its progress (steps, history, seconds, best).
    Another checkpoint is deleted (``restart``) or an error; with ``$IDC_FORCE_TRAIN`` set, every
    checkpoint is deleted, whatever ``restart`` says."""
    import os
    import shutil

    state_path, weights_path, ema_path, _ = _state_paths(out_dir)
    fresh = {"steps": 0, "history": [], "seconds": 0.0, "best": {"step": 0, "val_loss": math.inf}}
    force = os.environ.get("IDC_FORCE_TRAIN", "") not in ("", "0")
    if state_path.exists() and force:
        log(f"[generator] IDC_FORCE_TRAIN is set: starting over in {out_dir}")
        shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
    if not state_path.exists():
        return fresh
    state = json.loads(state_path.read_text())
    # checkpoints written before the rename called the digest "data_fingerprint"
    saved = state.get("training_rows_digest", state.get("data_fingerprint"))
    # read through GenConfig: a setting added since fills in the value it had before
    same_config = trains_alike(GenConfig.from_dict(state["config"]), cfg, state["steps"])
    if not same_config or saved != digest or state["steps"] > steps:
        if not restart:
            raise ValueError(
                f"{out_dir} holds a generator of another configuration or training set (or "
                f"of more than {steps} steps); use a new folder, delete it, or pass "
                "restart=True to start again"
            )
        log(f"[generator] configuration or training set changed: starting over in {out_dir}")
        shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        return fresh
    network, ema, optimizer = state_of
    network.load_weights(weights_path)
    ema.load_weights(ema_path)
    moments = out_dir / "optimizer.npz"
    if moments.exists():  # checkpoints of before it was saved restart the optimizer
        with np.load(moments) as saved:
            for k, v in enumerate(optimizer.variables):
                v.assign(saved[f"v{k}"])
    log(f"[generator] resuming at step {state['steps']}")
    return {
        "steps": state["steps"],
        "history": state["history"],
        "seconds": state["seconds"],
        "best": state.get("best", fresh["best"]),
    }


class _RowPatches:
    """The patches of ``order`` (indices into ``images``), in that order, read only when a
    batch asks for them: no copy is made, so the Kaggle set's 190,000 training patches stay in
    their memory map (or array) instead of taking another 1.3 GB."""

    def __init__(self, images: np.ndarray, order: np.ndarray):
        self.images, self.order = images, np.asarray(order)

    def __len__(self) -> int:
        return len(self.order)

    @property
    def shape(self) -> tuple:
        return (len(self.order), *self.images.shape[1:])

    @property
    def dtype(self):
        return self.images.dtype

    def __getitem__(self, idx) -> np.ndarray:
        return np.asarray(self.images[self.order[idx]])


def _training_arrays(images_uint8, rows, val_rows, cfg):
    """``(x, y, x_val, y_val)``: the training patches as they are stored (uint8, 50 px, read
    when a batch is drawn and reduced to the generator's range and size then, so that the
    whole Kaggle set's 190,000 training patches are never copied, nor held as float32) with
    their labels, and up to 512 validation patches in the generator's range and size (``None``
    without validation rows)."""
    x_all = _RowPatches(images_uint8, rows["i"].to_numpy())  # the rows' order fixes the batches
    y_all = rows["label"].to_numpy().astype(np.int32)
    x_val = y_val = None
    if val_rows is not None and len(val_rows):
        pick = val_rows.sample(min(len(val_rows), 512), random_state=cfg.seed).sort_index()
        x_val = to_model_range(images_uint8[pick["i"].to_numpy()], cfg.image_size)
        y_val = pick["label"].to_numpy().astype(np.int32)
    return x_all, y_all, x_val, y_val


def _optimizer(cfg, network):
    """AdamW (with loss scaling for float16 compute), its state created for ``network``."""
    import keras

    optimizer = keras.optimizers.AdamW(cfg.lr, weight_decay=1e-4)
    if cfg.mixed_precision:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(network.trainable_weights)
    return optimizer


def _train_step_fn(network, ema, cfg, optimizer):
    """One compiled denoising step: noise the batch to random diffusion times, predict the
    noise (or the velocity, ``cfg.prediction``), descend on the mean absolute error, move the
    average weights towards the new ones (keeping the share ``keep`` of the average and taking
    ``take`` = 1 - ``keep`` of the new weights)."""
    import tensorflow as tf

    start, end = math.acos(cfg.max_signal_rate), math.acos(MIN_SIGNAL_RATE)

    @tf.function
    def train_step(x, y, noise, t, keep, take):
        angles = start + t * (end - start)
        signal, noise_rate = tf.cos(angles), tf.sin(angles)
        noisy = signal * x + noise_rate * noise
        target = training_target(x, noise, signal, noise_rate, cfg.prediction)
        with tf.GradientTape() as tape:
            pred = network([noisy, noise_rate**2, y], training=True)
            loss = tf.reduce_mean(tf.abs(tf.cast(pred, tf.float32) - target))
            scaled = optimizer.scale_loss(loss) if cfg.mixed_precision else loss
        grads = tape.gradient(scaled, network.trainable_weights)
        optimizer.apply_gradients(zip(grads, network.trainable_weights))
        for w, e in zip(network.weights, ema.weights):
            e.assign(keep * e + take * w)
        return loss

    return train_step


def _batch(x_all, y_all, cfg, step: int):
    """Step ``step``'s batch (quarter turns and flips), noise, diffusion times and labels (a
    share hidden for guidance), drawn from ``(cfg.seed, step)`` alone."""
    rng = np.random.default_rng([cfg.seed, step])
    idx = rng.integers(0, len(x_all), cfg.batch_size)
    x = to_model_range(x_all[idx], cfg.image_size)  # per patch: as if reduced all at once
    x = np.rot90(x, k=int(rng.integers(4)), axes=(1, 2))
    if rng.random() < 0.5:
        x = x[:, :, ::-1]
    noise = rng.standard_normal(x.shape).astype(np.float32)
    t = rng.random((len(x), 1, 1, 1)).astype(np.float32)
    y = np.where(rng.random(len(idx)) < cfg.uncond_share, NULL_LABEL, y_all[idx])
    return np.ascontiguousarray(x), y.astype(np.int32), noise, t


def _run_steps(train_step, state_of, cfg, data, progress, out_dir, steps, eval_every, save, every):
    """Train until ``steps`` steps, each at its learning rate and average's decay
    (:func:`schedule_at`), recording the mean loss every 25 steps and, every ``eval_every``
    steps, the validation error (keeping the best weights); ``save()`` every ``every`` steps."""
    ema, optimizer = state_of
    x_all, y_all, x_val, y_val = data
    best_path = _state_paths(out_dir)[3]
    best = progress["best"]

    def evaluate_and_keep_best():
        if x_val is None:
            return None
        v = validation_loss(ema, x_val, y_val, cfg.seed)
        if v < best["val_loss"]:
            best.update(step=progress["steps"], val_loss=v)
            ema.save_weights(best_path)
        return v

    t0, losses = time.perf_counter(), []
    while progress["steps"] < steps:
        lr, decay = schedule_at(cfg, progress["steps"])
        if cfg.anneal_steps:  # else the rate the optimizer was made with, untouched
            optimizer.learning_rate.assign(lr)
        # 1 - decay in double precision, then float32: as a constant decay was always applied
        keep, take = np.float32(decay), np.float32(1 - decay)
        batch = _batch(x_all, y_all, cfg, progress["steps"])
        losses.append(float(train_step(*batch, keep, take)))
        progress["steps"] += 1
        if progress["steps"] % 25 == 0:
            entry = {"step": progress["steps"], "loss": float(np.mean(losses))}
            if progress["steps"] % eval_every == 0:
                entry["val_loss"] = evaluate_and_keep_best()
            progress["history"].append(entry)
            losses = []
        if progress["steps"] % every == 0 and progress["steps"] < steps:
            progress["seconds"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            save()
    if losses:
        progress["history"].append(
            {
                "step": progress["steps"],
                "loss": float(np.mean(losses)),
                "val_loss": evaluate_and_keep_best(),
            }
        )
    progress["seconds"] += time.perf_counter() - t0


def _save_checkpoint(out_dir, state_of, cfg, digest, progress, validated: bool) -> None:
    """The weights of both networks, the optimizer's state and the state a later call resumes
    from."""
    network, ema, optimizer = state_of
    state_path, weights_path, ema_path, _ = _state_paths(out_dir)
    network.save_weights(weights_path)
    ema.save_weights(ema_path)
    np.savez(
        out_dir / "optimizer.npz",
        **{f"v{k}": np.asarray(v) for k, v in enumerate(optimizer.variables)},
    )
    state = {
        "config": cfg.to_dict(),
        "training_rows_digest": digest,
        **progress,
        "trained_on": "training patients only",
        "weights_chosen_on": "validation patients" if validated else "the last step",
    }
    state_path.write_text(json.dumps(state, indent=1))


def load_generator(out_dir: str | Path, network=None) -> Generator:
    """The saved generator, with the moving-average weights that did best on validation
    patients (or the last ones when training had no validation patients). ``network``: a
    denoiser of the saved configuration to load them into (default: a new one)."""
    state_path, _, ema_path, best_path = _state_paths(Path(out_dir))
    if not state_path.exists():
        raise FileNotFoundError(
            f"no generator in {out_dir}: train one with training.generator.train_generator "
            "(the synthetic-patches chapter does)"
        )
    state = json.loads(state_path.read_text())
    cfg = GenConfig.from_dict(state["config"])
    ema = network if network is not None else build_network(cfg)
    best = state.get("best", {})
    use_best = best.get("step", 0) > 0 and best_path.exists()
    ema.load_weights(best_path if use_best else ema_path)
    return Generator(
        cfg,
        ema,
        state["steps"],
        pd.DataFrame(state["history"]),
        state.get("training_rows_digest", state.get("data_fingerprint", "")),
        state["seconds"],
        best_step=int(best["step"]) if use_best else int(state["steps"]),
    )


def commit_checkpoint(
    src_dir: str | Path, rows: pd.DataFrame, dest: str | Path, *, command: str, **notes
) -> Path:
    """A finished generator in ``src_dir`` made fit to publish in ``dest``: the weights that
    sample, and a state file with the configuration, the steps, the training and validation
    curve, the digest of the training patches by name (``rows``, as trained on), the command
    that made it and any ``notes``. :func:`load_committed` reads it back and checks it."""
    import shutil

    from idc_utils.data.split import training_patches_digest

    src, dest = Path(src_dir), Path(dest)
    state_path, _, ema_path, best_path = _state_paths(src)
    state = json.loads(state_path.read_text())
    if state["training_rows_digest"] != training_rows_digest(rows.assign(split="train")):
        raise ValueError(f"{src} was not trained on these rows")
    dest.mkdir(parents=True, exist_ok=True)
    use_best = state.get("best", {}).get("step", 0) > 0 and best_path.exists()
    shutil.copyfile(best_path if use_best else ema_path, dest / "generator.weights.h5")
    state.update(
        config=GenConfig.from_dict(state["config"]).to_dict(),  # every setting, by name
        training_patches_digest=training_patches_digest(rows),
        sampling_weights_step=state["best"]["step"] if use_best else state["steps"],
        command=command,
        **notes,
    )
    (dest / "generator.json").write_text(json.dumps(state, indent=1))
    return dest


def load_committed(folder: str | Path, cfg: GenConfig, steps: int, rows: pd.DataFrame) -> Generator:
    """The generator published in ``folder`` (:func:`commit_checkpoint`), when it was made with
    configuration ``cfg``, for ``steps`` steps, on the patches of ``rows`` (by name and label);
    otherwise a ``ValueError`` that says which of them differs."""
    folder = Path(folder)
    state_path = folder / "generator.json"
    if not state_path.exists():
        raise FileNotFoundError(f"no published generator in {folder} (no generator.json)")
    state = json.loads(state_path.read_text())
    saved = GenConfig.from_dict(state["config"]).to_dict()
    remedy = "Train one (gen_checkpoint = None) or make it with tools/generator_study.py"
    check_fits("generator", folder, state, saved, cfg.to_dict(), steps, rows, remedy)
    network = build_network(cfg)
    network.load_weights(folder / "generator.weights.h5")
    return Generator(
        cfg,
        network,
        state["steps"],
        pd.DataFrame(state["history"]),
        state["training_rows_digest"],
        state["seconds"],
        best_step=int(state["sampling_weights_step"]),
    )
