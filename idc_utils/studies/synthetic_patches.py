"""Chapter 10's glue around the generator: synthetic patches added to the training rows, chapter
5's CNN retrained on real + synthetic patches with as many steps, the two CNNs compared on test
patients, and the sentence that says why synthetic patches did or did not help."""

from __future__ import annotations

import numpy as np
import pandas as pd

from idc_utils.data.stacked import StackedPatches
from idc_utils.training.diffusion import to_patch_size


def with_synthetic_rows(
    images: np.ndarray, split_df: pd.DataFrame, synthetic: np.ndarray, labels
) -> tuple[np.ndarray, pd.DataFrame]:
    """The dataset with synthetic patches appended as **training** rows (patient
    ``synthetic``), for retraining a classifier on real + synthetic patches. Validation and test
    rows are untouched. The patches are read in place (:class:`~idc_utils.data.stacked.
    StackedPatches`): the Kaggle set's memory map is not copied into memory."""
    if synthetic.shape[1:] != images.shape[1:]:
        raise ValueError(
            f"synthetic patches are {synthetic.shape[1:]}, the dataset's {images.shape[1:]}: "
            "resize them with training.diffusion.to_patch_size first"
        )
    extra = pd.DataFrame(
        {
            "i": np.arange(len(images), len(images) + len(synthetic)),
            "label": np.asarray(labels).astype(int),
            "patient_id": "synthetic",
            "split": "train",
        }
    )
    return StackedPatches(images, synthetic), pd.concat([split_df, extra], ignore_index=True)


def retrain_cnn_with_synthetic(
    images: np.ndarray,
    split_df: pd.DataFrame,
    synthetic: np.ndarray,
    labels,
    cnn_card: dict,
    out_dir,
    *,
    data_fingerprint: str,
    name: str = "cnn_synthetic",
    log=print,
):
    """Chapter 5's CNN recipe (read from its model card) trained again on real + synthetic
    training patches, with as many steps per epoch as the real-only CNN took: a difference
    between the two is then the synthetic patches', not more training's. Validation patients
    choose its threshold as before. ``data_fingerprint`` is the real data's; the model card
    records it with a digest of the synthetic patches and labels, so that other synthetic
    patches never reuse this training."""
    import hashlib
    from dataclasses import replace

    from idc_utils.training import config, loop

    cfg = config.TrainConfig.from_dict(cnn_card["training"])
    n_real = int((split_df["split"] == "train").sum())
    steps = cfg.steps_per_epoch or int(np.ceil(n_real / cfg.batch_size))
    cfg = replace(cfg, steps_per_epoch=steps)
    patches = (
        to_patch_size(synthetic, images.shape[1])
        if synthetic.shape[1] != images.shape[1]
        else synthetic
    )
    all_images, all_rows = with_synthetic_rows(images, split_df, patches, labels)
    digest = hashlib.sha256(np.ascontiguousarray(patches).tobytes())
    digest.update(np.asarray(labels, np.int64).tobytes())
    fingerprint = f"{data_fingerprint}+synthetic-{digest.hexdigest()[:16]}"
    return loop.fit(cfg, all_images, all_rows, out_dir, name, data_fingerprint=fingerprint, log=log)


def compare_cnns(
    baseline_path,
    retrained_path,
    images: np.ndarray,
    test_rows: pd.DataFrame,
    *,
    n_boot=1000,
    seed=0,
) -> pd.DataFrame:
    """Two saved models (each at its own validation threshold) on the same test patients: AUC,
    recall and precision with patient-bootstrap CIs, and the paired AUC difference."""
    from idc_utils.evaluation import bootstrap
    from idc_utils.serving.predictor import Predictor

    y = test_rows["label"].to_numpy()
    patients = test_rows["patient_id"].to_numpy()
    patches = np.asarray(images[test_rows["i"].to_numpy()])
    rows, probs = [], {}
    for name, path in (
        ("CNN, real patches", baseline_path),
        ("CNN, real + synthetic", retrained_path),
    ):
        model = Predictor.load(path)
        p = model.probabilities(patches)
        probs[name] = p
        ci = bootstrap.bootstrap_metrics(y, p, patients, model.threshold, n_boot, seed)
        rows.append(
            {
                "model": name,
                **{
                    m: "{:.3f} [{:.3f}, {:.3f}]".format(*ci.loc[m, ["estimate", "low", "high"]])
                    for m in ("auc", "recall", "precision")
                },
            }
        )
    d = bootstrap.paired_auc_gain(
        y, probs["CNN, real + synthetic"], probs["CNN, real patches"], patients, n_boot, seed
    )
    rows[1]["AUC vs real only"] = f"{d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"
    rows[0]["AUC vs real only"] = ""
    return pd.DataFrame(rows).set_index("model")


