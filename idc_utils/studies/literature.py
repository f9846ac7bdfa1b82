"""Published results on this dataset, as their papers report them (not re-measured here), and our
models' test results beside them with their intervals, and what may and may not be read from
them side by side (chapter 7)."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: published numbers on this dataset, as their papers report them (not re-measured here)
#: the source paper's row of :data:`LITERATURE`
SOURCE_PAPER = "Source paper (EfficientNetB0, 200 px)"

LITERATURE = pd.DataFrame(
    [
        {
            "study": "Cruz-Roa et al. 2014 (3-layer CNN)",
            "split": "by patient: 113 train+val / 49 test slides",
            "AUC": np.nan,
            "recall": np.nan,
            "precision": np.nan,
            "F1": 0.7180,
            "balanced accuracy": 0.8423,
        },
        {
            "study": "Janowczyk & Madabhushi 2016 (AlexNet variant)",
            "split": "by patient, as Cruz-Roa 2014",
            "AUC": np.nan,
            "recall": np.nan,
            "precision": np.nan,
            "F1": 0.7648,
            "balanced accuracy": 0.8468,
        },
        {
            "study": SOURCE_PAPER,
            "split": "patient split not stated; the layout allows one",
            "AUC": 0.9558,
            "recall": 0.9319,
            # no precision: this module documents no page or table of the paper for one
            "precision": np.nan,
            "F1": np.nan,
            "balanced accuracy": np.nan,
        },
    ]
).set_index("study")


LITERATURE_METRICS = {
    "AUC": "auc",
    "recall": "recall",
    "precision": "precision",
    "F1": "f1",
    "balanced accuracy": "balanced_accuracy",
}


def literature_rows(cis: dict, cards: dict, test: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Our models as rows of the literature table, each number with its 95% patient-bootstrap
    interval (``cis``: name -> bootstrap_metrics frame)."""
    rows = []
    for name, t in cis.items():
        card = cards[name]
        row = {
            "study": f"this book: {name} ({card['backbone']}, {card['image_size']} px, profile "
            f"{profile})",
            "split": f"by patient: {test['patient_id'].nunique()} test patients, {len(test):,} "
            "patches",
        }
        for col, m in LITERATURE_METRICS.items():
            row[col] = t.loc[m, "estimate"]
            row[f"{col} low"], row[f"{col} high"] = t.loc[m, "low"], t.loc[m, "high"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("study")


def beside_literature(ours: pd.DataFrame) -> pd.DataFrame:
    """The published rows and ours in one table; ours with their 95% intervals; numbers a paper
    did not report say so (published numbers come without intervals: the papers gave none)."""
    both = pd.concat([LITERATURE, ours])
    out = both[["split", *LITERATURE_METRICS]].copy().astype(object)
    for c in LITERATURE_METRICS:
        texts = []
        for study, v in both[c].items():
            if pd.isna(v):
                texts.append("not reported")
            elif f"{c} low" in both and pd.notna(both.loc[study, f"{c} low"]):
                texts.append(
                    f"{v:.4f} [{both.loc[study, f'{c} low']:.3f}, "
                    f"{both.loc[study, f'{c} high']:.3f}]"
                )
            else:
                texts.append(f"{v:.4f}")
        out[c] = texts
    return out


def beside_paper(auc: tuple[float, float, float], target_recall: float, idc_share: float) -> str:
    """Sentences, computed from the run, that set the main model beside the source paper
    honestly: whether the paper's AUC lies inside our 95% interval (``auc``: estimate, low,
    high), that our recall is set by a threshold aimed at ``target_recall`` (a parameter), not
    a result to compare, and that precision depends on the test set's IDC+ share (``idc_share``,
    ours), so that a precision from another test set is not comparable with it."""
    paper = LITERATURE.loc[SOURCE_PAPER]
    est, low, high = auc
    if low <= paper["AUC"] <= high:
        where = (
            "which this interval contains: with this many test patients, the run cannot tell its "
            "AUC from the paper's"
        )
    elif high < paper["AUC"]:
        where = "which lies above this whole interval: on these patients the run's AUC is lower"
    else:
        where = "which lies below this whole interval: on these patients the run's AUC is higher"
    return (
        f"The main model's test AUC is {est:.3f} (95% interval by patient {low:.3f} to "
        f"{high:.3f}). The source paper reports {paper['AUC']:.4f} on its own test set, {where}, "
        "though the two were measured on different patients and at a different scale. "
        f"Its recall is not a result to set against the paper's {paper['recall']:.4f}: the "
        f"threshold was chosen on validation patients to reach a recall of {target_recall:.2f}, "
        "a parameter of the run (`target_recall`). Precision depends on how many test patches "
        f"are IDC+: {idc_share:.1%} of this run's test patches are, so a precision measured on "
        "a test set with another IDC+ share, the paper's included, is not comparable with ours."
    )
