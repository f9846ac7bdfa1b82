"""Tables by patient and of the most confident outcomes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from idc_utils.evaluation import tables


def test_per_patient_table_hand_computed():
    df = pd.DataFrame({"patient_id": ["a"] * 4 + ["b"] * 3, "label": [1, 1, 0, 0, 0, 0, 1]})
    p = [0.9, 0.2, 0.7, 0.1, 0.3, 0.2, 0.8]
    t = tables.per_patient(df, p, 0.5)
    assert t.loc["a", "missed IDC+ (FN)"] == 1 and t.loc["a", "false alarms (FP)"] == 1
    assert t.loc["a", "recall"] == 0.5 and t.loc["a", "patch AUC"] == pytest.approx(0.75)
    assert t.loc["b", "missed IDC+ (FN)"] == 0 and t.loc["b", "recall"] == 1.0
    assert t.index[0] == "a", "patients with the most misses come first"


def test_qualitative_examples_pick_the_most_confident_of_each_kind():
    df = pd.DataFrame({"label": [1, 1, 1, 0, 0, 0], "i": range(6)})
    p = np.array([0.9, 0.4, 0.1, 0.8, 0.6, 0.05])
    ex = tables.qualitative_examples(df, p, 0.5, per_kind=1)
    got = dict(zip(ex["kind"], ex["i"]))
    assert got == {"true positive": 0, "false negative": 2, "false positive": 3, "true negative": 5}
