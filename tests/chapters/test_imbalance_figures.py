"""Chapters 1, 2 and 4's tables and computed sentences: the augmentations beside what the source
paper states of them, what the recipe study found about the free affine augmentations, and the
mosaic's ground-truth map, whose legend names the classes rather than their colours."""

from __future__ import annotations

import numpy as np
import pandas as pd

from idc_utils.chapters import eda_figures, preprocessing_figures
from idc_utils.models.augment import AugmentConfig


def test_the_augmentation_table_invents_no_paper_strength():
    t = preprocessing_figures.augmentation_table(AugmentConfig(rotation_deg=0.0, zoom=0.0))
    assert list(t.columns) == ["this run trains with", "source paper"]
    assert t.loc["rotation_deg", "this run trains with"] == 0.0
    assert "15" in t.loc["rotation_deg", "source paper"]
    for key in ("translate", "zoom", "brightness", "contrast"):
        assert t.loc[key, "source paper"] == "named, strength not stated"


def variant(what, d):
    return {"what": what, "tta": {"val_auc_vs_reference": d}}


def test_the_affine_sentences_follow_the_study():
    study = {
        "profile": "sample",
        "val_patients": 60,
        "variants": {
            "reference": variant("the start", [0.0, 0.0, 0.0]),
            "no_affine": variant("no free affine", [0.003, -0.002, 0.008]),
            "no_affine_lr_5e-4": variant("both", [0.013, 0.006, 0.021]),
            "no_affine_lr_5e-4_seed_2": variant("both, seed 2", [-0.011, -0.019, -0.003]),
        },
    }
    text = preprocessing_figures.affine_study_sentences(study)
    assert "60 validation patients" in text  # the absent lr_5e-4 row is skipped
    lines = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(lines) == 3
    assert lines[0].endswith("contains zero.") and "+0.0030" in lines[0]
    assert lines[1].endswith("above zero.")
    assert lines[2].endswith("below zero.") and "against **seed_2**" in lines[2]
    assert "no row" in preprocessing_figures.affine_study_sentences({"variants": {}})


def test_the_mosaic_map_has_a_class_legend():
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"x": [1, 51, 1, 51], "y": [1, 1, 51, 51], "label": [0, 1, 1, 0]})
    images = rng.integers(0, 255, (4, 50, 50, 3), dtype=np.uint8)
    fig, grid = eda_figures.plot_patient_overview(images, rows, "p")
    right = fig.axes[1]
    assert [t.get_text() for t in right.get_legend().get_texts()] == ["IDC-", "IDC+"]
    assert "blue" not in right.get_title() and (grid.rows, grid.cols) == (2, 2)
