"""The synthetic-image gain study measures harm as harm and chance as chance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from idc_utils.studies import synthetic_gain


def blobs(n0=300, n1=60, d=8, seed=0):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(0, 1, (n0, d)), rng.normal(1.5, 1, (n1, d))]).astype(np.float32)
    y = np.r_[np.zeros(n0, int), np.ones(n1, int)]
    return X, y


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
    study = synthetic_gain.compare_with_synthetic(emb, labels, patients, bad, n_boot=200)
    t = study.table
    assert list(t.index) == list(synthetic_gain.GAIN_METHODS) and study.seeds == [11, 12, 13]
    assert t.loc["synthetic_minority", "synthetic"] == 300  # only the IDC+ rows are added
    assert t.loc["synthetic_both", "synthetic"] == 400
    assert t.loc["none", "auc_vs_none"] == 0 and t.loc["none", "auc_vs_none_high"] == 0
    assert t.loc["synthetic_minority", "auc_vs_none_high"] < 0
    assert (study.per_seed.groupby("method").size() == 3).all()
    v = study.verdict()
    assert v["harm"] and not v["gain"] and "made the classifier worse" in v["sentence"]
    assert "3 seeds" in v["sentence"]
    readable = study.readable()
    assert "[" in readable.loc["+ synthetic IDC+ images", "AUC vs none [95% CI]"]
    # the validation AUCs that chose the judged method are shown beside the test results
    shown = readable["validation AUC"]
    judged = synthetic_gain.GAIN_LABELS[v["best"]]
    assert float(shown[judged]) == max(
        float(shown[m]) for m in ("+ synthetic IDC+ images", "+ synthetic images of both classes")
    )


def test_synthetic_rows_from_the_real_distribution_are_not_called_a_gain_or_harm_by_chance():
    emb, labels, patients = _three_splits()
    # more draws of the very distribution the training rows come from: no systematic change
    good = {}
    for s in (1, 2, 3):
        X, y = blobs(200, 200, seed=100 + s)
        good[s] = (X, y)
    study = synthetic_gain.compare_with_synthetic(emb, labels, patients, good, n_boot=200)
    t = study.table
    assert abs(t.loc["synthetic_both", "auc_vs_none"]) < 0.02
    assert t.loc["synthetic_both", "auc_vs_none_low"] <= t.loc["synthetic_both", "auc_vs_none"]
    assert not study.verdict()["harm"]


def _one_method_table(auc=(0.0, -0.01, 0.01), precision=(0.02, 0.01, 0.03), val_auc=0.8):
    """A gain table of 'none' and 'synthetic_minority' with the given differences to 'none'."""
    cols = ("auc", "precision")
    row = {m: 0.8 for m in cols}
    method = {**row, "val_auc": val_auc}
    for m, (e, lo, hi) in (("auc", auc), ("precision", precision)):
        method.update({f"{m}_vs_none": e, f"{m}_vs_none_low": lo, f"{m}_vs_none_high": hi})
    none = {**row, "val_auc": 0.8}
    none.update({f"{m}_vs_none{s}": 0.0 for m in cols for s in ("", "_low", "_high")})
    return pd.DataFrame([none, method], index=["none", "synthetic_minority"])


def test_the_verdict_names_the_measure_that_gained():
    study = synthetic_gain.GainStudy(_one_method_table(), pd.DataFrame(), [1, 2], 0.93)
    v = study.verdict()
    assert v["gain"] and not v["harm"] and not v["mixed"] and v["best"] == "synthetic_minority"
    assert v["sentence"].endswith("in precision at recall 0.93 only, averaged over 2 seeds.")
    assert "validation" in v["sentence"]


def test_a_gain_in_auc_with_a_loss_in_precision_is_called_mixed():
    table = _one_method_table(auc=(0.02, 0.01, 0.03), precision=(-0.05, -0.08, -0.02))
    v = synthetic_gain.GainStudy(table, pd.DataFrame(), [1], 0.93).verdict()
    assert v["mixed"] and not v["gain"] and not v["harm"]
    assert "mixed: a gain in AUC but a loss in precision at recall 0.93" in v["sentence"]
    assert "told apart from the noise" not in v["sentence"]


def test_the_method_is_picked_on_validation_not_on_test_patients():
    table = pd.concat(
        [
            _one_method_table(val_auc=0.70),
            _one_method_table(auc=(0.05, 0.03, 0.07), val_auc=0.90)
            .iloc[1:]
            .rename(index={"synthetic_minority": "synthetic_both"}),
        ]
    )
    table.loc["synthetic_minority", "auc"] = 0.99  # best on test: must not decide
    v = synthetic_gain.GainStudy(table, pd.DataFrame(), [1], 0.93).verdict()
    assert v["best"] == "synthetic_both"
    # without validation scores, both are reported and none is picked
    v = synthetic_gain.GainStudy(table.drop(columns="val_auc"), pd.DataFrame(), [1], 0.93).verdict()
    assert v["best"] is None
    assert "+ synthetic IDC+ images" in v["sentence"] and "both classes" in v["sentence"]


def test_the_real_training_rows_can_be_capped_by_whole_patients(monkeypatch):
    emb, labels, patients = _three_splits()
    seen = []
    score = synthetic_gain.score_head

    def counting(Xr, yr, *args, **kw):
        seen.append(len(Xr))
        return score(Xr, yr, *args, **kw)

    monkeypatch.setattr(synthetic_gain, "score_head", counting)
    syn = {1: blobs(20, 20, seed=9)}
    study = synthetic_gain.compare_with_synthetic(
        emb, labels, patients, syn, methods=("none",), n_boot=50, max_train=150
    )
    kept = study.per_seed["real_train_rows"].iloc[0]
    assert 150 <= kept < 400 and seen == [kept]  # whole patients: up to one patient over
    full = synthetic_gain.compare_with_synthetic(
        emb, labels, patients, syn, methods=("none",), n_boot=50
    )
    assert full.per_seed["real_train_rows"].iloc[0] == 400 and seen[-1] == 400
