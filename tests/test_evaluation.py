"""Bootstrap CIs by patient, paired differences, calibration, per-patient tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from idc_utils import evaluate, figures, recipe_study


def patient_data(n_pat=30, per=40, seed=0, strength=1.5):
    rng = np.random.default_rng(seed)
    pats = np.repeat([f"p{k}" for k in range(n_pat)], per)
    y = (rng.random(n_pat * per) < np.repeat(rng.uniform(0.05, 0.6, n_pat), per)).astype(int)
    z = (
        strength * (2 * y - 1)
        + rng.normal(0, 1.2, len(y))
        + np.repeat(rng.normal(0, 0.8, n_pat), per)
    )
    return y, 1 / (1 + np.exp(-z)), pats


def test_patient_resamples_take_whole_patients():
    pats = np.array(["a", "a", "b", "c", "c", "c"])
    inv, counts = evaluate.patient_bootstrap_counts(pats, 50, seed=1)
    assert counts.shape == (50, 3) and (counts.sum(axis=1) == 3).all()  # 3 patients drawn each time
    weights = counts[:, inv]  # each patch weighs as often as its patient was drawn
    assert (weights[:, 0] == weights[:, 1]).all() and (weights[:, 3] == weights[:, 5]).all()


def test_weighted_metrics_equal_metrics_on_the_repeated_patches():
    """The vectorised bootstrap computes each resample's metrics as if its patches were repeated."""
    y, p, pats = patient_data(n_pat=12, per=15, seed=4)
    p = np.round(p, 2)  # ties, as real scores have
    inv, counts = evaluate.patient_bootstrap_counts(pats, 40, seed=2)
    got = evaluate.weighted_metrics(y, p, counts[:, inv], 0.5)
    members = [np.flatnonzero(inv == k) for k in range(counts.shape[1])]
    compared = 0
    for b in range(40):
        idx = np.concatenate([np.tile(members[k], int(c)) for k, c in enumerate(counts[b]) if c])
        if y[idx].min() == y[idx].max():
            assert np.isnan(got["auc"][b])
            continue
        ref = evaluate.binary_metrics(y[idx], p[idx], 0.5)
        for m in evaluate.CI_METRICS:
            assert got[m][b] == pytest.approx(ref[m], abs=1e-12, nan_ok=True), (b, m)
        compared += 1
    assert compared > 30


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    y, p, pats = patient_data()
    a = evaluate.bootstrap_metrics(y, p, pats, 0.5, n_boot=200, seed=7)
    b = evaluate.bootstrap_metrics(y, p, pats, 0.5, n_boot=200, seed=7)
    pd.testing.assert_frame_equal(a, b)
    for m in ("auc", "recall", "precision"):
        assert a.loc[m, "low"] <= a.loc[m, "estimate"] <= a.loc[m, "high"]
    from sklearn.metrics import roc_auc_score

    assert a.loc["auc", "estimate"] == pytest.approx(roc_auc_score(y, p))


def test_patient_bootstrap_is_wider_than_patch_bootstrap():
    """Patches of a patient are correlated: resampling patients must give a wider interval than
    pretending every patch is independent."""
    y, p, pats = patient_data(strength=1.0)
    by_patient = evaluate.bootstrap_metrics(y, p, pats, 0.5, n_boot=300, seed=0)
    by_patch = evaluate.bootstrap_metrics(
        y, p, np.arange(len(y)).astype(str), 0.5, n_boot=300, seed=0
    )
    width = lambda t: t.loc["auc", "high"] - t.loc["auc", "low"]
    assert width(by_patient) > 1.3 * width(by_patch)


def test_paired_difference_detects_a_better_model_and_not_a_copy():
    y, p, pats = patient_data()
    rng = np.random.default_rng(3)
    worse = np.clip(p + rng.normal(0, 0.35, len(p)), 0, 1)
    d = evaluate.paired_bootstrap_difference(y, p, worse, pats, "auc", n_boot=300, seed=0)
    assert d["difference"] > 0 and d["low"] > 0
    same = evaluate.paired_bootstrap_difference(y, p, p, pats, "auc", n_boot=100, seed=0)
    assert same["difference"] == 0 and same["low"] == 0 and same["high"] == 0


