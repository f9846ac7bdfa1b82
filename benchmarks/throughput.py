"""Does the input pipeline keep the model busy? Images/s of

  (a) the input pipeline alone: read + decode + pad PNG files into batches (what predict feeds),
      and the training pipeline (tf.data over the decode cache);
  (b) the model's forward pass alone, on batches already in memory;
  (c) `predict` end to end (files -> CSV rows), decoding overlapped with the model;

for EfficientNet-Lite0 at 50, 96 (the sample profile) and 200 px (the paper), and the CNN at 50 px,
printed with the ratios (c)/(b) (target >= 0.9: prediction runs at the model's speed) and (a)/(b)
(> 1: the pipeline is faster than the model, so it cannot starve it).

    python benchmarks/throughput.py [--data DIR] [--n 2048] [--batch 128] [--sizes 50 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from idc_utils.data import dataset, pipeline, scan, sources
from idc_utils.models import classifier, inference
from idc_utils.serving import predict


def rate(fn, n, repeat=2):
    """Best of ``repeat`` runs, items per second."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default=None, help="dataset folder (default: $IDC_DATA_DIR)")
    ap.add_argument("--n", type=int, default=2048, help="patch files to score")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 96, 200])
    args = ap.parse_args()

    root = sources.resolve_data_dir(args.data)
    listed = scan.scan(root)
    files = [root / p for p in listed.files["path"][: args.n]]
    n = len(files)
    print(f"{n} patch files from {root}; batch {args.batch}; {os.cpu_count()} CPUs")

    def load_all():
        for s in range(0, n, args.batch):
            batch = [predict.load_patch_file(f)[0] for f in files[s : s + args.batch]]
            np.stack([b for b in batch if b is not None])

    a_files = rate(load_all, n)
    ds = dataset.load_dataset(root)
    idx = np.arange(min(len(ds), 8192))
    pipe = pipeline.patch_batches(ds.images, idx, None, batch_size=args.batch, shuffle=True)
    a_train = rate(lambda: [None for _ in pipe], len(idx))
    print(f"(a) input pipeline, files -> batches:        {a_files:9,.0f} patches/s")
    print(f"(a) training pipeline, cache -> batches:     {a_train:9,.0f} patches/s")

    in_memory = np.stack([predict.load_patch_file(f)[0] for f in files[: args.batch * 4]])
    rows = []
    setups = [("cnn", 50)] + [("efficientnet_lite0", s) for s in args.sizes]
    for backbone, size in setups:
        model = classifier.build_classifier(
            backbone, size, weights="imagenet" if backbone != "cnn" else None
        )
        infer = inference.make_infer(model)
        infer(in_memory[: args.batch])  # trace and warm up
        chunks = [in_memory[k : k + args.batch] for k in range(0, len(in_memory), args.batch)]
        b = rate(lambda infer=infer, chunks=chunks: [infer(c) for c in chunks], len(in_memory))
        # end to end: as many files as the model does in ~10 s, at least 512
        m = int(min(n, max(512, 10 * b)))
        with tempfile.TemporaryDirectory():
            c = rate(
                lambda model=model, m=m, infer=infer: predict.score_files(
                    model, files[:m], threshold=0.5, batch_size=args.batch, infer=infer
                ),
                m,
                repeat=1,
            )
        rows.append((backbone, size, b, c))
        print(
            f"{backbone:>18} @ {size:3d} px: (b) forward {b:8,.0f}/s  (c) predict {c:8,.0f}/s  "
            f"(c)/(b) = {c / b:.2f}  (a)/(b) = {a_files / b:.1f}"
        )
    worst = min(c / b for *_, b, c in rows)
    print(
        f"lowest (c)/(b): {worst:.2f} (target >= 0.90) -> "
        f"{'OK' if worst >= 0.9 else 'BELOW TARGET'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
