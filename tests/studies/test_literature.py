"""The literature table: published rows beside ours, with intervals."""

from __future__ import annotations

import pandas as pd
from conftest import patient_data

from idc_utils.evaluation import bootstrap
from idc_utils.studies import literature


def test_literature_table_puts_our_rows_beside_the_published_ones():
    y, p, pats = patient_data()
    ci = bootstrap.bootstrap_metrics(y, p, pats, 0.5, n_boot=50)
    ours = literature.literature_rows(
        {"eff": ci},
        {"eff": {"backbone": "efficientnet_lite0", "image_size": 96}},
        pd.DataFrame({"patient_id": pats}),
        "sample",
    )
    both = literature.beside_literature(ours)
    assert list(both.index[: len(literature.LITERATURE)]) == list(literature.LITERATURE.index)
    mine = both.loc[ours.index[0]]
    assert (
        mine["AUC"].startswith(f"{ci.loc['auc', 'estimate']:.4f}")
        and "30 test patients" in mine["split"]
    )
    assert f"[{ci.loc['auc', 'low']:.3f}, {ci.loc['auc', 'high']:.3f}]" in mine["AUC"], (
        "our rows carry their CIs"
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
    t = literature.beside_literature(ours)
    assert t.loc["us", "AUC"] == "0.9000"
    assert t.loc["Cruz-Roa et al. 2014 (3-layer CNN)", "AUC"] == "not reported"


def test_literature_rows_from_bootstrap_tables():
    y, p, pats = patient_data()
    ci = bootstrap.bootstrap_metrics(y, p, pats, 0.5, n_boot=20)
    test = pd.DataFrame({"patient_id": pats})
    rows = literature.literature_rows(
        {"eff": ci}, {"eff": {"backbone": "efficientnet_lite0", "image_size": 96}}, test, "sample"
    )
    assert (
        rows.iloc[0]["AUC"] == ci.loc["auc", "estimate"]
        and "30 test patients" in rows.iloc[0]["split"]
    )


def test_beside_paper_says_what_the_comparison_can_and_cannot_claim():
    inside = literature.beside_paper((0.93, 0.90, 0.96), 0.93, 0.25)
    assert "which this interval contains" in inside and "cannot tell" in inside
    assert "reach a recall of 0.93" in inside and "`target_recall`" in inside
    assert "25.0% of this run's test patches" in inside and "not comparable" in inside
    assert "0.71" not in inside  # no precision of the paper without a documented source
    split = literature.LITERATURE.loc[literature.SOURCE_PAPER, "split"]
    assert split == "patient split not stated; the layout allows one"
    below = literature.beside_paper((0.90, 0.88, 0.92), 0.93, 0.25)
    assert "lies above this whole interval" in below and "lower" in below
    above = literature.beside_paper((0.98, 0.97, 0.99), 0.93, 0.25)
    assert "lies below this whole interval" in above
