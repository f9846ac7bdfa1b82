"""Balancing on embeddings, Grad-CAM that points at the evidence, slide maps and tiling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from idc_utils import balance, explain, slides


def blobs(n0=300, n1=60, d=8, seed=0):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(0, 1, (n0, d)), rng.normal(1.5, 1, (n1, d))]).astype(np.float32)
    y = np.r_[np.zeros(n0, int), np.ones(n1, int)]
    return X, y


@pytest.mark.parametrize("method", ["random_oversample", "smote", "borderline_smote", "adasyn"])
def test_oversamplers_balance_and_keep_real_rows_first(method):
    X, y = blobs()
    Xr, yr, w, syn = balance.resample(X, y, method, seed=0)
    assert w is None and np.array_equal(Xr[: len(y)], X) and not syn[: len(y)].any()
    assert syn[len(y) :].all() and (yr[syn] == 1).all(), "only minority points are made"
    assert abs(int((yr == 1).sum()) - int((yr == 0).sum())) <= 0.1 * len(y)


def test_smote_points_lie_between_real_minority_points():
    X, y = blobs(d=2)
    Xr, yr, _, syn = balance.resample(X, y, "smote", seed=0)
    pos = X[y == 1]
    lo, hi = pos.min(0), pos.max(0)
    assert ((Xr[syn] >= lo - 1e-6) & (Xr[syn] <= hi + 1e-6)).all(), (
        "interpolation stays in the hull's box"
    )


def test_none_and_class_weight():
    X, y = blobs()
    Xn, yn, wn, sn = balance.resample(X, y, "none")
    assert Xn is X and wn is None and not sn.any()
    _, _, w, _ = balance.resample(X, y, "class_weight")
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum())
    with pytest.raises(ValueError, match="unknown balancing"):
        balance.resample(X, y, "gan")


def test_compare_methods_uses_train_only_and_reports_cis():
    rng = np.random.default_rng(1)
    emb, labels, patients = {}, {}, {}
    for s, n in (("train", 400), ("val", 200), ("test", 200)):
        X, y = blobs(int(n * 0.8), int(n * 0.2), seed={"train": 0, "val": 1, "test": 2}[s])
        emb[s], labels[s] = X, y
        patients[s] = rng.integers(0, 20, len(y)).astype(str)
    res = balance.compare_methods(
        emb, labels, patients, ["none", "class_weight", "smote"], n_boot=50, seed=0
    )
    t = res.table
    assert list(t.index) == ["none", "class_weight", "smote"]
    assert t.loc["smote", "synthetic"] == 320 - 80 and t.loc["none", "synthetic"] == 0
    assert (t["auc_low"] <= t["auc"]).all() and (t["auc"] <= t["auc_high"]).all()
    assert np.isnan(t.loc["none", "auc_vs_none"])  # the reference is not compared with itself
    for m in ("class_weight", "smote"):  # the paired difference is this method's AUC minus none's
        assert t.loc[m, "auc_vs_none"] == pytest.approx(
            t.loc[m, "auc"] - t.loc["none", "auc"], abs=1e-12
        )
        assert (
            t.loc[m, "auc_vs_none_low"] <= t.loc[m, "auc_vs_none"] <= t.loc[m, "auc_vs_none_high"]
        )
    # heads see training embeddings only: changing the validation and test points changes no head
    emb2 = {**emb, "val": emb["val"] + 5.0, "test": emb["test"] - 5.0}
    res2 = balance.compare_methods(emb2, labels, patients, ["none"], n_boot=10, seed=0)
    from idc_utils.balance import fit_head

    head = fit_head(emb["train"], labels["train"], seed=0)
    np.testing.assert_allclose(res2.probs["none"]["test"], head.predict_proba(emb2["test"])[:, 1])
    assert res.verdict()["best"] in ("class_weight", "smote")
    assert "[" in res.readable().loc["smote", "auc"]


def test_pixel_interpolation_is_a_double_exposure():
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 200, np.uint8)
    mix = balance.pixel_interpolation(a, b)
    assert [int(m[0, 0, 0]) for m in mix] == [0, 50, 100, 150, 200]


# ----------------------------------------------------------------------------- Grad-CAM


@pytest.fixture(scope="module")
def corner_model():
    """A CNN trained on patches whose only evidence is a dark square in the top-left corner."""
    import keras

    from idc_utils import models

    rng = np.random.default_rng(0)
    n = 400
    x = rng.integers(150, 230, (n, 50, 50, 3)).astype(np.uint8)
    y = (rng.random(n) < 0.5).astype(np.float32)
    x[y == 1, 2:18, 2:18] = 30
    keras.utils.set_random_seed(0)
    m = models.build_classifier("cnn", 50, weights=None, cnn_width=8, dropout=0.0)
    m.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
    m.fit(x.astype("float32"), y, epochs=4, batch_size=32, verbose=0)
    return m, x, y


@pytest.mark.slow
def test_gradcam_points_at_the_evidence(corner_model):
    m, x, y = corner_model
    pos = x[y == 1][:8]
    cams, probs = explain.gradcam(m, pos)
    assert cams.shape == (8, 50, 50) and cams.min() >= 0 and cams.max() <= 1
    assert probs.mean() > 0.8, "the toy model learned the corner"
    mean = cams.mean(0)
    r, c = np.unravel_index(mean.argmax(), mean.shape)
    assert 2 <= r < 18 and 2 <= c < 18, f"the map peaks at {(r, c)}, outside the evidence"
    assert mean[2:18, 2:18].mean() > 1.5 * mean[30:, 30:].mean()
    quadrants = [
        mean[:25, :25].mean(),
        mean[:25, 25:].mean(),
        mean[25:, :25].mean(),
        mean[25:, 25:].mean(),
    ]
    assert int(np.argmax(quadrants)) == 0


@pytest.mark.slow
def test_gradcam_layer_choice_and_overlay(corner_model):
    m, x, _ = corner_model
    assert explain.default_layer(m) == "cnn_top_relu"
    cams, _ = explain.gradcam(m, x[:2], target="predicted")
    ov = explain.overlay(x[0], cams[0])
    assert ov.shape == (50, 50, 3) and ov.dtype == np.uint8
    with pytest.raises(ValueError, match="target"):
        explain.gradcam(m, x[:1], target="both")


# ----------------------------------------------------------------------------- slides


def test_dice_hand_computed():
    a = np.array([[1, 1, 0], [0, 0, 0]], bool)
    b = np.array([[1, 0, 0], [1, 0, 0]], bool)
    assert slides.dice(a, b) == pytest.approx(2 * 1 / 4)
    assert slides.dice(np.zeros(3, bool), np.zeros(3, bool)) == 1.0


def test_slide_metrics():
    rows = pd.DataFrame({"x": [1, 51, 101, 1], "y": [1, 1, 1, 51], "label": [1, 1, 0, 0]})
    m = slides.slide_metrics(rows, [0.9, 0.3, 0.6, 0.1], 0.5)
    assert m["patch_auc"] == pytest.approx(0.75)
    assert m["dice"] == pytest.approx(2 * 1 / (2 + 2))
    assert m["predicted_idc_fraction"] == 0.5 and m["true_idc_fraction"] == 0.5


def test_tile_image_grid_padding_and_tissue_mask():
    img = np.full((120, 170, 3), 250, np.uint8)  # glass
    img[:50, :50] = (150, 60, 160)  # stained tissue in the first tile
    tiles, table = slides.tile_image(img, 50)
    assert tiles.shape == (3 * 4, 50, 50, 3)
    assert list(table["x"][:4]) == [0, 50, 100, 150] and list(table["y"][::4]) == [0, 50, 100]
    assert table.loc[0, "is_tissue"] and not table.loc[1:, "is_tissue"].any()
    assert (tiles[3][:, 20:] == 255).all(), "the partial right tile is padded with white"
    assert slides.tissue_fraction(tiles[0]) == 1.0 and slides.tissue_fraction(tiles[5]) == 0.0


def test_patient_subsample_keeps_whole_patients():
    pats = np.repeat([f"p{k}" for k in range(10)], 7)
    rows = balance.patient_subsample(pats, 30, seed=1)
    chosen = set(pats[rows])
    assert 28 <= len(rows) <= 35 and len(rows) == 7 * len(chosen)
    assert (balance.patient_subsample(pats, None) == np.arange(70)).all()


def test_a_method_that_cannot_run_keeps_its_row_with_the_reason(monkeypatch):
    rng = np.random.default_rng(1)
    emb, labels, patients = {}, {}, {}
    for s, n in (("train", 400), ("val", 200), ("test", 200)):
        emb[s], labels[s] = blobs(
            int(n * 0.8), int(n * 0.2), seed={"train": 0, "val": 1, "test": 2}[s]
        )
        patients[s] = rng.integers(0, 20, len(labels[s])).astype(str)
    real = balance.resample

    def picky(X, y, method, seed=0, **kw):
        if method == "adasyn":
            raise RuntimeError("Not any neigbours belong to the majority class.")
        return real(X, y, method, seed, **kw)

    monkeypatch.setattr(balance, "resample", picky)
    res = balance.compare_methods(emb, labels, patients, ["none", "smote", "adasyn"], n_boot=30)
    assert (
        "majority class" in res.table.loc["adasyn", "error"]
        and res.table.loc["smote", "error"] == ""
    )
    assert res.readable().loc["adasyn", "auc"] == "could not run"
    assert res.verdict()["best"] == "smote"


def _three_splits(d=8):
    rng = np.random.default_rng(1)
    emb, labels, patients = {}, {}, {}
    for s, n in (("train", 400), ("val", 300), ("test", 300)):
        X, y = blobs(int(n * 0.8), int(n * 0.2), d=d, seed={"train": 0, "val": 1, "test": 2}[s])
        emb[s], labels[s] = X, y
        patients[s] = rng.integers(0, 30, len(y)).astype(str)
    return emb, labels, patients


def test_synthetic_rows_that_look_like_the_other_class_are_measured_as_harm():
    emb, labels, patients = _three_splits()
    rng = np.random.default_rng(5)
    # "IDC+" images whose embeddings lie away from every real IDC+ one: artefacts a bad
    # generator gives, which teach the head a wrong direction
    bad = {
        s: (rng.normal(-2.0, 1, (400, 8)).astype(np.float32), np.r_[np.ones(300), np.zeros(100)])
        for s in (11, 12, 13)
    }
    study = balance.compare_with_synthetic(emb, labels, patients, bad, n_boot=200)
    t = study.table
    assert list(t.index) == list(balance.GAIN_METHODS) and study.seeds == [11, 12, 13]
    assert t.loc["synthetic_minority", "synthetic"] == 300  # only the IDC+ rows are added
    assert t.loc["synthetic_both", "synthetic"] == 400
    assert t.loc["none", "auc_vs_none"] == 0 and t.loc["none", "auc_vs_none_high"] == 0
    assert t.loc["synthetic_minority", "auc_vs_none_high"] < 0
    assert (study.per_seed.groupby("method").size() == 3).all()
    v = study.verdict()
    assert v["harm"] and not v["gain"] and "made the classifier worse" in v["sentence"]
    assert "3 seeds" in v["sentence"]
    assert "[" in study.readable().loc["+ synthetic IDC+ images", "AUC vs none [95% CI]"]


def test_synthetic_rows_from_the_real_distribution_are_not_called_a_gain_or_harm_by_chance():
    emb, labels, patients = _three_splits()
    # more draws of the very distribution the training rows come from: no systematic change
    good = {}
    for s in (1, 2, 3):
        X, y = blobs(200, 200, seed=100 + s)
        good[s] = (X, y)
    study = balance.compare_with_synthetic(emb, labels, patients, good, n_boot=200)
    t = study.table
    assert abs(t.loc["synthetic_both", "auc_vs_none"]) < 0.02
    assert t.loc["synthetic_both", "auc_vs_none_low"] <= t.loc["synthetic_both", "auc_vs_none"]
    assert not study.verdict()["harm"]