def test_reliability_and_ece_hand_computed():
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.05, 0.15, 0.95, 0.85, 0.92, 0.88])
    r = evaluate.reliability(y, p, bins=2)
    assert list(r["n"]) == [2, 4]
    assert r.loc[1, "observed"] == pytest.approx(0.75)
    ece = (2 * abs(0.10 - 0.0) + 4 * abs(np.mean([0.95, 0.85, 0.92, 0.88]) - 0.75)) / 6
    assert evaluate.expected_calibration_error(y, p, bins=2) == pytest.approx(ece)


def test_temperature_scaling_fixes_overconfidence_without_changing_ranks():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    true_logit = 1.2 * (2 * y - 1) + rng.normal(0, 1.5, len(y))
    honest = 1 / (1 + np.exp(-true_logit))
    overconfident = 1 / (1 + np.exp(-3 * true_logit))
    T = evaluate.fit_temperature(y, overconfident)
    assert pytest.approx(3.0, rel=0.15) == T
    fixed = evaluate.apply_temperature(overconfident, T)
    assert evaluate.expected_calibration_error(
        y, fixed
    ) < 0.5 * evaluate.expected_calibration_error(y, overconfident)
    # a monotone rescaling: the ranking, hence the AUC, is unchanged
    assert evaluate.binary_metrics(y, fixed)["auc"] == pytest.approx(
        evaluate.binary_metrics(y, overconfident)["auc"], abs=1e-12
    )
    assert (
        evaluate.binary_metrics(y, fixed)["loss"]
        < evaluate.binary_metrics(y, overconfident)["loss"]
    )
    assert np.allclose(evaluate.apply_temperature(honest, 1.0), honest)


def test_per_patient_table_hand_computed():
    df = pd.DataFrame({"patient_id": ["a"] * 4 + ["b"] * 3, "label": [1, 1, 0, 0, 0, 0, 1]})
    p = [0.9, 0.2, 0.7, 0.1, 0.3, 0.2, 0.8]
    t = evaluate.per_patient(df, p, 0.5)
    assert t.loc["a", "missed IDC+ (FN)"] == 1 and t.loc["a", "false alarms (FP)"] == 1
    assert t.loc["a", "recall"] == 0.5 and t.loc["a", "patch AUC"] == pytest.approx(0.75)
    assert t.loc["b", "missed IDC+ (FN)"] == 0 and t.loc["b", "recall"] == 1.0
    assert t.index[0] == "a", "patients with the most misses come first"


def test_qualitative_examples_pick_the_most_confident_of_each_kind():
    df = pd.DataFrame({"label": [1, 1, 1, 0, 0, 0], "i": range(6)})
    p = np.array([0.9, 0.4, 0.1, 0.8, 0.6, 0.05])
    ex = evaluate.qualitative_examples(df, p, 0.5, per_kind=1)
    got = dict(zip(ex["kind"], ex["i"]))
    assert got == {"true positive": 0, "false negative": 2, "false positive": 3, "true negative": 5}


def test_literature_table_puts_our_rows_beside_the_published_ones():
    y, p, pats = patient_data()
    ci = evaluate.bootstrap_metrics(y, p, pats, 0.5, n_boot=50)
    ours = figures.literature_rows(
        {"eff": ci},
        {"eff": {"backbone": "efficientnet_lite0", "image_size": 96}},
        pd.DataFrame({"patient_id": pats}),
        "sample",
    )
    both = figures.beside_literature(ours)
    assert list(both.index[: len(figures.LITERATURE)]) == list(figures.LITERATURE.index)
    mine = both.loc[ours.index[0]]
    assert (
        mine["AUC"].startswith(f"{ci.loc['auc', 'estimate']:.4f}")
        and "30 test patients" in mine["split"]
    )
    assert f"[{ci.loc['auc', 'low']:.3f}, {ci.loc['auc', 'high']:.3f}]" in mine["AUC"], (
        "our rows carry their CIs"
    )


def test_platt_scaling_removes_the_class_weight_shift_that_temperature_cannot():
    rng = np.random.default_rng(2)
    y = (rng.random(6000) < 0.28).astype(int)
    z = 1.5 * (2 * y - 1) + rng.normal(0, 1.3, len(y)) + np.log(0.28 / 0.72) + 0.5
    weighted = 1 / (
        1 + np.exp(-(z + np.log(0.72 / 0.28)))
    )  # what class weights do: a constant shift
    val, test = slice(0, 3000), slice(3000, None)
    a, b = evaluate.fit_platt(y[val], weighted[val])
    platt = evaluate.apply_platt(weighted[test], a, b)
    temp = evaluate.apply_temperature(
        weighted[test], evaluate.fit_temperature(y[val], weighted[val])
    )
    ece = lambda p: evaluate.expected_calibration_error(y[test], p)
    assert ece(platt) < 0.5 * ece(weighted[test])
    assert ece(platt) < ece(temp) and ece(platt) < 0.03
    assert evaluate.binary_metrics(y[test], platt)["auc"] == pytest.approx(
        evaluate.binary_metrics(y[test], weighted[test])["auc"]
    )


