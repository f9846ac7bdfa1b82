"""Model cards: saved models load with their card (those saved before the package was laid
out in subpackages too), clear errors otherwise."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

from idc_utils.core import host
from idc_utils.models import cards, inference


@pytest.mark.slow
def test_saved_model_reloads_and_predicts_the_same(cnn_run):
    images, df, res = cnn_run
    model, card = cards.load_model(res.model_path)
    idx = df["i"][:20]
    a = inference.predict_proba(res.model, images, idx)
    b = inference.predict_proba(model, images, idx)
    np.testing.assert_allclose(a, b, atol=1e-6)


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
    # where it was trained: this processor, these versions
    assert res.card["trained_on"]["processor"] == host.cpu_model()
    assert s["trained on (processor)"] == host.cpu_model()
    assert s["TF_ENABLE_ONEDNN_OPTS when trained"] == host.float_path()["TF_ENABLE_ONEDNN_OPTS"]


SAVED_BEFORE = ROOT / "tests" / "fixtures" / "saved_before_layout"


@pytest.mark.parametrize("name", ["cnn_v1", "with_augment"])
def test_models_saved_before_the_layout_load_and_score_as_they_did(name):
    """Written by idc_utils at 78d4d91, when it was 27 flat modules: a trained CNN and its card,
    and a model holding the package's registered augmentation layer (its saved config names
    the old module ``idc_utils.preprocess``). Both load, and score the patches as they did."""
    expected = np.load(SAVED_BEFORE / "expected.npz")
    model, card = cards.load_model(SAVED_BEFORE / f"{name}.keras")
    assert card["name"] == name and 0 < card["threshold"] < 1
    probs = inference.make_infer(model)(expected["patches"])
    np.testing.assert_allclose(probs, expected[name], atol=1e-5)


def test_a_model_with_a_layer_this_version_does_not_know_says_what_to_do(tmp_path):
    import shutil
    import zipfile

    path = tmp_path / "renamed.keras"
    original = SAVED_BEFORE / "with_augment.keras"
    with zipfile.ZipFile(original) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "config.json":
                data = data.replace(b"Augment", b"Vanished")
            dst.writestr(item, data)
    shutil.copy(SAVED_BEFORE / "with_augment.json", tmp_path / "renamed.json")
    with pytest.raises(cards.ModelFileError, match="Retrain it .*make book FORCE=1"):
        cards.load_model(path)
