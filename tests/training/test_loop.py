"""The fit loop: a model and its card, reuse, two phases, resuming, the GPU code path."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import FAST, toy_data

from idc_utils.evaluation import metrics
from idc_utils.models import cards, inference
from idc_utils.training import compile, config, devices, loop, reuse


@pytest.mark.slow
def test_one_epoch_cnn_training_writes_model_card_and_history(cnn_run):
    images, df, res = cnn_run
    assert res.model_path.exists() and res.card_path.exists()
    card = json.loads(res.card_path.read_text())
    assert card["backbone"] == "cnn" and card["image_size"] == 50 and card["seed"] == 3
    assert 0 < card["threshold"] < 1 and card["target_recall"] == 0.93
    assert card["training"]["train_bn"] is True, "a CNN from scratch learns its BatchNorm"
    # the threshold is the largest that reaches the target on validation: the validation
    # probabilities recomputed from the saved model say so
    model, _ = cards.load_model(res.model_path)
    val = df[df.split == "val"]
    p_val = inference.predict_proba(model, images, val["i"])

    assert card["threshold"] == pytest.approx(
        metrics.threshold_for_recall(val["label"], p_val, 0.93), abs=1e-6
    )
    assert card["val_metrics"]["recall"] == pytest.approx(
        metrics.binary_metrics(val["label"], p_val, card["threshold"])["recall"]
    )
    assert card["data"]["fingerprint"] == "toy" and card["data"]["train_patients"] == 5
    assert card["preprocessing"]["inside_model"] is True
    assert "not a medical device" in card["disclaimer"].lower()
    assert list(res.history["phase"]) == ["train"] and "val_auc" in res.history
    assert not (res.model_path.parent / "cnn.work").exists(), "the resume folder is cleaned up"


@pytest.mark.slow
def test_an_identical_training_is_reused_and_a_changed_one_is_not(cnn_run, tmp_path):
    images, df, res = cnn_run
    logs = []
    again = loop.fit(
        config.TrainConfig.scratch(epochs=1, image_size=50, cnn_width=8, **FAST),
        images,
        df,
        res.model_path.parent,
        "cnn",
        data_fingerprint="toy",
        log=logs.append,
    )
    assert (
        any("reused cnn.keras" in line for line in logs)
        and again.card["created"] == res.card["created"]
    )
    logs.clear()
    other = df.copy()
    other.loc[other.patient_id == "4", "split"] = "val"  # another split: retrain
    key_a = reuse.reuse_key(
        config.TrainConfig.scratch(epochs=1, image_size=50, cnn_width=8, **FAST), df, "toy"
    )
    key_b = reuse.reuse_key(
        config.TrainConfig.scratch(epochs=1, image_size=50, cnn_width=8, **FAST), other, "toy"
    )
    key_c = reuse.reuse_key(
        config.TrainConfig.scratch(epochs=2, image_size=50, cnn_width=8, **FAST), df, "toy"
    )
    assert key_a["split"] != key_b["split"] and key_a["config"] != key_c["config"]
    assert reuse.reusable_result(res.model_path.parent, "cnn", key_b) is None
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in ("cnn.keras", "cnn.json"):
        shutil.copy(res.model_path.parent / f, copy / f)
    assert reuse.reusable_result(copy, "cnn", key_a) is not None
    with open(copy / "cnn.keras", "ab") as f:
        f.write(b"\0")  # the model file replaced behind its card's back: not reused
    assert reuse.reusable_result(copy, "cnn", key_a) is None
    forced = loop.fit(
        config.TrainConfig.scratch(epochs=1, image_size=50, cnn_width=8, **FAST),
        images,
        df,
        tmp_path,
        "cnn",
        data_fingerprint="toy",
        log=logs.append,
        force=True,
    )
    assert not any("reused" in line for line in logs) and forced.model_path.exists()


@pytest.mark.slow
def test_the_steps_a_chapter_writes_out_train_the_same_model_as_fit(cnn_run, tmp_path):
    """Chapter 5 writes out what :func:`loop.fit` does: prepare, compile, fit with the run's
    callbacks, finish. Done again with the same configuration, it trains the same weights and
    the same card; with nothing changed, ``prepare`` reuses the saved model."""
    import keras

    from idc_utils.training.class_weights import class_weights
    from idc_utils.training.compile import training_metrics

    images, df, res = cnn_run
    cfg = config.TrainConfig.scratch(epochs=1, image_size=50, cnn_width=8, **FAST)
    again = loop.prepare(cfg, images, df, res.model_path.parent, "cnn", data_fingerprint="toy")
    assert not again.needs_training and again.finish().card["created"] == res.card["created"]
    assert again.class_weight == class_weights(df[df.split == "train"]["label"])
    run = loop.prepare(cfg, images, df, tmp_path, "cnn", data_fingerprint="toy")
    assert run.needs_training
    (phase,) = cfg.phases
    assert run.start_phase(phase)
    model = run.model
    model.compile(
        optimizer=keras.optimizers.Adam(run.learning_rate(phase)),
        loss=keras.losses.BinaryCrossentropy(label_smoothing=cfg.label_smoothing),
        metrics=training_metrics(),
    )
    names = [type(c).__name__ for c in run.callbacks(phase)]
    assert {"ModelCheckpoint", "EarlyStopping", "BackupAndRestore"} <= set(names)
    model.fit(
        run.train_batches,
        validation_data=run.val_batches,
        epochs=phase.epochs,
        class_weight=run.class_weight,
        callbacks=run.callbacks(phase),
        shuffle=False,
        verbose=0,
    )
    run.end_phase(phase)
    mine = run.finish()
    assert mine.card["threshold"] == pytest.approx(res.card["threshold"], abs=1e-4)
    assert mine.card["val_metrics"]["auc"] == pytest.approx(
        res.card["val_metrics"]["auc"], abs=1e-4
    )
    for a, b in zip(mine.model.get_weights(), res.model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-4)
    assert mine.card["reuse_key"] == res.card["reuse_key"]
    assert not loop.prepare(cfg, images, df, tmp_path, "cnn", data_fingerprint="toy").needs_training


def test_the_paper_callbacks_watch_validation_auc(tmp_path):
    import keras

    from idc_utils.training.callbacks import best_epoch_callbacks

    checkpoint, stop = best_epoch_callbacks(tmp_path / "best.weights.h5", patience=4)
    assert isinstance(checkpoint, keras.callbacks.ModelCheckpoint) and checkpoint.save_best_only
    assert isinstance(stop, keras.callbacks.EarlyStopping) and stop.patience == 4
    assert checkpoint.monitor == stop.monitor == "val_auc"


@pytest.mark.slow
def test_transfer_learning_two_phases_with_imagenet_lite0(tmp_path):
    images, df = toy_data(96)
    cfg = config.TrainConfig.transfer(
        phase1_epochs=2,
        phase2_epochs=1,
        unfreeze_blocks=2,
        backbone="efficientnet_lite0",
        image_size=32,
        head_on_features=True,
        schedule="cosine",
        tta=True,
        **FAST,
    )
    logs = []
    res = loop.fit(cfg, images, df, tmp_path, "eff", log=logs.append)
    assert list(res.history["phase"]) == ["head", "head", "finetune"]
    assert any("phase head" in line and "1,281 of" in line for line in logs), "only the head trains"
    assert sum("(cached features)" in line for line in logs) == 2, "on features computed once"
    assert res.card["backbone"] == "efficientnet_lite0" and res.card["tta"] is True
    # the saved threshold was chosen on validation scores *with* test-time augmentation

    val = df[df.split == "val"]
    p_val = inference.predict_proba(res.model, images, val["i"], tta=True)
    assert res.card["threshold"] == pytest.approx(
        metrics.threshold_for_recall(val["label"], p_val, 0.93), abs=1e-6
    )


@pytest.mark.slow
def test_interrupted_training_resumes_where_it_stopped(tmp_path):
    import keras

    images, df = toy_data(64)
    # the phases and their resumption are the same for every backbone: the small CNN's are quick
    cfg = config.TrainConfig.transfer(
        phase1_epochs=1,
        phase2_epochs=3,
        unfreeze_blocks=1,
        backbone="cnn",
        weights=None,
        cnn_width=4,
        image_size=32,
        batch_size=16,
        patience=5,
        augment=None,
        seed=1,
    )

    class Crash(keras.callbacks.Callback):
        def __init__(self, phase):
            super().__init__()
            self.phase = phase

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:  # after the 2nd epoch of phase 2
                raise KeyboardInterrupt("power cut")

    with pytest.raises(KeyboardInterrupt):
        loop.fit(
            cfg, images, df, tmp_path, "m", log=lambda *_: None, extra_callbacks=[Crash("finetune")]
        )
    assert (tmp_path / "m.work" / "state.json").exists()
    assert not (tmp_path / "m.keras").exists()
    logs = []
    res = loop.fit(cfg, images, df, tmp_path, "m", log=logs.append)
    assert any("phase head: already done" in line for line in logs)
    hist = pd.read_csv(tmp_path / "m.history.csv")
    assert list(zip(hist["phase"], hist["epoch"])) == [
        ("head", 1),
        ("finetune", 1),
        ("finetune", 2),
        ("finetune", 3),
    ]
    assert res.model_path.exists()


def test_class_weights_balance_the_loss():
    from idc_utils.training.class_weights import class_weights

    w = class_weights([0, 0, 0, 1])
    assert w[0] * 3 == pytest.approx(w[1] * 1)
    with pytest.raises(ValueError, match="one class"):
        class_weights([0, 0])


@pytest.mark.slow
def test_gpu_code_path_mixed_precision_and_xla_runs_on_cpu():
    """The GPU settings (mixed float16, XLA-compiled steps) checked on the CPU: a training step
    compiles with XLA (augmentation stays in the input pipeline) and both kinds of model still
    predict in float32. (XLA-compiling EfficientNet's backward pass takes a CPU about a minute, so
    the step is the small CNN's; the GPU check in benchmarks/ trains EfficientNet this way.)"""
    import warnings

    import keras

    images, df = toy_data(32)
    rows = df.assign(i=np.arange(len(df)))
    try:
        device = devices.configure_device(mixed_precision=True, jit=True)
        assert keras.mixed_precision.global_policy().name == "mixed_float16" and device.jit_compile
        cnn = config.TrainConfig.scratch(
            epochs=1, image_size=32, cnn_width=8, batch_size=16, seed=0
        )
        model = loop.build_model(cnn)
        compile.compile_model(model, 1e-3, device)
        before = [np.asarray(w).copy() for w in model.trainable_weights]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(loop.training_batches(cnn, images, rows).take(2), epochs=1, verbose=0)
        assert not [w for w in caught if "jit_compile" in str(w.message)], (
            "XLA fell back to plain execution"
        )
        assert any(
            np.abs(np.asarray(w) - b).max() > 0 for w, b in zip(model.trainable_weights, before)
        )
        lite0 = config.TrainConfig.transfer(weights=None, image_size=32, seed=0)
        for m in (model, loop.build_model(lite0)):
            prob = m.predict(images[:4], verbose=0)
            assert m.output.dtype == "float32" and prob.dtype == np.float32
            assert np.isfinite(prob).all()
    finally:
        keras.mixed_precision.set_global_policy("float32")
