"""Training (1-epoch smoke, resume after an interruption, the model card) and the predict CLI."""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pandas as pd
import pytest
from conftest import patch_name, toy_data, write_png
from PIL import Image

from idc_utils import cards, infer, train
from idc_utils.__main__ import main

FAST = dict(batch_size=16, patience=2, augment=None, seed=3)


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    """One real (1-epoch) training, shared by the tests of what training writes."""
    images, df = toy_data()
    out = tmp_path_factory.mktemp("models")
    cfg = train.TrainConfig.scratch(epochs=1, image_size=50, cnn_width=8, **FAST)
    res = train.fit(cfg, images, df, out, "cnn", data_fingerprint="toy", log=lambda *_: None)
    return images, df, res


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
    p_val = infer.predict_proba(model, images, val["i"])
    from idc_utils import evaluate

    assert card["threshold"] == pytest.approx(
        evaluate.threshold_for_recall(val["label"], p_val, 0.93), abs=1e-6
    )
    assert card["val_metrics"]["recall"] == pytest.approx(
        evaluate.binary_metrics(val["label"], p_val, card["threshold"])["recall"]
    )
    assert card["data"]["fingerprint"] == "toy" and card["data"]["train_patients"] == 5
    assert card["preprocessing"]["inside_model"] is True
    assert "not a medical device" in card["disclaimer"]
    assert list(res.history["phase"]) == ["train"] and "val_auc" in res.history
    assert not (res.model_path.parent / "cnn.work").exists(), "the resume folder is cleaned up"


@pytest.mark.slow
def test_saved_model_reloads_and_predicts_the_same(cnn_run):
    images, df, res = cnn_run
    model, card = cards.load_model(res.model_path)
    idx = df["i"][:20]
    a = infer.predict_proba(res.model, images, idx)
    b = infer.predict_proba(model, images, idx)
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.slow
def test_an_identical_training_is_reused_and_a_changed_one_is_not(cnn_run, tmp_path):
    images, df, res = cnn_run
    logs = []
    again = train.fit(
        train.TrainConfig.scratch(epochs=1, image_size=50, cnn_width=8, **FAST),
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
    key_a = train.reuse_key(
        train.TrainConfig.scratch(epochs=1, image_size=50, cnn_width=8, **FAST), df, "toy"
    )
    key_b = train.reuse_key(
        train.TrainConfig.scratch(epochs=1, image_size=50, cnn_width=8, **FAST), other, "toy"
    )
    key_c = train.reuse_key(
        train.TrainConfig.scratch(epochs=2, image_size=50, cnn_width=8, **FAST), df, "toy"
    )
    assert key_a["split"] != key_b["split"] and key_a["config"] != key_c["config"]
    assert train.reusable_result(res.model_path.parent, "cnn", key_b) is None
    forced = train.fit(
        train.TrainConfig.scratch(epochs=1, image_size=50, cnn_width=8, **FAST),
        images,
        df,
        tmp_path,
        "cnn",
        data_fingerprint="toy",
        log=logs.append,
        force=True,
    )
    assert not any("reused" in line for line in logs) and forced.model_path.exists()


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="make book"):
        cards.load_model(tmp_path / "none.keras")
    (tmp_path / "m.keras").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="model card"):
        cards.load_model(tmp_path / "m.keras")
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(cards.CardError, match="not valid JSON"):
        cards.load_model(tmp_path / "m.keras")
    (tmp_path / "m.json").write_text('{"name": "m"}')
    with pytest.raises(cards.CardError, match="lacks"):
        cards.load_model(tmp_path / "m.keras")


@pytest.mark.slow
def test_transfer_learning_two_phases_with_imagenet_lite0(tmp_path):
    images, df = toy_data(96)
    cfg = train.TrainConfig.transfer(
        phase1_epochs=2,
        phase2_epochs=1,
        unfreeze_blocks=2,
        backbone="efficientnet_lite0",
        image_size=64,
        head_on_features=True,
        schedule="cosine",
        tta=True,
        **FAST,
    )
    logs = []
    res = train.fit(cfg, images, df, tmp_path, "eff", log=logs.append)
    assert list(res.history["phase"]) == ["head", "head", "finetune"]
    assert any("phase head" in line and "1,281 of" in line for line in logs), "only the head trains"
    assert sum("(cached features)" in line for line in logs) == 2, "on features computed once"
    assert res.card["backbone"] == "efficientnet_lite0" and res.card["tta"] is True
    # the saved threshold was chosen on validation scores *with* test-time augmentation
    from idc_utils import evaluate

    val = df[df.split == "val"]
    p_val = infer.predict_proba(res.model, images, val["i"], tta=True)
    assert res.card["threshold"] == pytest.approx(
        evaluate.threshold_for_recall(val["label"], p_val, 0.93), abs=1e-6
    )


