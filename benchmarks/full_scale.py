"""Full-scale rehearsal: every chapter of the ``full`` profile on a Kaggle-sized dataset, on a CPU.

The Kaggle set has 277,524 patches in 279 patient folders; a new user downloads it and runs
``make book PROFILE=full``. This script checks, without the download, that every chapter copes with
that many patches: it builds a Kaggle-layout folder of **277,524 patches in 279 patient folders**
from the shared sample (hard links, or symbolic links across file systems; each new patient draws
real patches of the sample, keeps their labels and gets real 50-px grid coordinates; patient 14082
is kept whole, as chapter 8 maps its mosaic), then runs every chapter of the ``full`` profile
with the compute capped (``max_train_steps``, one epoch per phase, a smaller image size, 20
generator steps, 1 sampler step and 1,000 synthetic patches per class and seed), and
reports per chapter the wall time and the **peak memory** of the chapter's kernel and its
children. Nothing may need more than 12 GB.

Data handling, the split, embeddings, bootstraps, mosaic maps and the demo run at full scale;
only the number of training steps and the image size are capped, so the times say what the
machinery costs, not what full training costs (that is a GPU's job: ``benchmarks/gpu_check.py``).

    IDC_DATA_DIR=../shared/idc-sample .venv/bin/python benchmarks/full_scale.py \\
        --dest /tmp/idc-full --report runs/full_scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from idc_utils.book import machine, runner
from idc_utils.data import scan

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent

KAGGLE_PATCHES = 277_524
KAGGLE_PATIENTS = 279
KEEP_WHOLE = "14082"
#: the compute caps; everything else is the ``full`` profile
CAPS = {
    "max_train_steps": 20,
    "cnn_epochs": 1,
    "phase1_epochs": 1,
    "phase2_epochs": 1,
    "image_size": 64,
    "tta": False,
    "gen_train_steps": 20,  # the generator's training (chapter 10)
    "gen_diffusion_steps": 1,  # its sampler's steps
    # synthetic patches per class and seed (4,000 in full): drawing 24,000 took 42 min on a CPU
    # even at 1 step; 6,000 of them held in memory are 41 MB, so nothing is hidden by the cap
    "gen_per_class": 1000,
}


def caps_for(only=None, root: Path = ROOT) -> dict:
    """The caps the chapters that run declare (all of them without ``only``): the runner refuses
    a parameter no running chapter has, and ``--only 10 11`` runs no training chapter."""
    if not only:
        return dict(CAPS)
    declared = runner.running_parameters(runner.chapter_notebooks(root), only)
    return {k: v for k, v in CAPS.items() if k in declared}


def patient_sizes(n_patients: int, total: int, rng) -> np.ndarray:
    """Patches per patient: spread like the Kaggle set's (a few dozen to a few thousand), summing to
    ``total`` exactly."""
    raw = rng.lognormal(mean=0.0, sigma=0.8, size=n_patients)
    sizes = np.maximum(20, np.floor(raw / raw.sum() * total)).astype(int)
    sizes[np.argmax(sizes)] += total - sizes.sum()
    return sizes


def build_dataset(
    source: Path,
    dest: Path,
    n_patients: int = KAGGLE_PATIENTS,
    n_patches: int = KAGGLE_PATCHES,
    seed: int = 0,
    log=print,
) -> Path:
    """A Kaggle-layout folder of ``n_patches`` patches in ``n_patients`` folders, made from the
    sample."""
    stamp = dest / ".built.json"
    spec = {
        "source": str(source.resolve()),
        "patients": n_patients,
        "patches": n_patches,
        "seed": seed,
    }
    if stamp.exists() and json.loads(stamp.read_text()) == spec:
        log(f"reusing {dest} ({n_patches:,} patches)")
        return dest
    if dest.exists():
        import shutil

        shutil.rmtree(dest)
    t0 = time.perf_counter()
    m = scan.scan(source).files
    rng = np.random.default_rng(seed)
    whole = m[m.patient_id == KEEP_WHOLE]
    pool = m[m.patient_id != KEEP_WHOLE]
    pos, neg = pool[pool.label == 1], pool[pool.label == 0]
    shares = pool.groupby("patient_id")["label"].mean().to_numpy()  # real per-patient IDC+ shares
    sizes = patient_sizes(n_patients - len(whole.patient_id.unique()), n_patches - len(whole), rng)
    table = np.concatenate([pos.to_numpy(), neg.to_numpy()])
    label_col, path_col = pool.columns.get_loc("label"), pool.columns.get_loc("path")
    link = _linker(source, dest)
    for r in whole.itertuples():
        link(r.path, f"{r.patient_id}/{r.label}/{Path(r.path).name}")
    for k, n in enumerate(sizes):
        pid = str(20000 + k)
        n_pos = int(round(rng.choice(shares) * n))
        picks = np.r_[
            rng.integers(0, len(pos), n_pos), len(pos) + rng.integers(0, len(neg), n - n_pos)
        ]
        rows = table[picks]
        cols = int(np.ceil(np.sqrt(n)))
        for j, row in enumerate(rows):
            x, y = 1 + 50 * (j % cols), 1 + 50 * (j // cols)
            lab = int(row[label_col])
            link(row[path_col], f"{pid}/{lab}/{pid}_idx5_x{x}_y{y}_class{lab}.png")
        if k % 40 == 0:
            log(f"  patient {k + 1}/{len(sizes)}")
    stamp.write_text(json.dumps(spec))
    log(
        f"built {dest}: {n_patches:,} patches in {n_patients} patient folders in "
        f"{time.perf_counter() - t0:.0f} s "
        f"({link.kind})"
    )
    return dest


def _linker(source: Path, dest: Path):
    """Hard links when source and destination share a file system, else symbolic links."""
    source = source.resolve()

    def link(rel_src: str, rel_dst: str):
        dst = dest / rel_dst
        dst.parent.mkdir(parents=True, exist_ok=True)
        src = source / rel_src
        if link.kind == "hard links":
            try:
                os.link(src, dst)
                return
            except OSError:
                link.kind = "symbolic links"
        os.symlink(src, dst)

    link.kind = "hard links"
    return link


def cpu_reference() -> float | None:
    """``cpu_ref.py``'s matmul figure (GFLOP/s), or ``None`` where there is none."""
    figures = machine.cpu_reference()
    return None if figures is None else float(figures["matmul_gflops"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--source",
        default=os.environ.get("IDC_DATA_DIR"),
        help="the sample (default $IDC_DATA_DIR)",
    )
    ap.add_argument(
        "--dest", default="/tmp/idc-full", help="where the rehearsal dataset and run go"
    )
    ap.add_argument("--patients", type=int, default=KAGGLE_PATIENTS)
    ap.add_argument("--patches", type=int, default=KAGGLE_PATCHES)
    ap.add_argument("--only", nargs="+", help="run only these chapters (prefixes)")
    ap.add_argument("--report", default=None, help="write the table as JSON here")
    args = ap.parse_args(argv)
    if not args.source:
        ap.error("give --source or set IDC_DATA_DIR to the shared sample")

    dest = Path(args.dest)
    dataset = build_dataset(
        Path(args.source), dest / "IDC_regular_ps50_idx5", args.patients, args.patches
    )
    os.environ["IDC_CACHE_DIR"] = str(dest / "cache")
    run_dir = dest / "run"
    t0 = time.perf_counter()
    caps = caps_for(args.only)
    runner.run_chapters(
        "full", str(dataset), overrides=caps, run_dir=run_dir, only=args.only, force=True
    )
    total = time.perf_counter() - t0
    chapters = json.loads((run_dir / "book.json").read_text())["chapters"]
    gflops = cpu_reference()
    print(
        f"\nfull-scale rehearsal: {args.patches:,} patches, {args.patients} patients; caps {caps}"
    )
    print(
        f"machine: {machine.machine_description()}; cpu_ref {gflops} GFLOP/s (budgets are for 80)"
    )
    print(f"{'chapter':<22}{'minutes':>9}{'peak GB':>9}")
    rows = []
    for name, rec in chapters.items():
        rows.append(
            {"chapter": name, "seconds": rec["seconds"], "peak_gb": rec["peak_rss_mb"] / 1024}
        )
        print(f"{name:<22}{rec['seconds'] / 60:9.1f}{rec['peak_rss_mb'] / 1024:9.2f}")
    worst = max(r["peak_gb"] for r in rows)
    print(
        f"{'all':<22}{total / 60:9.1f}{worst:9.2f}   limit 12 GB: {'OK' if worst <= 12 else 'OVER'}"
    )
    if args.report:
        Path(args.report).write_text(
            json.dumps(
                {
                    "patches": args.patches,
                    "patients": args.patients,
                    "caps": caps,
                    "only": args.only,
                    "machine": machine.machine_description(),
                    "cpu_ref_gflops": gflops,
                    "total_seconds": total,
                    "chapters": rows,
                    "date": time.strftime("%Y-%m-%d"),
                },
                indent=1,
            )
        )
    return 0 if worst <= 12 else 1


if __name__ == "__main__":
    sys.exit(main())
