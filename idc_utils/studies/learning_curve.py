"""Data or recipe? Test AUC against the number of training patients.

The source paper and other patient-level results on this data set trained on most of its 277,524
patches; the book's sample run trains on a few thousand. A learning curve shows how much data
matters for one recipe: the same recipe (the book's CNN, the cheapest model) is trained on nested
subsets of the training patients (validation and test patients fixed), and the error ``1 - AUC``
is fitted as a power of the training patches (a straight line on log-log axes, the usual shape of
learning curves). It says by what factor each doubling of data cut the error *over the sizes
measured*, and compares the gain of a doubling with the spread between two seeds. It is not
extrapolated: the curve is of the CNN, not of the EfficientNet or of the paper's model, and says
nothing about where the published results would fall on it.

``tools/learning_curve.py`` trains the points (minutes each on a CPU;
:mod:`idc_utils.studies.learning_curve_points`) and saves them as JSON; chapter 8 reads that file
and this module fits and describes them. Research and teaching software, not a medical device.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

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


def full_train_patches(study: dict) -> int:
    """Training patches of the full Kaggle set under the study's split shares."""
    return int(round(FULL_SET_PATCHES * (1 - study["val_frac"] - study["test_frac"])))


def seed_spread(study: dict) -> float:
    """The largest difference in test AUC between two seeds at the same number of training
    patients (each seed draws its own patients and trains with its own seed; 0 when no size has
    two seeds): how far chance alone moves a point."""
    pts = pd.DataFrame(study["points"])
    pts["auc"] = [a[0] for a in pts["test_auc"]]
    spread = pts.groupby("train_patients")["auc"].agg(lambda a: a.max() - a.min())
    return float(spread.max()) if len(spread) else 0.0


def gap_sentence(study: dict) -> str:
    """What the learning curve says, computed from the study and limited to the sizes it
    measured: how the test AUC moved, the error's factor per doubling, and whether a doubling
    of data moved the AUC more than a second seed does. Nothing is extrapolated."""
    pts = pd.DataFrame(study["points"])
    pts["auc"] = [a[0] for a in pts["test_auc"]]
    fit = fit_power_law(pts["train_patches"], pts["auc"])
    by_size = pts.groupby("train_patients").agg(
        auc=("auc", "mean"), patches=("train_patches", "mean")
    )
    small, large = by_size.index.min(), by_size.index.max()
    text = (
        f"Over the sizes measured ({small} to {large} training patients, about "
        f"{by_size.loc[small, 'patches']:,.0f} to {by_size.loc[large, 'patches']:,.0f} patches), "
        f"the CNN's test AUC went from {by_size.loc[small, 'auc']:.3f} to "
        f"{by_size.loc[large, 'auc']:.3f} (mean over seeds). "
    )
    if fit.slope >= 0:
        return text + (
            "The error did not fall as the data grew, so these points do not show data to be "
            "the lever for this recipe. " + LIMITS
        )
    se = "" if np.isnan(fit.slope_se) else f" (standard error of the exponent {fit.slope_se:.2f})"
    most = by_size.loc[large, "patches"]
    gain = float(fit.at(most) - fit.at(most / 2))
    spread = seed_spread(study)
    text += (
        f"Each doubling of the training patches multiplied the error (1 - AUC) by "
        f"**{fit.error_per_doubling:.2f}**{se}; on the fitted line, the last doubling measured "
        f"added {gain:+.3f} AUC, and two seeds (each drawing its own patients) at the same "
        f"size differ by up to {spread:.3f}. "
    )
    if gain > spread:
        text += (
            "A doubling of data moved this CNN more than a second seed does: for this recipe, "
            "more patients are a lever that the sample has not used up. "
        )
    else:
        text += (
            "A doubling of data moved this CNN no more than a second seed does: at these sizes, "
            "the data lever is within the noise of training. "
        )
    return text + LIMITS


#: what every learning-curve sentence ends with: what the curve cannot say
LIMITS = (
    "The curve is of the CNN at the sizes measured; it is not extended to the full set, and it "
    "says nothing about the EfficientNet or about where the published results would fall."
)
