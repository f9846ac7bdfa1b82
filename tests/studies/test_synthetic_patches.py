"""Chapter 10's glue: synthetic training rows, the retrained CNN, the why sentence."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from idc_utils.evaluation import synthetic_quality
from idc_utils.studies import synthetic_patches
from idc_utils.training import config


def test_label_fidelity_and_synthetic_training_rows():
    t = synthetic_quality.label_fidelity(
        np.array([0.9, 0.2, 0.8, 0.1]), [1, 1, 0, 0], threshold=0.5
    )
    assert t.loc["synthetic IDC+", "called IDC+"] == 0.5
    assert t.loc["synthetic IDC-", "called IDC+"] == 0.5
    # real patches read by the same classifier: the yardstick the synthetic rows sit beside
    ref = synthetic_quality.label_fidelity(
        np.array([0.9, 0.2]),
        [1, 0],
        threshold=0.5,
        references={"real, round trip": (np.array([0.6, 0.7, 0.1]), [1, 0, 0])},
    )
    assert list(ref.index) == [
        "synthetic IDC+",
        "synthetic IDC-",
        "real, round trip IDC+",
        "real, round trip IDC-",
    ]
    assert ref.loc["real, round trip IDC-", "called IDC+"] == 0.5
    assert ref.loc["real, round trip IDC-", "patches"] == 2
    assert ref.loc["synthetic IDC-", "called IDC+"] == 0.0
    with pytest.raises(ValueError, match="'real': 1 probabilities for 2 labels"):
        synthetic_quality.label_fidelity(
            np.array([0.9]), [1], 0.5, references={"real": (np.array([0.1]), [0, 1])}
        )
    images = np.zeros((4, 50, 50, 3), np.uint8)
    split_df = pd.DataFrame(
        {"i": range(4), "label": [0, 1, 0, 1], "patient_id": list("aabb")}
    ).assign(split=["train", "train", "val", "test"])
    syn = np.full((3, 50, 50, 3), 7, np.uint8)
    all_images, all_rows = synthetic_patches.with_synthetic_rows(images, split_df, syn, [1, 1, 0])
    assert len(all_images) == 7 and (all_images[all_rows.i.iloc[-1]] == 7).all()
    added = all_rows.iloc[4:]
    assert (added.split == "train").all() and (added.patient_id == "synthetic").all()
    assert all_rows.iloc[:4].equals(split_df)
    with pytest.raises(ValueError, match="resize them with training.diffusion.to_patch_size"):
        synthetic_patches.with_synthetic_rows(
            images, split_df, np.zeros((1, 32, 32, 3), np.uint8), [1]
        )


def test_the_why_sentence_names_only_the_measures_that_speak():
    clean = synthetic_patches.why_sentence(False, probe_auc=0.6, idc_pos_called=0.95, memorised=0.0)
    assert clean.startswith("Why no gain? None of this run's measures") and "probe" not in clean
    assert "One possible reason" in clean  # a possible reason, not a finding
    worst = synthetic_patches.why_sentence(False, probe_auc=0.99, idc_pos_called=0.4, memorised=0.2)
    assert "AUC 0.99" in worst and "only 40%" in worst and "20% of them" in worst
    assert "One further possible reason" in worst
    # closeness to the training set is reported as such: copies are for the pairs to show
    assert "near-copies" in worst and "so some are near-copies" not in worst
    mixed = synthetic_patches.why_sentence(
        False, probe_auc=0.6, idc_pos_called=0.95, memorised=0.0, mixed=True
    )
    assert mixed.startswith("Why no clear gain?")
    helped = synthetic_patches.why_sentence(True, probe_auc=0.99, idc_pos_called=0.9, memorised=0.0)
    assert helped.startswith("The synthetic patches helped") and "AUC 0.99" in helped

    # read against real IDC+ tissue after the same round trip, when given
    def label_clause(real):
        return synthetic_patches.why_sentence(
            False, probe_auc=0.6, idc_pos_called=0.66, memorised=0.0, real_pos_called=real
        )

    below = label_clause(0.9)
    assert "only 66%" in below and "against 90% of real IDC+" in below
    alike = label_clause(0.7)
    assert "only 66%" not in alike and "about as many as of real IDC+" in alike and "(70%)" in alike
    assert "gone from real tissue too" in alike


@pytest.mark.slow
def test_the_cnn_retrained_with_synthetic_patches_takes_equal_steps(cnn_run, tmp_path):

    images, df, res = cnn_run
    card = json.loads(res.card_path.read_text())
    assert config.TrainConfig.from_dict(card["training"]).as_dict() == card["training"]
    synthetic = np.full((12, 32, 32, 3), 120, np.uint8)  # generator-sized: resized to 50 px
    labels = np.r_[np.zeros(6, int), np.ones(6, int)]
    out = synthetic_patches.retrain_cnn_with_synthetic(
        images,
        df,
        synthetic,
        labels,
        card,
        tmp_path,
        data_fingerprint="toy",
        log=lambda *_: None,
    )
    new = json.loads(out.card_path.read_text())
    # the card's data fingerprint names the synthetic patches too: other ones retrain
    assert new["data"]["fingerprint"].startswith("toy+synthetic-")
    n_real = int((df.split == "train").sum())
    # as many steps per epoch as the real-only CNN took, whatever the synthetic rows add
    assert new["training"]["steps_per_epoch"] == int(
        np.ceil(n_real / card["training"]["batch_size"])
    )
    assert new["data"]["train_patients"] == card["data"]["train_patients"] + 1  # "synthetic"
    table = synthetic_patches.compare_cnns(
        res.model_path, out.model_path, images, df[df.split == "test"], n_boot=50
    )
    assert list(table.index) == ["CNN, real patches", "CNN, real + synthetic"]
    assert table.loc["CNN, real + synthetic", "AUC vs real only"].startswith(("+", "-"))
