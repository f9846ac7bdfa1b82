"""The imbalance study: resampling on embeddings, training patients only, intervals."""

from __future__ import annotations

import numpy as np
import pytest

from idc_utils.studies import imbalance


def blobs(n0=300, n1=60, d=8, seed=0):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(0, 1, (n0, d)), rng.normal(1.5, 1, (n1, d))]).astype(np.float32)
    y = np.r_[np.zeros(n0, int), np.ones(n1, int)]
    return X, y


@pytest.mark.parametrize("method", ["random_oversample", "smote", "borderline_smote", "adasyn"])
def test_oversamplers_balance_and_keep_real_rows_first(method):
    X, y = blobs()
    Xr, yr, w, syn = imbalance.resample(X, y, method, seed=0)
    assert w is None and np.array_equal(Xr[: len(y)], X) and not syn[: len(y)].any()
    assert syn[len(y) :].all() and (yr[syn] == 1).all(), "only minority points are made"
    assert abs(int((yr == 1).sum()) - int((yr == 0).sum())) <= 0.1 * len(y)


def test_smote_points_lie_between_real_minority_points():
    X, y = blobs(d=2)
    Xr, yr, _, syn = imbalance.resample(X, y, "smote", seed=0)
    pos = X[y == 1]
    lo, hi = pos.min(0), pos.max(0)
    assert ((Xr[syn] >= lo - 1e-6) & (Xr[syn] <= hi + 1e-6)).all(), (
        "interpolation stays in the hull's box"
    )


def test_none_and_class_weight():
    X, y = blobs()
    Xn, yn, wn, sn = imbalance.resample(X, y, "none")
    assert Xn is X and wn is None and not sn.any()
    _, _, w, _ = imbalance.resample(X, y, "class_weight")
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum())
    with pytest.raises(ValueError, match="unknown balancing"):
        imbalance.resample(X, y, "gan")


def test_compare_methods_uses_train_only_and_reports_cis():
    rng = np.random.default_rng(1)
    emb, labels, patients = {}, {}, {}
    for s, n in (("train", 400), ("val", 200), ("test", 200)):
        X, y = blobs(int(n * 0.8), int(n * 0.2), seed={"train": 0, "val": 1, "test": 2}[s])
        emb[s], labels[s] = X, y
        patients[s] = rng.integers(0, 20, len(y)).astype(str)
    res = imbalance.compare_methods(
        emb, labels, patients, ["none", "class_weight", "smote"], n_boot=50, seed=0
    )
    t = res.table
    assert list(t.index) == ["none", "class_weight", "smote"]
    assert t.loc["smote", "synthetic"] == 320 - 80 and t.loc["none", "synthetic"] == 0
    assert (t["val_auc_low"] <= t["val_auc"]).all() and (t["val_auc"] <= t["val_auc_high"]).all()
    assert np.isnan(t.loc["none", "val_auc_vs_none"])  # the reference is not compared with itself
    for m in ("class_weight", "smote"):  # the paired difference is this method's minus none's
        assert t.loc[m, "val_auc_vs_none"] == pytest.approx(
            t.loc[m, "val_auc"] - t.loc["none", "val_auc"], abs=1e-12
        )
        lo, d, hi = (t.loc[m, f"val_auc_vs_none{s}"] for s in ("_low", "", "_high"))
        assert lo <= d <= hi
    assert not any(c.startswith("test") or c == "auc" for c in t.columns), "test never chooses"
    # the confirmation scores only the method validation chose, on the test patients
    c = res.confirmation
    assert c["method"] == res.verdict()["chosen"]
    assert c["auc_low"] <= c["auc"] <= c["auc_high"]
    from sklearn.metrics import roc_auc_score

    assert c["auc"] == pytest.approx(roc_auc_score(labels["test"], res.probs[c["method"]]["test"]))
    assert "took no part in the choice" in res.confirmation_sentence()
    # heads see training embeddings only: changing the validation and test points changes no head
    emb2 = {**emb, "val": emb["val"] + 5.0, "test": emb["test"] - 5.0}
    res2 = imbalance.compare_methods(emb2, labels, patients, ["none"], n_boot=10, seed=0)
    from idc_utils.models.linear_head import fit_head

    head = fit_head(emb["train"], labels["train"], seed=0)
    np.testing.assert_allclose(res2.probs["none"]["test"], head.predict_proba(emb2["test"])[:, 1])
    assert "[" in res.readable().loc["smote", "val auc"]


def test_the_choice_ignores_the_test_patients():
    """Scrambling the test labels changes the confirmation, never the table or the choice."""
    rng = np.random.default_rng(1)
    emb, labels, patients = {}, {}, {}
    for s, n in (("train", 400), ("val", 200), ("test", 200)):
        emb[s], labels[s] = blobs(
            int(n * 0.8), int(n * 0.2), seed={"train": 0, "val": 1, "test": 2}[s]
        )
        patients[s] = rng.integers(0, 20, len(labels[s])).astype(str)
    a = imbalance.compare_methods(emb, labels, patients, ["none", "smote"], n_boot=30)
    flipped = {**labels, "test": 1 - labels["test"]}
    b = imbalance.compare_methods(emb, flipped, patients, ["none", "smote"], n_boot=30)
    assert a.table.equals(b.table) and a.verdict() == b.verdict()
    assert a.confirmation["auc"] != pytest.approx(b.confirmation["auc"])


