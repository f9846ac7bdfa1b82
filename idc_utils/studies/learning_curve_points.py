"""One point of the learning curve: the CNN's recipe trained on a share of the training
patients and scored on validation and test patients (``tools/learning_curve.py`` runs them;
:mod:`idc_utils.studies.learning_curve` fits them)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd


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
    from idc_utils.data import split
    from idc_utils.evaluation import bootstrap
    from idc_utils.models import inference
    from idc_utils.training import loop

    sub = split.train_subset(split_df, fraction, seed)
    cfg = dataclasses.replace(cfg, seed=int(seed))
    t0 = time.perf_counter()
    res = loop.fit(
        cfg,
        images,
        sub,
        Path(out_dir),
        f"lc_{fraction:g}_seed{seed}",
        data_fingerprint=data_fingerprint,
        log=log,
    )
    test = sub[sub["split"] == "test"]
    trained = sub[sub["split"] == "train"]
    p_test = inference.predict_proba(res.model, images, test["i"], tta=cfg.tta)
    ci = bootstrap.bootstrap_metrics(
        test["label"], p_test, test["patient_id"], res.card["threshold"], n_boot=n_boot, seed=0
    )
    return {
        "fraction": float(fraction),
        "seed": int(seed),
        "train_patients": int(trained["patient_id"].nunique()),
        "train_patches": int(len(trained)),
        "val_auc": float(res.card["val_metrics"]["auc"]),  # scored as training chose the threshold
        "test_auc": ci.loc["auc", ["estimate", "low", "high"]].astype(float).tolist(),
        "train_minutes": float(sum(res.card["seconds"].values()) / 60),
        "wall_minutes": (time.perf_counter() - t0) / 60,
    }
