"""Which training recipe for the EfficientNet? A measured answer, on the book's own split.

Each *variant* is the profile's chapter-6 recipe with some parameters changed. Every variant is
trained on the training patients of a run's ``split.csv``, chooses its epoch and threshold on the
validation patients, and is then scored on the test patients. The output (JSON) holds, per
variant, validation and test AUC with and without test-time augmentation, recall and precision at
the validation threshold, training minutes, and the **paired** patient-bootstrap difference to the
reference variant on the same test patients. The evaluation chapter shows that table.

Choices are made on validation; test numbers are confirmation, with intervals. Training on a CPU is
not bit-for-bit repeatable (thread scheduling), so a difference smaller than the intervals is noise.

    IDC_DATA_DIR=../shared/idc-sample .venv/bin/python tools/recipe_study.py \\
        --run runs/sample --out book/data/recipe_study.json [--variants reference lr5e-4 ...]

Models and probabilities go to ``<run>/recipe_study/``; a variant whose model is there already is
reused (same configuration), so the study can be stopped and resumed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from idc_utils.book import machine
from idc_utils.chapters import profiles
from idc_utils.data import split
from idc_utils.evaluation import bootstrap, metrics
from idc_utils.models import inference
from idc_utils.studies.recipe_study import compared_with, variant_params
from idc_utils.training import config, loop

#: The study's reference: the profile's chapter-6 recipe as it was when the study began (the
#: source paper's free rotation, shift and zoom; phase 2 from 2e-4). Every variant changes it; the
#: book's recipe is the variant the study chose (chapter 8 marks it).
STUDY_BASE = {
    "augment": {"rotation_deg": 15.0, "translate": 0.1, "zoom": 0.1},
    "finetune_lr": 2e-4,
}

#: no free rotation, shift or zoom (flips and quarter turns kept)
NO_AFFINE = {"rotation_deg": 0.0, "translate": 0.0, "zoom": 0.0}

#: variant name -> (what it changes, parameter overrides on STUDY_BASE). A name ending in
#: ``_seed_2`` is compared with ``seed_2`` (the reference trained with the same seed).
VARIANTS = {
    "reference": (
        "the recipe the study began with: the paper's rotation, shift and zoom; phase 2 at 2e-4",
        {},
    ),
    "landed": (
        "the first landing: 2 + 12 epochs, constant rate, BatchNorm trained, phase 1 on images",
        {
            "phase1_epochs": 2,
            "phase2_epochs": 12,
            "schedule": "constant",
            "finetune_lr": 2e-4,
            "train_bn": True,
            "head_on_features": False,
            "patience": 4,
        },
    ),
    "seed_2": (
        "the same recipe with another seed: how far two trainings differ by chance",
        {"seed": 2},
    ),
    "frozen_bn": (
        "BatchNorm statistics frozen in phase 2 (the default before train_bn; 0.75x the cost)",
        {"train_bn": False},
    ),
    "lr_1e-4": ("phase 2 starts at 1e-4", {"finetune_lr": 1e-4}),
    "lr_5e-4": ("phase 2 starts at 5e-4", {"finetune_lr": 5e-4}),
    "epochs_9": ("9 epochs in phase 2", {"phase2_epochs": 9}),
    "size_128": ("128 px input (1.8x the cost)", {"image_size": 128}),
    "size_64": ("64 px input (0.45x the cost)", {"image_size": 64}),
    "unfreeze_8": ("only the last 8 of 16 blocks fine-tuned", {"unfreeze_blocks": 8}),
    "smoothing_0.1": ("label smoothing 0.1", {"label_smoothing": 0.1}),
    "stain_0.08": ("stronger HED stain jitter (0.08)", {"augment": {"hed": 0.08}}),
    "no_affine": (
        "no free rotation, shift or zoom (flips and quarter turns kept)",
        {"augment": NO_AFFINE},
    ),
    "no_affine_lr_5e-4": (
        "the two best single changes together: no free affine, phase 2 at 5e-4",
        {"augment": NO_AFFINE, "finetune_lr": 5e-4},
    ),
    "no_affine_lr_5e-4_seed_2": (
        "the same pair with seed 2 (against seed_2)",
        {"augment": NO_AFFINE, "finetune_lr": 5e-4, "seed": 2},
    ),
}


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--run", default="runs/sample", help="run folder whose split.csv is used")
    ap.add_argument("--profile", default="sample")
    ap.add_argument("--out", default="book/data/recipe_study.json")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument(
        "--summarise-only",
        action="store_true",
        help="recompute the paired differences of the variants already trained",
    )
    args = ap.parse_args()

    run_dir = Path(args.run)
    ds, df = split.dataset_with_split(None, run_dir / "split.csv")
    val, test = df[df.split == "val"], df[df.split == "test"]
    base = variant_params(profiles.profile_params(args.profile), STUDY_BASE)
    work = run_dir / "recipe_study"
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    digest = split.assignment_digest(df)
    # (a study stored before the rename calls the digest "patients_fingerprint")
    stored = results.pop("patients_fingerprint", results.get("assignment_digest"))
    if stored != digest and results.get("variants"):
        print(f"[study] {out} was measured on another split: starting it over", flush=True)
        results = {}
    results["assignment_digest"] = digest
    results.setdefault("variants", {})
    probs = {}
    for name in [] if args.summarise_only else args.variants:
        what, overrides = VARIANTS[name]
        p = variant_params(base, overrides)
        cfg = config.TrainConfig.for_transfer(p)
        t0 = time.perf_counter()
        res = loop.fit(
            cfg,
            ds.images,
            df,
            work,
            name,
            data_fingerprint=ds.fingerprint,
            log=lambda m: print(m, flush=True),
        )
        probs[name] = {}
        for s, part in (("val", val), ("test", test)):
            for tta in (False, True):
                probs[name][(s, tta)] = inference.predict_proba(
                    res.model, ds.images, part["i"], tta=tta
                )
        np.savez(
            work / f"{name}.probs.npz",
            **{f"{s}_{'tta' if t else 'plain'}": v for (s, t), v in probs[name].items()},
        )
        row = {
            "what": what,
            "overrides": overrides,
            "train_minutes": sum(res.card["seconds"].values()) / 60,
            "epochs_run": res.card["epochs_run"],
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "wall_minutes_this_call": (time.perf_counter() - t0) / 60,
        }
        for tta in (False, True):
            tag = "tta" if tta else "plain"
            pv, pt = probs[name][("val", tta)], probs[name][("test", tta)]
            thr = metrics.threshold_for_recall(val["label"], pv, cfg.target_recall)
            ci = bootstrap.bootstrap_metrics(
                test["label"], pt, test["patient_id"], thr, n_boot=args.n_boot, seed=0
            )
            row[tag] = {
                "val_auc": metrics.binary_metrics(val["label"], pv)["auc"],
                "threshold": thr,
                "test": {
                    m: ci.loc[m, ["estimate", "low", "high"]].tolist()
                    for m in ("auc", "recall", "precision", "balanced_accuracy")
                },
            }
        results["variants"][name] = row
        print(
            f"[study] {name}: val AUC {row['plain']['val_auc']:.4f} (TTA "
            f"{row['tta']['val_auc']:.4f}), "
            f"test AUC {row['plain']['test']['auc'][0]:.4f} (TTA "
            f"{row['tta']['test']['auc'][0]:.4f}), "
            f"{row['train_minutes']:.1f} min",
            flush=True,
        )
        results.update(
            machine=machine.machine_description(),
            finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
            profile=args.profile,
            split=str(run_dir / "split.csv"),
            test_patients=int(test.patient_id.nunique()),
            val_patients=int(val.patient_id.nunique()),
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))
    results["study_base"] = STUDY_BASE
    for name, row in results["variants"].items():
        if name in VARIANTS:  # what each row trained, to find the book's recipe among them
            row["what"], overrides = VARIANTS[name]
            cfg = config.TrainConfig.for_transfer(variant_params(base, overrides))
            row["recipe"] = cfg.as_dict()
    add_paired_differences(results, work, val, test, args.n_boot)
    out.write_text(json.dumps(results, indent=1))
    return 0


def add_paired_differences(results: dict, work: Path, val, test, n_boot: int) -> None:
    """AUC of each variant minus the reference's, on validation and on test patients, with the
    same patient resamples for both models (with and without test-time augmentation). A variant
    named ``<x>_seed_2`` is compared with ``seed_2`` (``recipe_study.compared_with``)."""
    for name, row in results["variants"].items():
        twin = compared_with(name)
        f, ref = work / f"{name}.probs.npz", work / f"{twin}.probs.npz"
        if not (f.exists() and ref.exists()):
            continue
        v, r = np.load(f), np.load(ref)
        row["compared_with"] = twin
        for tag in ("plain", "tta"):
            for part, rows in (("val", val), ("test", test)):
                d = bootstrap.paired_bootstrap_difference(
                    rows["label"],
                    v[f"{part}_{tag}"],
                    r[f"{part}_{tag}"],
                    rows["patient_id"],
                    "auc",
                    n_boot=n_boot,
                    seed=0,
                )
                row[tag][f"{part}_auc_vs_reference"] = [d["difference"], d["low"], d["high"]]


if __name__ == "__main__":
    sys.exit(main())