def test_beside_literature_marks_unreported_numbers():
    ours = pd.DataFrame(
        [
            {
                "study": "us",
                "split": "by patient",
                "AUC": 0.9,
                "recall": 0.95,
                "precision": 0.5,
                "F1": 0.64,
                "balanced accuracy": 0.8,
            }
        ]
    ).set_index("study")
    t = figures.beside_literature(ours)
    assert t.loc["us", "AUC"] == "0.9000"
    assert t.loc["Cruz-Roa et al. 2014 (3-layer CNN)", "AUC"] == "not reported"


def test_threshold_drift_reports_each_split_at_the_chosen_threshold():
    y, p, _ = patient_data()
    card = {"threshold": 0.4, "target_recall": 0.9}
    fig, table = figures.threshold_drift(
        {"m": (card, {"val": (y[:600], p[:600]), "test": (y[600:], p[600:])})}
    )
    assert list(table.index) == [("m", "val"), ("m", "test")]
    assert table.loc[("m", "test"), "recall"] == pytest.approx(
        evaluate.binary_metrics(y[600:], p[600:], 0.4)["recall"]
    )


def test_calibration_study_has_three_versions_and_platt_helps_a_shifted_model():
    rng = np.random.default_rng(5)
    y = (rng.random(4000) < 0.3).astype(int)
    z = 1.4 * (2 * y - 1) + rng.normal(0, 1.2, len(y)) + 1.2  # shifted up, like class weights do
    p = 1 / (1 + np.exp(-z))
    table, curves = evaluate.calibration_study("m", y[:2000], p[:2000], y[2000:], p[2000:])
    kinds = table.set_index("kind")
    assert list(kinds.index) == ["raw", "temperature", "platt"] and len(curves) == 2
    assert kinds.loc["platt", "ECE"] < kinds.loc["raw", "ECE"] / 2
    assert kinds.loc["raw", "mean P(IDC+)"] > kinds.loc["raw", "observed IDC+ share"]


def test_literature_rows_from_bootstrap_tables():
    y, p, pats = patient_data()
    ci = evaluate.bootstrap_metrics(y, p, pats, 0.5, n_boot=20)
    test = pd.DataFrame({"patient_id": pats})
    rows = figures.literature_rows(
        {"eff": ci}, {"eff": {"backbone": "efficientnet_lite0", "image_size": 96}}, test, "sample"
    )
    assert (
        rows.iloc[0]["AUC"] == ci.loc["auc", "estimate"]
        and "30 test patients" in rows.iloc[0]["split"]
    )


def test_recipe_table_and_verdict_follow_the_validation_intervals():
    def variant(what, val_d, test_d):
        return {
            "what": what,
            "train_minutes": 3.0,
            "tta": {
                "val_auc": 0.9,
                "val_auc_vs_reference": val_d,
                "test": {"auc": [0.93, 0.9, 0.95]},
                "test_auc_vs_reference": test_d,
            },
        }

    study = {
        "variants": {
            "reference": variant("ref", [0, 0, 0], [0, 0, 0]),
            "a": variant("a", [0.01, -0.01, 0.02], [0.02, 0.01, 0.03]),
            "b": variant("b", [-0.02, -0.03, -0.01], [0.0, -0.01, 0.01]),
        }
    }
    t = recipe_study.table(study)
    assert (
        t.loc["a", "val: vs reference"] == "+0.0100 [-0.010, +0.020]"
        and t.loc["reference", "val: vs reference"] == ""
    )
    sentence = recipe_study.verdict(study)
    assert "no variant beat the reference" in sentence and "**b** did worse" in sentence
    study["variants"]["a"]["tta"]["val_auc_vs_reference"] = [0.02, 0.01, 0.03]
    assert recipe_study.verdict(study).startswith(
        "On the validation patients, **a** beat the reference"
    )
    # a seed-only variant is the yardstick of chance, never a recipe that "beat" the reference
    study["variants"]["seed_2"] = variant("seed", [0.03, 0.01, 0.05], [-0.004, -0.02, 0.01])
    sentence = recipe_study.verdict(study)
    assert "**seed_2** beat" not in sentence and "**a** beat the reference" in sentence
    assert "another seed (**seed_2**) moved validation AUC by +0.0300 and test AUC by -0.0040" in (
        sentence
    )


