"""Chapter 7's predictions are kept in the run folder and read back only for the same models."""

from __future__ import annotations

import numpy as np
import pandas as pd

from idc_utils.evaluation import predictions


def parts_and_probs():
    rows = pd.DataFrame(
        {
            "path": [f"p{k}.png" for k in range(6)],
            "patient_id": ["01", "01", "02", "02", "03", "03"],
            "x": np.arange(6) * 50,
            "y": np.zeros(6, int),
            "label": [0, 1, 0, 1, 1, 0],
            "i": np.arange(6),
        }
    )
    parts = {"val": rows.iloc[:3], "test": rows.iloc[3:]}
    probs = {
        "cnn": {"val": np.array([0.1, 0.8, 0.3]), "test": np.array([0.6, 0.9, 0.2])},
        "eff": {"val": np.array([0.2, 0.7, 0.4]), "test": np.array([0.5, 0.95, 0.1])},
    }
    cards = {"cnn": {"model_sha256": "a", "tta": False}, "eff": {"model_sha256": "b", "tta": True}}
    return parts, probs, cards


def test_saved_predictions_are_read_back_for_the_same_models_and_rows(tmp_path):
    parts, probs, cards = parts_and_probs()
    written = predictions.save(tmp_path, parts, probs, cards)
    assert [p.name for p in written] == ["val_predictions.csv", "test_predictions.csv"]
    table = pd.read_csv(tmp_path / "test_predictions.csv", dtype={"patient_id": str})
    assert list(table.columns) == [*predictions.ROW_COLUMNS, "prob_cnn", "prob_eff"]
    assert table["patient_id"].tolist() == ["02", "03", "03"]
    back = predictions.load(tmp_path, parts, cards)
    for name in probs:
        for part in parts:
            np.testing.assert_allclose(back[name][part], probs[name][part])


def test_predictions_of_other_models_or_rows_are_not_reused(tmp_path):
    parts, probs, cards = parts_and_probs()
    assert predictions.load(tmp_path, parts, cards) is None  # nothing written yet
    predictions.save(tmp_path, parts, probs, cards)
    retrained = {**cards, "eff": {"model_sha256": "c", "tta": True}}
    assert predictions.load(tmp_path, parts, retrained) is None
    no_tta = {**cards, "eff": {"model_sha256": "b", "tta": False}}
    assert predictions.load(tmp_path, parts, no_tta) is None
    other_rows = {"val": parts["val"], "test": parts["test"].iloc[::-1]}
    assert predictions.load(tmp_path, other_rows, cards) is None
