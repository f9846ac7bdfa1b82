"""Results broken down for a reader: one row per patient, and the most confident hits and misses
of each kind."""

from __future__ import annotations

import numpy as np
import pandas as pd

from idc_utils.evaluation.metrics import ratio


def per_patient(df: pd.DataFrame, prob, threshold: float) -> pd.DataFrame:
    """One row per patient: patches, IDC+ patches, predicted IDC+, missed IDC+ (FN), false
    alarms (FP), recall, and the patch AUC within the patient when it has both classes."""
    from sklearn.metrics import roc_auc_score

    d = df[["patient_id", "label"]].copy()
    d["prob"] = np.asarray(prob)
    d["pred"] = (d["prob"] >= threshold).astype(int)
    rows = []
    for pid, g in d.groupby("patient_id"):
        y, q = g["label"].to_numpy(), g["pred"].to_numpy()
        rows.append(
            {
                "patient": pid,
                "patches": len(g),
                "IDC+": int(y.sum()),
                "predicted IDC+": int(q.sum()),
                "missed IDC+ (FN)": int(((q == 0) & (y == 1)).sum()),
                "false alarms (FP)": int(((q == 1) & (y == 0)).sum()),
                "recall": ratio(((q == 1) & (y == 1)).sum(), y.sum()),
                "patch AUC": float(roc_auc_score(y, g["prob"]))
                if 0 < y.sum() < len(y)
                else float("nan"),
                "mean prob": float(g["prob"].mean()),
            }
        )
    return (
        pd.DataFrame(rows)
        .set_index("patient")
        .sort_values(["missed IDC+ (FN)", "false alarms (FP)"], ascending=False)
    )


def qualitative_examples(
    df: pd.DataFrame, prob, threshold: float, per_kind: int = 6
) -> pd.DataFrame:
    """The most confident patches of each kind: true/false positives/negatives (errors sorted by
    how sure the model was; correct ones likewise)."""
    d = df.copy()
    d["prob"] = np.asarray(prob)
    d["pred"] = (d["prob"] >= threshold).astype(int)
    kinds = {
        "true positive": (1, 1),
        "false negative": (1, 0),
        "false positive": (0, 1),
        "true negative": (0, 0),
    }
    rows = []
    for kind, (lab, pred) in kinds.items():
        part = d[(d["label"] == lab) & (d["pred"] == pred)]
        part = part.sort_values("prob", ascending=(pred == 0))
        rows.append(part.head(per_kind).assign(kind=kind))
    return pd.concat(rows)