@pytest.mark.slow
def test_interrupted_training_resumes_where_it_stopped(tmp_path):
    import keras

    images, df = toy_data(64)
    cfg = train.TrainConfig.transfer(
        phase1_epochs=1,
        phase2_epochs=3,
        unfreeze_blocks=1,
        backbone="efficientnet_lite0",
        weights=None,
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
        train.fit(
            cfg, images, df, tmp_path, "m", log=lambda *_: None, extra_callbacks=[Crash("finetune")]
        )
    assert (tmp_path / "m.work" / "state.json").exists()
    assert not (tmp_path / "m.keras").exists()
    logs = []
    res = train.fit(cfg, images, df, tmp_path, "m", log=logs.append)
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
    from idc_utils.balance import class_weights

    w = class_weights([0, 0, 0, 1])
    assert w[0] * 3 == pytest.approx(w[1] * 1)
    with pytest.raises(ValueError, match="one class"):
        class_weights([0, 0])


# ----------------------------------------------------------------------------- predict CLI


def huge_png_header(w=100_000, h=100_000):
    """A tiny file whose header claims a gigantic image (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = lambda t, d: (
        struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    )
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 10))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, untrained_model):
    images, df = toy_data()
    root = tmp_path_factory.mktemp("inputs")
    kag = root / "kaggle"
    for k in range(4):
        lab = int(df.label[k])
        write_png(kag / "77" / str(lab) / patch_name("77", 1 + 50 * k, 51, lab), images[k])
    odd = root / "odd"
    odd.mkdir()
    Image.fromarray(images[0][..., 0]).save(odd / "gray.png")
    rgba = np.dstack([images[1], np.full((50, 50), 255, np.uint8)])
    Image.fromarray(rgba).save(odd / "rgba.png")
    Image.fromarray(images[2][..., 0].astype(np.uint16) * 257).save(odd / "deep16.png")
    Image.fromarray(images[3][:30]).save(odd / "small_edge.png")
    Image.fromarray(images[3]).save(odd / "photo.jpg", quality=95)
    (odd / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (odd / "empty.png").write_bytes(b"")
    (odd / "notes.png").write_text("not an image")
    (odd / "bomb.png").write_bytes(huge_png_header())
    Image.fromarray(np.zeros((120, 90, 3), np.uint8)).save(odd / "large.png")
    buf = io.BytesIO()
    Image.fromarray(images[0]).save(buf, format="PNG")
    (odd / "truncated.png").write_bytes(buf.getvalue()[:300])
    (odd / "readme.txt").write_text("skipped: not an image extension")
    return untrained_model, kag, odd, images


def test_predict_kaggle_folder_matches_the_model(inputs, tmp_path, capsys):
    model_path, kag, _, images = inputs
    out = tmp_path / "p.csv"
    assert (
        main(
            [
                "predict",
                "--model",
                str(model_path),
                "--input",
                str(kag),
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    df = pd.read_csv(out, dtype={"patient_id": str}, keep_default_na=False)
    assert list(df.columns) == [
        "path",
        "patient_id",
        "x",
        "y",
        "label",
        "prob",
        "pred",
        "error",
        "note",
    ]
    assert len(df) == 4 and set(df["patient_id"]) == {"77"} and (df["error"] == "").all()
    model, card = cards.load_model(model_path)
    expect = model.predict(images[:4].astype("float32"), verbose=0).ravel()
    order = np.argsort(df["x"].astype(int).to_numpy())
    np.testing.assert_allclose(df["prob"].astype(float).to_numpy()[order], expect, atol=1e-5)
    assert (
        (df["prob"].astype(float) >= card["threshold"]).astype(int) == df["pred"].astype(int)
    ).all()
    assert "from the model card" in capsys.readouterr().err


def test_predict_odd_and_bad_files_get_rows_with_reasons(inputs, tmp_path, capsys):
    model_path, _, odd, _ = inputs
    out = tmp_path / "odd.csv"
    missing = str(odd / "missing.png")
    rc = main(
        [
            "predict",
            "--model",
            str(model_path),
            "--input",
            str(odd),
            missing,
            "--out",
            str(out),
            "--quiet",
            "--threshold",
            "0.5",
        ]
    )
    assert rc == 0
    df = pd.read_csv(out, keep_default_na=False)
    by = {p.split("/")[-1]: r for p, r in zip(df["path"], df.to_dict("records"))}
    for ok, note in [
        ("gray.png", "grayscale"),
        ("rgba.png", "RGBA"),
        ("deep16.png", "16-bit"),
        ("small_edge.png", "padded from 50x30"),
        ("photo.jpg", ""),
    ]:
        assert by[ok]["error"] == "" and by[ok]["prob"] != "", ok
        assert note in by[ok]["note"], (ok, by[ok]["note"])
    for bad, reason in [
        ("corrupt.png", "corrupt"),
        ("empty.png", "empty file"),
        ("notes.png", "not an image"),
        ("bomb.png", "above the"),
        ("large.png", "larger than a 50x50"),
        ("truncated.png", "unreadable"),
        ("missing.png", "file not found"),
    ]:
        assert reason in by[bad]["error"], (bad, by[bad]["error"])
        assert by[bad]["prob"] == "" and by[bad]["pred"] == ""
    assert "readme.txt" not in by
    err = capsys.readouterr().err
    assert (
        "7 files could not be scored" in err
        and "1 non-image files" in err
        and "threshold 0.5000 (given)" in err
    )


def test_predict_exit_codes(inputs, tmp_path):
    model_path, kag, odd, _ = inputs
    base = ["predict", "--model", str(model_path), "--quiet", "--out", str(tmp_path / "x.csv")]
    assert main(base + ["--input", str(odd), "--strict"]) == 1
    assert main(base + ["--input", str(odd / "corrupt.png"), str(odd / "empty.png")]) == 1
    empty = tmp_path / "emptydir"
    empty.mkdir()
    assert main(base + ["--input", str(empty)]) == 2
    assert (
        main(
            [
                "predict",
                "--model",
                str(tmp_path / "nope.keras"),
                "--input",
                str(kag),
                "--out",
                str(tmp_path / "y.csv"),
                "--quiet",
            ]
        )
        == 1
    )


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
        device = train.configure_device(mixed_precision=True, jit=True)
        assert keras.mixed_precision.global_policy().name == "mixed_float16" and device.jit_compile
        cnn = train.TrainConfig.scratch(epochs=1, image_size=32, cnn_width=8, batch_size=16, seed=0)
        model = train.build_model(cnn)
        train.compile_model(model, 1e-3, device)
        before = [np.asarray(w).copy() for w in model.trainable_weights]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(train.training_batches(cnn, images, rows).take(2), epochs=1, verbose=0)
        assert not [w for w in caught if "jit_compile" in str(w.message)], (
            "XLA fell back to plain execution"
        )
        assert any(
            np.abs(np.asarray(w) - b).max() > 0 for w, b in zip(model.trainable_weights, before)
        )
        lite0 = train.TrainConfig.transfer(weights=None, image_size=32, seed=0)
        for m in (model, train.build_model(lite0)):
            prob = m.predict(images[:4], verbose=0)
            assert m.output.dtype == "float32" and prob.dtype == np.float32
            assert np.isfinite(prob).all()
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_score_files_surfaces_unexpected_errors_instead_of_hanging(monkeypatch, tmp_path):
    from idc_utils import predict

    f = tmp_path / "a.png"
    Image.fromarray(np.zeros((50, 50, 3), np.uint8)).save(f)

    def boom(path):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(predict, "load_patch_file", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        predict.score_files(None, [f], threshold=0.5, infer=lambda b: np.zeros(len(b)))


@pytest.mark.slow
def test_card_summary_and_comparison(cnn_run):
    _, _, res = cnn_run
    other = {**res.card, "val_metrics": {**res.card["val_metrics"], "auc": 0.5}, "image_size": 96}
    t = cards.compare({"a": res.card, "b": other})
    assert list(t.index) == ["a", "b"]
    assert (
        t.loc["a", "validation AUC"] == res.card["val_metrics"]["auc"]
        and t.loc["b", "validation AUC"] == 0.5
    )
    assert t.loc["b", "image size"] == 96 and t.loc["a", "image size"] == 50
    s = cards.summary(res.card)
    assert s["model"] == "cnn" and s["threshold (chosen on validation)"] == round(
        res.card["threshold"], 4
    )
    assert s["test-time augmentation"] == "none" and "train 1 ep @ 0.001" in s["phases"]


def test_predict_with_slide_context(inputs, tmp_path, capsys):
    import json
    import shutil

    model_path, kag, odd, _ = inputs
    base = ["predict", "--input", str(kag), str(odd / "gray.png"), "--quiet"]
    assert (
        main(base + ["--model", str(model_path), "--out", str(tmp_path / "a.csv"), "--context"])
        == 2
    )
    assert "no slide-context scoring" in capsys.readouterr().err
    ctx_model = tmp_path / "ctx.keras"
    shutil.copy(model_path, ctx_model)
    card = json.loads(model_path.with_suffix(".json").read_text())
    card["context"] = {"sigma": 1.0, "strength": 2.0, "radius": 2, "step": 50, "threshold": 0.4}
    ctx_model.with_suffix(".json").write_text(json.dumps(card))
    plain, ctx = tmp_path / "plain.csv", tmp_path / "ctx.csv"
    assert main(base + ["--model", str(ctx_model), "--out", str(plain)]) == 0
    assert main(base + ["--model", str(ctx_model), "--out", str(ctx), "--context"]) == 0
    a = pd.read_csv(plain, keep_default_na=False).set_index("path")
    b = pd.read_csv(ctx, keep_default_na=False).set_index("path")
    kaggle = a["patient_id"].astype(str) != ""
    assert (
        kaggle.sum() == 4
        and "4 patches scored with their neighbours, 1 alone" in capsys.readouterr().err
    )
    assert (b.loc[kaggle, "note"].str.contains("neighbours")).all()
    assert not np.allclose(a.loc[kaggle, "prob"].astype(float), b.loc[kaggle, "prob"].astype(float))
    lone = a.index[~kaggle][0]
    assert b.loc[lone, "prob"] == a.loc[lone, "prob"] and "scored alone" in b.loc[lone, "note"]
    assert ((b["prob"].astype(float) >= 0.4).astype(int) == b["pred"].astype(int)).all()


@pytest.mark.slow
def test_the_cnn_retrained_with_synthetic_patches_takes_equal_steps(cnn_run, tmp_path):
    from idc_utils import generate

    images, df, res = cnn_run
    card = json.loads(res.card_path.read_text())
    assert train.TrainConfig.from_dict(card["training"]).as_dict() == card["training"]
    synthetic = np.full((12, 32, 32, 3), 120, np.uint8)  # generator-sized: resized to 50 px
    labels = np.r_[np.zeros(6, int), np.ones(6, int)]
    out = generate.retrain_cnn_with_synthetic(
        images,
        df,
        synthetic,
        labels,
        card,
        tmp_path,
        data_fingerprint="toy+syn",
        log=lambda *_: None,
    )
    new = json.loads(out.card_path.read_text())
    n_real = int((df.split == "train").sum())
    # as many steps per epoch as the real-only CNN took, whatever the synthetic rows add
    assert new["training"]["steps_per_epoch"] == int(
        np.ceil(n_real / card["training"]["batch_size"])
    )
    assert new["data"]["train_patients"] == card["data"]["train_patients"] + 1  # "synthetic"
    table = generate.compare_cnns(
        res.model_path, out.model_path, images, df[df.split == "test"], n_boot=50
    )
    assert list(table.index) == ["CNN, real patches", "CNN, real + synthetic"]
    assert table.loc["CNN, real + synthetic", "AUC vs real only"].startswith(("+", "-"))


@pytest.mark.slow
def test_an_ensemble_is_the_mean_of_its_members_with_its_own_validation_threshold(
    cnn_run, tmp_path
):
    from idc_utils import ensemble, evaluate

    images, df, res = cnn_run
    other = train.fit(
        train.TrainConfig.scratch(epochs=1, image_size=50, cnn_width=4, **FAST),
        images,
        df,
        tmp_path,
        "cnn_small",
        data_fingerprint="toy",
        log=lambda *_: None,
    )
    out = ensemble.build_ensemble(
        [res.model_path, other.model_path],
        images,
        df,
        tmp_path,
        data_fingerprint="toy",
        log=lambda *_: None,
    )
    test = df[df.split == "test"]
    a, _ = cards.load_model(res.model_path)
    b, _ = cards.load_model(other.model_path)
    ens, card = cards.load_model(out.model_path)  # one file, as predict and the app load it
    p_a, p_b = (infer.predict_proba(m, images, test["i"]) for m in (a, b))
    np.testing.assert_allclose(
        infer.predict_proba(ens, images, test["i"]), (p_a + p_b) / 2, atol=1e-6
    )
    val = df[df.split == "val"]
    op = evaluate.choose_operating_point(
        val["label"],
        out.prob_val,
        0.93,
        patients=val["patient_id"],
        method=card["threshold_method"],
        seed=card["seed"],
    )
    assert card["threshold"] == pytest.approx(op.threshold)
    assert [m["name"] for m in card["members"]] == ["cnn", "cnn_small"]
    assert card["backbone"] == "ensemble" and card["last_conv_layer"] is None
    assert "not a medical device" in card["disclaimer"]
    # chapter 6 scores an ensemble from its members' probabilities: the same numbers
    _, card_a = cards.load_model(res.model_path)
    _, card_b = cards.load_model(other.model_path)
    loaded = {"cnn": (a, card_a), "cnn_small": (b, card_b), "ensemble": (ens, card)}
    fast = infer.models_probabilities(loaded, images, {"test": test})
    np.testing.assert_allclose(
        fast["ensemble"]["test"], infer.predict_proba(ens, images, test["i"]), atol=1e-6
    )
    alone = infer.models_probabilities({"ensemble": (ens, card)}, images, {"test": test})
    np.testing.assert_allclose(alone["ensemble"]["test"], fast["ensemble"]["test"], atol=1e-6)
    with pytest.raises(ValueError, match="at least two"):
        ensemble.average({"a": a})
