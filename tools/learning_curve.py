"""Data or recipe? Train chapter 5's CNN on nested shares of the training patients.

Validation and test patients stay those of the run's ``split.csv``; each point trains the
profile's CNN recipe on ``fraction`` of the training patients (drawn with the point's seed, the
same seed as the training), chooses its threshold on validation and is scored on the test
patients with a patient-bootstrap interval. The CNN is used because it is the cheapest model of
the book (a point costs minutes, not a quarter of an hour). Chapter 8 shows the
result and what it says about the gap to the published numbers
(:func:`idc_utils.studies.learning_curve.gap_sentence`).

    IDC_DATA_DIR=../shared/idc-sample .venv/bin/python tools/learning_curve.py \\
        --run runs/sample --out book/data/learning_curve.json \\
        [--fractions 0.25 0.5 1 --seeds 1337 7]

Models go to ``<run>/learning_curve/``; a point whose model is there already is reused, so the
study can be stopped and resumed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from idc_utils.book import machine
from idc_utils.chapters import profiles
from idc_utils.data import split
from idc_utils.studies import learning_curve, learning_curve_points
from idc_utils.training import config


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--run", default="runs/sample", help="run folder whose split.csv is used")
    ap.add_argument("--profile", default="sample")
    ap.add_argument("--out", default="book/data/learning_curve.json")
    ap.add_argument("--fractions", nargs="+", type=float, default=[0.25, 0.5, 1.0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1337, 7])
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()

    run_dir = Path(args.run)
    ds, df = split.dataset_with_split(None, run_dir / "split.csv")
    params = profiles.profile_params(args.profile)
    cfg = config.TrainConfig.for_cnn(params)
    out = Path(args.out)
    study = {
        "what": "chapter 4's CNN on nested shares of the training patients",
        "profile": args.profile,
        "split": str(run_dir / "split.csv"),
        "val_frac": params["val_frac"],
        "test_frac": params["test_frac"],
        "val_patients": int(df[df.split == "val"].patient_id.nunique()),
        "test_patients": int(df[df.split == "test"].patient_id.nunique()),
        "assignment_digest": split.assignment_digest(df),
        "points": [],
    }
    t0 = time.perf_counter()
    for seed in args.seeds:
        for fraction in sorted(args.fractions):
            point = learning_curve_points.measure_point(
                cfg,
                ds.images,
                df,
                fraction,
                seed,
                run_dir / "learning_curve",
                data_fingerprint=ds.fingerprint,
                n_boot=args.n_boot,
                log=lambda m: print(m, flush=True),
            )
            study["points"].append(point)
            print(
                f"[curve] {point['train_patients']} patients ({point['train_patches']:,} "
                f"patches), seed {seed}: val AUC {point['val_auc']:.4f}, test AUC "
                f"{point['test_auc'][0]:.4f}",
                flush=True,
            )
            study.update(
                machine=machine.machine_description(),
                finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
                wall_minutes=(time.perf_counter() - t0) / 60,
            )
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(study, indent=1))
    print(learning_curve.gap_sentence(study))
    return 0


if __name__ == "__main__":
    sys.exit(main())
