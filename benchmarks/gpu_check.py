"""Is a GPU kept busy by the book's training? A few hundred training steps of the ``full`` profile.

Prints, for the EfficientNet of the ``full`` profile (200 px by default) on this machine:

  (a) the input pipeline alone: augmented training batches per second (what the fit loop feeds);
  (b) the model's forward pass alone, images/s, on batches already on the device;
  (c) training images/s over ``--steps`` steps (after a warm-up), the optimiser step included;
  (d) the share of the training time spent waiting for the next batch (input-bound when high).

and the ratios (c)/(b) (a training step costs about three forward passes, so ~0.3 is normal) and
(a)/(c) (> 1: the pipeline outruns training). Run it on the GPU machine you will train on:

    make install TF=gpu
    IDC_DATA_DIR=/data/IDC_regular_ps50_idx5 .venv/bin/python benchmarks/gpu_check.py --steps 300

It runs on a CPU too (slowly), which is how the test suite checks that it works.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default=None, help="dataset folder (default: $IDC_DATA_DIR)")
    ap.add_argument("--profile", default="full")
    ap.add_argument("--steps", type=int, default=300, help="timed training steps (after --warmup)")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--image-size", type=int, default=None, help="default: the profile's")
    ap.add_argument("--batch", type=int, default=None, help="default: the profile's batch_size")
    ap.add_argument(
        "--forward-seconds", type=float, default=5.0, help="how long (b) times the forward pass"
    )
    args = ap.parse_args(argv)

    from idc_utils.training import devices

    device = devices.configure_device()  # the strategy and precision policy come first
    import numpy as np

    from idc_utils.chapters import profiles
    from idc_utils.data import dataset, split
    from idc_utils.models import classifier, inference
    from idc_utils.training import compile, config, loop

    params = profiles.profile_params(args.profile)
    if args.image_size:
        params["image_size"] = args.image_size
    if args.batch:
        params["batch_size"] = args.batch
    params.update(phase1_epochs=0, head_on_features=False)
    cfg = config.TrainConfig.for_transfer(params)
    ds = dataset.load_dataset(args.data, progress=True)
    df = split.assign_split(ds.manifest, params["val_frac"], params["test_frac"], params["seed"])
    tr = df[df.split == "train"]
    print(
        f"{device.description}; mixed precision {device.mixed_precision}, XLA {device.jit_compile}"
    )
    print(
        f"{cfg.backbone} at {cfg.image_size} px, batch {cfg.batch_size}, unfreeze "
        f"{cfg.phases[-1].unfreeze_blocks}, "
        f"{len(tr):,} training patches"
    )

    pipe = loop.training_batches(cfg, ds.images, tr, repeat=True)
    it = iter(pipe)
    n_pipe = max(args.steps, 50)
    for _ in range(5):
        next(it)
    t0 = time.perf_counter()
    for _ in range(n_pipe):
        next(it)
    a = n_pipe * cfg.batch_size / (time.perf_counter() - t0)

    with device.strategy.scope():
        model = loop.build_model(cfg)
        classifier.set_trainable(
            model, cfg.backbone, cfg.phases[-1].unfreeze_blocks, train_bn=cfg.train_bn
        )
        compile.compile_model(model, cfg.phases[-1].learning_rate, device)
    fwd = inference.make_infer(model)
    batch = np.asarray(ds.images[tr["i"].to_numpy()[:256]])
    fwd(batch)
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < args.forward_seconds:
        fwd(batch)
        n += len(batch)
    b = n / (time.perf_counter() - t0)

    it = iter(pipe)
    wait = step = 0.0
    for k in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        x, y = next(it)
        t1 = time.perf_counter()
        logs = model.train_on_batch(x, y, return_dict=True)
        float(logs["loss"])  # wait for the device
        t2 = time.perf_counter()
        if k >= args.warmup:
            wait += t1 - t0
            step += t2 - t1
    c = args.steps * cfg.batch_size / (wait + step)
    d = wait / (wait + step)
    print(f"(a) input pipeline (augmented batches):  {a:10,.0f} images/s")
    print(f"(b) forward pass alone:                  {b:10,.0f} images/s")
    print(
        f"(c) training, {args.steps} steps:              {c:10,.0f} images/s  (c)/(b) = {c / b:.2f}"
    )
    print(f"(d) time waiting for input:              {100 * d:9.1f} %     (a)/(c) = {a / c:.1f}")
    verdict = (
        "input-bound: add tf.data parallelism or cache"
        if d > 0.1
        else "the model, not the input, sets the pace"
    )
    print(f"verdict: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
