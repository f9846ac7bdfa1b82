"""Is the gap to the literature data or recipe? Test AUC against the number of training patients.

The source paper and other patient-level results on this data set trained on most of its 277,524
patches; the book's sample run trains on a few thousand. A learning curve answers how much of the
gap the data explains: the same recipe is trained on nested subsets of the training patients
(validation and test patients fixed), and the error ``1 - AUC`` is fitted as a power of the
training patches (a straight line on log-log axes, the usual shape of learning curves). It says by
what factor each doubling of data cuts the error, and how much data would reach the published AUC
at that rate, against how much the full set has. That is an extrapolation over many doublings:
it gives the *size* of the data gap, not a forecast to three decimals.

``tools/learning_curve.py`` trains the points (minutes each on a CPU;
:mod:`idc_utils.studies.learning_curve_points`) and saves them as JSON; chapter 6 reads that file
and this module fits and describes them. Research and teaching software, not a medical device.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from idc_utils.studies.literature import LITERATURE, SOURCE_PAPER

#: Patient-level results on the full Kaggle set that chapter 6 lists beside ours (AUC).
ANCHOR_AUC = {
    "source paper (EfficientNetB0)": float(LITERATURE.loc[SOURCE_PAPER, "AUC"]),
    "ResNet18, patient split": 0.955,
}


FULL_SET_PATCHES = 277_524


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
class PowerLawFit:
    """The error ``1 - AUC`` as a power of the training patches, the usual shape of learning
    curves: a straight line in log2(error) against log2(patches), fitted by least squares.
    ``error_per_doubling`` is the factor the error is multiplied by when the data doubles."""

    intercept: float  # log2(error) at one patch
    slope: float  # change of log2(error) per doubling of the patches (negative: it learns)
    slope_se: float  # standard error of the slope (nan with fewer than three points)
    n_points: int

    @property
    def error_per_doubling(self) -> float:
        return float(2.0**self.slope)

    def error_at(self, patches) -> np.ndarray | float:
        return 2.0 ** (self.intercept + self.slope * np.log2(patches))

    def at(self, patches) -> np.ndarray | float:
        """The AUC the line gives at ``patches`` training patches."""
        return 1.0 - self.error_at(patches)

    def patches_for(self, auc: float) -> float:
        """Training patches at which the line reaches ``auc`` (inf if it never does)."""
        if self.slope >= 0:
            return float("inf")
        return float(2.0 ** ((np.log2(1.0 - auc) - self.intercept) / self.slope))


def fit_power_law(patches, auc) -> PowerLawFit:
    """Least-squares line of log2(1 - AUC) on log2(training patches). Needs two or more sizes."""
    x = np.log2(np.asarray(patches, dtype=float))
    auc = np.asarray(auc, dtype=float)
    if len(np.unique(x)) < 2:
        raise ValueError("a learning curve needs points at two or more training-set sizes")
    if not ((auc > 0) & (auc < 1)).all():
        raise ValueError("AUCs must lie strictly between 0 and 1 to fit their error")
    y = np.log2(1.0 - auc)
    slope, intercept = np.polyfit(x, y, 1)
    se = float("nan")
    if len(x) > 2:
        resid = y - (intercept + slope * x)
        se = float(np.sqrt(resid @ resid / (len(x) - 2) / ((x - x.mean()) ** 2).sum()))
    return PowerLawFit(float(intercept), float(slope), se, len(x))


def _two_digits(n: float) -> int:
    """``18319 -> 18000``: an extrapolated count, shown with the precision it has."""
    return int(round(n, 1 - int(np.floor(np.log10(n))))) if n >= 10 else int(round(n))


def full_train_patches(study: dict) -> int:
    """Training patches of the full Kaggle set under the study's split shares."""
    return int(round(FULL_SET_PATCHES * (1 - study["val_frac"] - study["test_frac"])))


def gap_sentence(study: dict, anchors: dict | None = None) -> str:
    """What the learning curve says about the gap to the anchors, computed from the study: at
    the measured rate, how much data reaches the anchors' AUC, against how much the full set has."""
    anchors = ANCHOR_AUC if anchors is None else anchors
    pts = pd.DataFrame(study["points"])
    fit = fit_power_law(pts["train_patches"], [a[0] for a in pts["test_auc"]])
    largest = pts[pts["train_patches"] == pts["train_patches"].max()]
    n_ours = int(largest["train_patches"].iloc[0])
    ours = float(np.mean([a[0] for a in largest["test_auc"]]))
    full = full_train_patches(study)
    anchor = float(np.mean(list(anchors.values())))
    se = "" if np.isnan(fit.slope_se) else f" (standard error of the exponent {fit.slope_se:.2f})"
    text = (
        f"Our largest training set ({int(largest['train_patients'].iloc[0])} patients, "
        f"{n_ours:,} patches) reaches a test AUC of {ours:.4f}, against the anchors' "
        f"{anchor:.3f}. "
    )
    if ours >= anchor:
        return text + "Our run is already at the anchors' level on these test patients."
    if fit.slope >= 0:
        return text + (
            "The error does not fall over the sizes measured, so these points cannot attribute "
            "the gap to data; a recipe change is the lever to look for."
        )
    text += (
        f"Each doubling of the training patches multiplied the error (1 - AUC) by "
        f"**{fit.error_per_doubling:.2f}**{se}. "
    )
    need = fit.patches_for(anchor)
    if need <= full:
        text += (
            f"At that rate the anchors' AUC comes at about **{_two_digits(need):,}** training "
            "patches "
            f"({need / n_ours:.1f}x ours), and the full set's training share has {full:,}: at the "
            "measured rate, data alone can account for the whole gap. The gap is consistent with "
            "the 3% of the set this run trains on; it does not need a weaker recipe to explain it."
        )
    else:
        closed = np.log(fit.error_at(n_ours) / fit.error_at(full)) / np.log(
            (1 - ours) / (1 - anchor)
        )
        text += (
            f"At that rate even the full set's training share ({full:,} patches) would reach only "
            f"{fit.at(full):.3f}: data accounts for about {min(closed, 1.0):.0%} of the gap (on a "
            "log scale of the error), and the recipe for the rest."
        )
    return text + (
        " Learning curves flatten as they approach the limit that noisy patch labels set, and "
        "this one is extrapolated far beyond the sizes measured: read it for the size of the data "
        "effect, not as a forecast."
    )
