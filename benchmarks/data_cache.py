"""How much the decoded-patch cache saves: first load (scan + decode every PNG) against a second
load (scan + memory-mapped read), on a real dataset folder or a synthetic one.

    python benchmarks/data_cache.py [--data DIR] [--synthetic N] [--workers K]

Prints seconds and patches/s for both, and the speed-up as a ratio. With ``--synthetic N`` it
writes N random 50x50 PNGs in a temporary Kaggle-layout folder first (a stand-in for the full
277,524-patch set, whose decode time it extrapolates).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from idc_utils.data import dataset, sources

FULL_SET = 277_524


def synthetic(root: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    per_patient = 1000
    for k in range(n):
        pid = 10000 + k // per_patient
        label = int(rng.random() < 0.28)
        j = k % per_patient
        d = root / str(pid) / str(label)
        d.mkdir(parents=True, exist_ok=True)
        # smooth-ish noise compresses like tissue (a few kB per patch)
        base = rng.integers(60, 230, (13, 13, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize((50, 50), Image.BILINEAR)
        img.save(d / f"{pid}_idx5_x{1 + 50 * (j % 40)}_y{1 + 50 * (j // 40)}_class{label}.png")
    return root


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default=None, help="dataset folder (default: $IDC_DATA_DIR)")
    ap.add_argument(
        "--synthetic", type=int, default=0, help="write and use N synthetic patches instead"
    )
    ap.add_argument("--workers", type=int, default=None, help="decode processes (default: auto)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = (
            synthetic(tmp / "idc", args.synthetic)
            if args.synthetic
            else sources.resolve_data_dir(args.data)
        )
        cache = tmp / "cache"
        t0 = time.perf_counter()
        first = dataset.load_dataset(src, cache_dir=cache, workers=args.workers)
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        second = dataset.load_dataset(src, cache_dir=cache)
        _ = np.asarray(second.images).sum(dtype=np.uint64)  # touch every byte, so the read is real
        t_second = time.perf_counter() - t0
        assert second.from_cache and np.array_equal(
            np.asarray(first.images), np.asarray(second.images)
        )
        n = len(first)
        print(f"dataset: {src} ({n:,} patches, {os.cpu_count()} CPUs)")
        print(
            f"first load  (scan + decode + write cache): {t_first:7.2f} s  {n / t_first:9,.0f} "
            "patches/s"
        )
        print(
            f"second load (scan + read cache, all bytes): {t_second:7.2f} s  {n / t_second:9,.0f} "
            "patches/s"
        )
        print(f"ratio first/second: {t_first / t_second:.1f}x")
        print(
            f"extrapolated to the full set ({FULL_SET:,} patches): first "
            f"{FULL_SET / (n / t_first) / 60:.1f} min, "
            f"second {FULL_SET / (n / t_second):.0f} s; cache size {FULL_SET * 7500 / 1e9:.1f} GB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
