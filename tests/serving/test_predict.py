"""predict: every file gets a row, scores match the model, clear exit codes."""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pandas as pd
import pytest
from conftest import patch_name, toy_data, write_png
from dicom_helpers import single_frame
from PIL import Image

from idc_utils.cli import main
from idc_utils.models import cards
from idc_utils.serving import predict


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


def test_predict_scores_dcm_patches_like_pngs(tmp_path, untrained_model):
    from PIL import Image

    rgb = np.random.default_rng(2).integers(0, 256, (50, 50, 3), dtype=np.uint8)
    (tmp_path / "a.dcm").write_bytes(single_frame(rgb))
    Image.fromarray(rgb).save(tmp_path / "a.png")
    assert predict.predict_to_csv(untrained_model, [tmp_path], tmp_path / "p.csv") == 0
    df = pd.read_csv(tmp_path / "p.csv")
    probs = dict(zip(df["path"].map(lambda f: str(f).rsplit(".", 1)[-1]), df["prob"]))
    assert set(probs) == {"dcm", "png"} and probs["dcm"] == pytest.approx(probs["png"], abs=1e-6)
    assert df["error"].isna().all()


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


def test_score_files_surfaces_unexpected_errors_instead_of_hanging(monkeypatch, tmp_path):

    f = tmp_path / "a.png"
    Image.fromarray(np.zeros((50, 50, 3), np.uint8)).save(f)

    def boom(path):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(predict, "load_patch_file", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        predict.score_files(None, [f], threshold=0.5, infer=lambda b: np.zeros(len(b)))


def test_predict_with_slide_context(inputs, tmp_path, capsys):
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
