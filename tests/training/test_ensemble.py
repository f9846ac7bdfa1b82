"""The ensemble: the mean of its members, with its own threshold."""

from __future__ import annotations

import numpy as np
import pytest

from idc_utils.evaluation import thresholds
from idc_utils.models import cards, inference
from idc_utils.training import ensemble


@pytest.mark.slow
def test_an_ensemble_is_the_mean_of_its_members_with_its_own_validation_threshold(
    cnn_run, untrained_model, tmp_path
):
    """The trained CNN and a second, smaller CNN with its card (untrained: the mean is what is
    tested, not the members' quality)."""
    images, df, res = cnn_run
    out = ensemble.build_ensemble(
        [res.model_path, untrained_model],
        images,
        df,
        tmp_path,
        data_fingerprint="toy",
        log=lambda *_: None,
    )
    test = df[df.split == "test"]
    a, _ = cards.load_model(res.model_path)
    b, _ = cards.load_model(untrained_model)
    ens, card = cards.load_model(out.model_path)  # one file, as predict and the app load it
    p_a, p_b = (inference.predict_proba(m, images, test["i"]) for m in (a, b))
    np.testing.assert_allclose(
        inference.predict_proba(ens, images, test["i"]), (p_a + p_b) / 2, atol=1e-6
    )
    val = df[df.split == "val"]
    op = thresholds.choose_operating_point(
        val["label"],
        out.prob_val,
        0.93,
        patients=val["patient_id"],
        method=card["threshold_method"],
        seed=card["seed"],
    )
    assert card["threshold"] == pytest.approx(op.threshold)
    assert [m["name"] for m in card["members"]] == ["cnn", "toy"]
    # it trains nothing: where its members were trained, each by its own card
    assert card["trained_on"] is None
    assert cards.trained_on(card).startswith(f"cnn: {cards.trained_on(res.card)}; toy: ")
    assert card["backbone"] == "ensemble" and card["last_conv_layer"] is None
    assert "not a medical device" in card["disclaimer"].lower()
    # chapter 6 scores an ensemble from its members' probabilities: the same numbers
    _, card_a = cards.load_model(res.model_path)
    _, card_b = cards.load_model(untrained_model)
    loaded = {"cnn": (a, card_a), "toy": (b, card_b), "ensemble": (ens, card)}
    fast = inference.models_probabilities(loaded, images, {"test": test})
    np.testing.assert_allclose(
        fast["ensemble"]["test"], inference.predict_proba(ens, images, test["i"]), atol=1e-6
    )
    alone = inference.models_probabilities({"ensemble": (ens, card)}, images, {"test": test})
    np.testing.assert_allclose(alone["ensemble"]["test"], fast["ensemble"]["test"], atol=1e-6)
    with pytest.raises(ValueError, match="at least two"):
        ensemble.average({"a": a})
