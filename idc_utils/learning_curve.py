"""Is the gap to the literature data or recipe? Test AUC against the number of training patients.

The source paper and other patient-level results on this data set trained on most of its 277,524
patches; the book's sample run trains on a few thousand. A learning curve answers how much of the
gap the data explains: the same recipe is trained on nested subsets of the training patients
(validation and test patients fixed), and a straight line in log2(training patches) through the
test AUCs says what each doubling of data adds, and where that line would be with the full set's
training share. Reaching the full set from the sample is many doublings beyond the measured
points, so the line gives the *size* of the data gap, not a prediction to three decimals.

``tools/learning_curve.py`` trains the points (minutes each on a CPU) and saves them as JSON;
chapter 6 reads that file. Research and teaching software, not a medical device.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd

#: Patient-level results on the full Kaggle set that chapter 6 lists beside ours (AUC).
ANCHOR_AUC = {"source paper (EfficientNetB0)": 0.9558, "ResNet18, patient split": 0.955}
FULL_SET_PATCHES = 277_524


def measure_point(
    cfg,
    images: np.ndarray,
    split_df: pd.DataFrame,
    fraction: float,
    seed: int,
    out_dir,
    *,
    data_fingerprint: str = "",
    n_boot: int = 1000,
    log=print,
) -> dict:
    """Train ``cfg`` (seeded with ``seed``) on ``fraction`` of the training patients (drawn with
    the same seed), choose its threshold on validation, and score validation and test patients.
    A model already trained with the same configuration, data and subset is reused."""
    from . import evaluate, infer, split, train

    sub = split.train_subset(split_df, fraction, seed)
    cfg = dataclasses.replace(cfg, seed=int(seed))
    t0 = time.perf_counter()
    res = train.fit(
        cfg,
        images,
        sub,
        Path(out_dir),
        f"lc_{fraction:g}_seed{seed}",
        data_fingerprint=data_fingerprint,
        log=log,
    )
    val, test = sub[sub["split"] == "val"], sub[sub["split"] == "test"]
    trained = sub[sub["split"] == "train"]
    p_val = infer.predict_proba(res.model, images, val["i"], tta=cfg.tta)
    p_test = infer.predict_proba(res.model, images, test["i"], tta=cfg.tta)
    ci = evaluate.bootstrap_metrics(
        test["label"], p_test, test["patient_id"], res.card["threshold"], n_boot=n_boot, seed=0
    )
    return {
        "fraction": float(fraction),
        "seed": int(seed),
        "train_patients": int(trained["patient_id"].nunique()),
        "train_patches": int(len(trained)),
        "val_auc": float(evaluate.binary_metrics(val["label"], p_val)["auc"]),
        "test_auc": ci.loc["auc", ["estimate", "low", "high"]].astype(float).tolist(),
        "train_minutes": float(sum(res.card["seconds"].values()) / 60),
        "wall_minutes": (time.perf_counter() - t0) / 60,
    }


def points_table(study: dict) -> pd.DataFrame:
    """One row per trained point: training patients and patches, validation and test AUC."""
    rows = [
        {
            "train patients": p["train_patients"],
            "train patches": p["train_patches"],
            "seed": p["seed"],
            "val AUC": round(p["val_auc"], 4),
            "test AUC [95% CI]": "{:.4f} [{:.3f}, {:.3f}]".format(*p["test_auc"]),
            "train min": round(p["train_minutes"], 1),
        }
        for p in sorted(study["points"], key=lambda p: (p["train_patches"], p["seed"]))
    ]
    return pd.DataFrame(rows)


@dataclasses.dataclass
class LogLinearFit:
    """``auc = intercept + per_doubling * log2(patches)``, fitted by least squares."""

    intercept: float
    per_doubling: float
    per_doubling_se: float
    n_points: int

    def at(self, patches) -> np.ndarray | float:
        return self.intercept + self.per_doubling * np.log2(patches)


def fit_log_linear(patches, auc) -> LogLinearFit:
    """Least-squares line of AUC on log2(training patches), with the slope's standard error
    (nan with fewer than three points). Needs at least two distinct sizes."""
    x = np.log2(np.asarray(patches, dtype=float))
    y = np.asarray(auc, dtype=float)
    if len(np.unique(x)) < 2:
        raise ValueError("a learning curve needs points at two or more training-set sizes")
    slope, intercept = np.polyfit(x, y, 1)
    se = float("nan")
    if len(x) > 2:
        resid = y - (intercept + slope * x)
        se = float(np.sqrt(resid @ resid / (len(x) - 2) / ((x - x.mean()) ** 2).sum()))
    return LogLinearFit(float(intercept), float(slope), se, len(x))


def full_train_patches(study: dict) -> int:
    """Training patches of the full Kaggle set under the study's split shares."""
    return int(round(FULL_SET_PATCHES * (1 - study["val_frac"] - study["test_frac"])))


def gap_sentence(study: dict, anchors: dict | None = None) -> str:
    """What the learning curve says about the gap to the anchors, computed from the study."""
    anchors = ANCHOR_AUC if anchors is None else anchors
    pts = pd.DataFrame(study["points"])
    fit = fit_log_linear(pts["train_patches"], [a[0] for a in pts["test_auc"]])
    largest = pts[pts["train_patches"] == pts["train_patches"].max()]
    ours = float(np.mean([a[0] for a in largest["test_auc"]]))
    full = full_train_patches(study)
    doublings = np.log2(full / largest["train_patches"].iloc[0])
    reach = float(fit.at(full))
    anchor = float(np.mean(list(anchors.values())))
    gap = anchor - ours
    se = "" if np.isnan(fit.per_doubling_se) else f" (standard error {fit.per_doubling_se:.4f})"
    text = (
        f"Each doubling of the training patients added **{fit.per_doubling:+.4f}** test AUC"
        f"{se}. Our largest training set ({int(largest['train_patients'].iloc[0])} patients, "
        f"{int(largest['train_patches'].iloc[0]):,} patches) reaches {ours:.4f}; the full set's "
        f"training share ({full:,} patches) is {doublings:.1f} doublings further, where the line "
        f"would be at **{reach:.3f}**, against the anchors' {anchor:.3f}. "
    )
    if gap <= 0:
        return text + "Our run is already at the anchors' level on these test patients."
    if fit.per_doubling <= 0:
        return text + (
            "The curve does not rise over the sizes measured, so these points cannot attribute "
            "the gap to data; a recipe change is the lever to look for."
        )
    share = min(max((reach - ours) / gap, 0.0), 9.99)
    if share >= 0.8:
        verdict = (
            "More data alone would close the gap (or more than close it): what separates this "
            "run from the literature is mostly the 3% of the set it trains on, not the recipe."
        )
    elif share >= 0.3:
        verdict = (
            f"Data would close about {share:.0%} of the gap; the rest is recipe (resolution, "
            "training length) or the anchors' different test patients."
        )
    else:
        verdict = (
            f"Data would close only about {share:.0%} of the gap: the recipe is the larger lever."
        )
    return (
        text
        + verdict
        + (
            " The extrapolation runs far beyond the measured sizes and assumes the curve keeps its "
            "slope; read it as the size of the effect, not as a forecast."
        )
    )