def test_pixel_interpolation_is_a_double_exposure():
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 200, np.uint8)
    mix = imbalance.pixel_interpolation(a, b)
    assert [int(m[0, 0, 0]) for m in mix] == [0, 50, 100, 150, 200]


def test_patient_subsample_keeps_whole_patients():
    pats = np.repeat([f"p{k}" for k in range(10)], 7)
    rows = imbalance.patient_subsample(pats, 30, seed=1)
    chosen = set(pats[rows])
    assert 28 <= len(rows) <= 35 and len(rows) == 7 * len(chosen)
    assert (imbalance.patient_subsample(pats, None) == np.arange(70)).all()


def test_a_method_that_cannot_run_keeps_its_row_with_the_reason(monkeypatch):
    rng = np.random.default_rng(1)
    emb, labels, patients = {}, {}, {}
    for s, n in (("train", 400), ("val", 200), ("test", 200)):
        emb[s], labels[s] = blobs(
            int(n * 0.8), int(n * 0.2), seed={"train": 0, "val": 1, "test": 2}[s]
        )
        patients[s] = rng.integers(0, 20, len(labels[s])).astype(str)
    real = imbalance.resample

    def picky(X, y, method, seed=0, **kw):
        if method == "adasyn":
            raise RuntimeError("Not any neigbours belong to the majority class.")
        return real(X, y, method, seed, **kw)

    monkeypatch.setattr(imbalance, "resample", picky)
    res = imbalance.compare_methods(emb, labels, patients, ["none", "smote", "adasyn"], n_boot=30)
    assert (
        "majority class" in res.table.loc["adasyn", "error"]
        and res.table.loc["smote", "error"] == ""
    )
    assert res.readable().loc["adasyn", "val auc"] == "could not run"
    assert res.verdict()["chosen"] in ("none", "smote")


def comparison(**diffs):
    """A Comparison whose table holds only the paired AUC differences to 'none':
    ``method=(difference, low, high)``."""
    import pandas as pd

    rows = [{"method": "none", "val_auc": 0.9, "val_auc_vs_none": np.nan, "error": ""}]
    for m, (d, lo, hi) in diffs.items():
        rows.append(
            {
                "method": m,
                "val_auc": 0.9 + d,
                "val_auc_vs_none": d,
                "val_auc_vs_none_low": lo,
                "val_auc_vs_none_high": hi,
                "error": "",
            }
        )
    return imbalance.Comparison(pd.DataFrame(rows).set_index("method"), {}, {})


def test_each_method_is_read_from_its_paired_interval():
    res = comparison(
        class_weight=(-0.002, -0.006, 0.001),
        smote=(-0.01, -0.02, -0.003),
        adasyn=(0.01, 0.002, 0.02),
    )
    assert res.versus_none("none") is None and res.versus_none("gan") is None
    assert [res.versus_none(m)["reading"] for m in ("class_weight", "smote", "adasyn")] == [
        "indistinguishable",
        "worse",
        "better",
    ]
    assert res.method_sentence("smote") == (
        "**smote** moved validation AUC by -0.010 (paired 95% CI -0.020 to -0.003): worse than no "
        "balancing, an interval below zero."
    )
    assert "contains zero" in res.method_sentence("class_weight", "class weights")


def test_the_sentence_on_the_models_choice_follows_the_run():
    same = comparison(class_weight=(-0.002, -0.006, 0.001), smote=(-0.01, -0.02, -0.003))
    assert "not because this run showed a gain" in same.models_sentence()
    smote_wins = comparison(class_weight=(0.0, -0.004, 0.004), smote=(0.01, 0.002, 0.02))
    assert "**smote** beat no balancing" in smote_wins.models_sentence()
    assert "does not support" in smote_wins.models_sentence()
    weights_win = comparison(class_weight=(0.01, 0.002, 0.02), smote=(0.0, -0.004, 0.004))
    assert weights_win.models_sentence().endswith("which supports it.")
    weights_lose = comparison(class_weight=(-0.01, -0.02, -0.002))
    assert "did worse than no balancing" in weights_lose.models_sentence()
    assert "did not compare" in comparison(smote=(0.0, -0.1, 0.1)).models_sentence()


def test_validation_chooses_and_a_difference_it_cannot_show_keeps_none():
    # the smoke run's case: one method worse, the other's interval contains zero
    v = comparison(class_weight=(-0.002, -0.004, -0.0001), smote=(-0.004, -0.009, 0.005)).verdict()
    assert v["chosen"] == "none" and v["sentence"].startswith("Validation chooses **none**")
    assert "Worse than no balancing on validation" in v["sentence"]
    assert (
        "Not distinguishable from no balancing (paired interval contains zero): **smote**"
        in (v["sentence"])
    )
    gain = comparison(class_weight=(0.0, -0.004, 0.004), smote=(0.01, 0.002, 0.02)).verdict()
    assert gain["chosen"] == "smote" and gain["sentence"].startswith("Validation chooses **smote**")
    assert gain["difference"] == 0.01 and gain["better"] == ["smote"]
    # of two methods that beat none, the higher validation AUC is chosen
    two = comparison(class_weight=(0.004, 0.001, 0.008), smote=(0.01, 0.002, 0.02)).verdict()
    assert two["chosen"] == "smote" and "**class_weight**" in two["sentence"]
    assert comparison().verdict()["sentence"].startswith("Only one method")