def why_sentence(
    gain: bool,
    probe_auc: float,
    idc_pos_called: float,
    memorised: float,
    *,
    mixed: bool = False,
    real_pos_called: float | None = None,
) -> str:
    """What this run's measures say about the gain study's outcome, one clause per measure
    that speaks (``probe_auc``: a probe's AUC between real 50-pixel patches and synthetic ones
    enlarged to 50 pixels, the two kinds of rows the gain study's head trains on together;
    ``idc_pos_called``: share of synthetic IDC+ the classifier calls IDC+; ``memorised``: share
    of synthetic patches closer to a training patch than 99% of new patients' patches are).
    ``mixed``: the study found a gain in one measure and a loss in the other;
    ``real_pos_called``: the share of real IDC+ patches called IDC+ after the round trip to the
    generator's size, the yardstick the synthetic share is read against when given."""
    clauses = []
    if probe_auc >= 0.9:
        clauses.append(
            f"a probe tells the synthetic patches from the real 50-pixel ones the head trains "
            f"beside them (AUC {probe_auc:.2f}), so the head can separate them by a cue of the "
            "generator and the resize rather than of the tissue"
        )
    if idc_pos_called < 0.8 and real_pos_called is None:
        clauses.append(
            f"the EfficientNet classifier calls only {idc_pos_called:.0%} of the synthetic IDC+ "
            "patches IDC+, so the class detail is not all there"
        )
    elif idc_pos_called < 0.8 and idc_pos_called < real_pos_called - 0.05:
        clauses.append(
            f"the EfficientNet classifier calls only {idc_pos_called:.0%} of the synthetic IDC+ "
            f"patches IDC+, against {real_pos_called:.0%} of real IDC+ patches after the same "
            "round trip, so the class detail is not all there"
        )
    elif idc_pos_called < 0.8:
        clauses.append(
            f"the EfficientNet classifier calls {idc_pos_called:.0%} of the synthetic IDC+ "
            f"patches IDC+, about as many as of real IDC+ patches after the same round trip "
            f"({real_pos_called:.0%}): at the generator's size some of the class detail is gone "
            "from real tissue too"
        )
    if memorised >= 0.05:
        clauses.append(
            f"{memorised:.0%} of them sit closer to a training patch than 99% of new patients' "
            "patches do (about 1% would for patches as new as theirs), so they crowd around "
            "training tissue and add less that is new; the closest pairs show whether any are "
            "near-copies"
        )
    if gain:
        head = "The synthetic patches helped on these test patients."
        tail = (
            " Before trusting that, check that it holds for other seeds of the generator itself"
            + ("; and note that " + "; ".join(clauses) if clauses else "")
            + ": a gain that rides on a shortcut can vanish on another lab's slides."
        )
        return head + tail
    possible = (
        "a generator trained on the training patients can only make variations on them, with no "
        "new patient, stain or tissue architecture (the limit SMOTE has on embeddings); this run "
        "does not test that"
    )
    head = "Why no clear gain? " if mixed else "Why no gain? "
    if not clauses:
        return (
            head + "None of this run's measures of the patches explains it. One possible "
            f"reason: {possible}."
        )
    text = "; ".join(clauses)
    return head + text[0].upper() + text[1:] + f". One further possible reason: {possible}."
