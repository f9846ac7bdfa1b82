"""Training on several machines with TensorFlow's own engine: two worker processes on loopback
(``TF_CONFIG``) train through ``python -m idc_utils train --strategy multiworker`` under
``tf.distribute.MultiWorkerMirroredStrategy``. Both must end with the same weights, and with the
weights of one process trained on the same global batches (this test's own process, meanwhile)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, make_kaggle_dataset

from idc_utils.data import split
from idc_utils.models import classifier

pytestmark = pytest.mark.slow


# a model without per-batch statistics: BatchNorm frozen, no dropout, no augmentation, so that a
# global batch split over two workers computes exactly what one process computes on all of it
PARAMS = {
    "backbone": "efficientnet_lite0",
    "image_size": 32,
    "batch_size": 16,
    "phase1_epochs": 0,
    "phase2_epochs": 1,
    "unfreeze_blocks": "1",
    "train_bn": "false",
    "augment": "null",
    "dropout": 0.0,
    "max_train_steps": 2,
    "head_on_features": "false",
    "schedule": "constant",
    "finetune_lr": 0.001,
    "seed": 5,
}


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def train_cmd(data, run_dir):
    cmd = [
        sys.executable,
        "-m",
        "idc_utils",
        "train",
        "--model",
        "efficientnet",
        "--profile",
        "smoke",
        "--data-dir",
        str(data),
        "--run-dir",
        str(run_dir),
        "--force",
    ]
    for k, v in PARAMS.items():
        cmd += ["-p", k, str(v)]
    return cmd


def one_process(data, run_dir):
    """What ``python -m idc_utils train`` does with the same parameters, in this process: the
    weights of the model trained on one machine."""
    from idc_utils.chapters import profiles
    from idc_utils.cli import _parse_value
    from idc_utils.core.seeding import seed_everything
    from idc_utils.training import config, devices, loop

    device = devices.configure_device()
    params = profiles.profile_params("smoke")
    params.update({k: _parse_value(str(v)) for k, v in PARAMS.items()})
    seed_everything(int(params["seed"]))
    ds, df = split.dataset_with_split(data, run_dir / "split.csv")
    cfg = config.TrainConfig.for_transfer(params)
    res = loop.fit(
        cfg,
        ds.images,
        df,
        run_dir / "models",
        "efficientnet",
        data_fingerprint=ds.fingerprint,
        device=device,
        force=True,
        log=lambda *_: None,
    )
    return [np.asarray(w) for w in res.model.weights]


def weights(path):
    import keras

    return [np.asarray(w) for w in keras.models.load_model(path, compile=False).weights]


def test_two_workers_match_each_other_and_one_process(tmp_path, monkeypatch):
    data = make_kaggle_dataset(tmp_path / "data", {f"{k}": (8, 4) for k in range(1, 9)})
    from idc_utils.data.dataset import load_dataset

    env = {
        **os.environ,
        "IDC_CACHE_DIR": str(tmp_path / "cache"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "IDC_BOOK_ROOT": str(ROOT),
        "CUDA_VISIBLE_DEVICES": "",
    }
    monkeypatch.setenv("IDC_CACHE_DIR", env["IDC_CACHE_DIR"])
    manifest = load_dataset(data).manifest  # decoded once, the cache is shared
    df = split.assign_split(manifest, 0.25, 0.0, seed=0)
    multi, single = tmp_path / "multi", tmp_path / "single"
    for d in (multi, single):
        split.save_split(df, d / "split.csv")
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for k in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": k}})
        procs.append(
            subprocess.Popen(
                train_cmd(data, multi) + ["--strategy", "multiworker"],
                env={**env, "TF_CONFIG": tf_config},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outs = []
    try:
        alone = one_process(data, single)
        for p in procs:
            outs.append(p.communicate(timeout=110)[0])
    finally:
        for p in procs:
            p.kill()
    for k, (p, out) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, f"worker {k} failed:\n{out[-3000:]}"
        assert f"worker {k} of 2" in out
    chief = weights(multi / "models" / "efficientnet.keras")
    other = weights(multi / "models" / "worker-1" / "efficientnet.keras")
    assert len(chief) == len(other) == len(alone)
    for a, b in zip(chief, other):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(chief, alone):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)
    card = json.loads((multi / "models" / "efficientnet.json").read_text())
    assert (
        "worker 0 of 2" in card["device"]
        and card["training"]["steps_per_epoch"] == PARAMS["max_train_steps"]
    )
    # the steps changed the weights (the comparison is not between two untouched models)

    start = classifier.build_classifier("efficientnet_lite0", 32, dropout=0.0).weights
    assert max(float(np.abs(np.asarray(w) - a).max()) for w, a in zip(start, alone)) > 1e-4