def test_the_book_recipe_row_is_found_by_recipe_and_named_in_table_and_verdict():
    def variant(recipe, val_d, test_d):
        return {
            "what": "w",
            "train_minutes": 5.0,
            "recipe": recipe,
            "tta": {
                "val_auc": 0.92,
                "val_auc_vs_reference": val_d,
                "test": {"auc": [0.94, 0.92, 0.96]},
                "test_auc_vs_reference": test_d,
            },
        }

    ref = {"finetune_lr": 2e-4, "augment": {"zoom": 0.1}, "seed": 1337}
    pair = {"finetune_lr": 5e-4, "augment": {"zoom": 0.0}, "seed": 1337}
    study = {
        "variants": {
            "reference": variant(ref, [0, 0, 0], [0, 0, 0]),
            "pair": variant(pair, [0.013, 0.006, 0.021], [0.017, 0.005, 0.03]),
            "seed_2": variant({**ref, "seed": 2}, [0.0003, -0.004, 0.006], [-0.002, -0.009, 0.003]),
            "pair_seed_2": variant(
                {**pair, "seed": 2}, [0.011, 0.004, 0.019], [0.015, 0.002, 0.03]
            ),
        }
    }
    # the chapter-5 card's recipe with another seed is still the row "pair" (not its seed twin)
    assert recipe_study.book_variant(study, {**pair, "seed": 7}) == "pair"
    assert recipe_study.book_variant(study, {**pair, "finetune_lr": 1e-4}) is None
    table = recipe_study.table(study, "pair")
    assert "pair (the book's recipe)" in table.index and "reference" in table.index
    sentence = recipe_study.verdict(study, "pair")
    # the seed-2 repeat confirms, it is not a second candidate
    assert sentence.startswith("On the validation patients, **pair** beat the reference")
    assert "**pair_seed_2**" not in sentence
    assert "Trained again with seed 2, **pair** moved validation AUC by +0.0110" in sentence
    assert "The book trains **pair** (it beat the reference on validation)" in sentence
    assert (
        "on test, read only as confirmation, it moved AUC by +0.0170 [+0.005, +0.030]" in sentence
    )
    assert "not a row of the study" in recipe_study.verdict(study, None)


def test_a_variant_changes_only_what_it_names_and_a_seed_repeat_pairs_with_seed_2():
    base = {"finetune_lr": 2e-4, "augment": {"zoom": 0.1, "hed": 0.03}, "seed": 1337}
    p = recipe_study.variant_params(base, {"augment": {"zoom": 0.0}, "finetune_lr": 5e-4})
    assert p == {"finetune_lr": 5e-4, "augment": {"zoom": 0.0, "hed": 0.03}, "seed": 1337}
    assert base["augment"]["zoom"] == 0.1  # the base is not changed
    assert recipe_study.compared_with("no_affine_seed_2") == "seed_2"
    assert recipe_study.compared_with("seed_2") == "reference"
    assert recipe_study.compared_with("lr_5e-4") == "reference"


def test_operating_point_check_says_met_overshot_or_missed():
    y, p, pats = patient_data(n_pat=40, seed=8)
    card = {
        "target_recall": 0.9,
        "expected_recall": [0.9, 0.85, 0.95],
        "threshold_method": "validation",
    }
    for threshold, word in ((0.001, "overshot"), (0.999, "missed")):
        c = evaluate.operating_point_check({**card, "threshold": threshold}, y, p, pats, n_boot=100)
        assert c["verdict"].startswith(word) and c["recall"][1] <= c["recall"][0] <= c["recall"][2]
    t = evaluate.threshold_for_recall(y, p, 0.9)
    c = evaluate.operating_point_check({**card, "threshold": t}, y, p, pats, n_boot=200)
    assert c["verdict"].startswith("met") and c["inside_expected"]
    table = figures.operating_point_table({"m": c})
    assert table.loc["m", "verdict"] == "met" and table.loc["m", "target recall"] == "0.90"
