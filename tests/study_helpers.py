"""Tables made by hand for the tests: a patient-level split (the split, the learning curve) and a
learning-curve study's points (the study, its figure)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def three_way_split(n_patients=40, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        part = "train" if p < 24 else ("val" if p < 32 else "test")
        for _ in range(int(rng.integers(3, 9))):
            rows.append((str(p), part, int(rng.random() < 0.3)))
    return pd.DataFrame(rows, columns=["patient_id", "split", "label"])


def study_with(error_per_doubling: float, ours: float, val_frac=0.25, test_frac=0.15):
    points = []
    for patches, patients in ((1000, 27), (2000, 54), (4000, 108)):
        auc = 1 - (1 - ours) * error_per_doubling ** np.log2(patches / 4000)
        points.append(
            {
                "train_patients": patients,
                "train_patches": patches,
                "seed": 1,
                "val_auc": auc - 0.02,
                "test_auc": [auc, auc - 0.03, min(auc + 0.02, 0.999)],
                "train_minutes": 1.0,
            }
        )
    return {"points": points, "val_frac": val_frac, "test_frac": test_frac}
