"""Shared fixtures: tiny self-made datasets for unit tests; the shared sample for integration."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parent.parent


def shared_dir(tmp_path_factory, name: str) -> Path:
    """A folder that every test process of this run shares (under pytest-xdist, beside each
    process's own temporary folder): what one process made, the others reuse."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    path = base / name
    path.mkdir(exist_ok=True)
    return path


@contextlib.contextmanager
def one_process_at_a_time(folder: Path):
    """Hold ``folder``'s lock: test processes that make the same thing there take turns."""
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Never touch the user's ~/.cache: the test run gets its own cache of decoded patches and
    embeddings, shared by its processes (the caches are written atomically)."""
    old = os.environ.get("IDC_CACHE_DIR")
    os.environ["IDC_CACHE_DIR"] = str(shared_dir(tmp_path_factory, "idc-cache"))
    yield
    if old is None:
        os.environ.pop("IDC_CACHE_DIR", None)
    else:
        os.environ["IDC_CACHE_DIR"] = old


def patch_name(patient, x, y, label):
    return f"{patient}_idx5_x{x}_y{y}_class{label}.png"


def write_png(path: Path, arr: np.ndarray, mode: str | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode=mode).save(path) if mode else Image.fromarray(arr).save(path)
    return path


def make_kaggle_dataset(
    root: Path, patients: dict[str, tuple[int, int]], seed: int = 0, size=(50, 50)
):
    """Write a Kaggle-layout folder: ``patients = {pid: (n_neg, n_pos)}``. Pixel values encode
    the label (IDC+ patches are darker) so that tests can check images follow their rows."""
    rng = np.random.default_rng(seed)
    for pid, (n_neg, n_pos) in patients.items():
        k = 0
        for label, n in ((0, n_neg), (1, n_pos)):
            for _ in range(n):
                x, y = 1 + 50 * (k % 7), 1 + 50 * (k // 7)
                k += 1
                base = 200 if label == 0 else 80
                arr = np.clip(rng.normal(base, 10, (*size[::-1], 3)), 0, 255).astype(np.uint8)
                write_png(root / pid / str(label) / patch_name(pid, x, y, label), arr)
    return root


@pytest.fixture
def tiny_dataset(tmp_path):
    """Six patients, 60 patches, ~30% IDC+."""
    spec = {
        "101": (8, 4),
        "102": (10, 0),
        "103": (6, 6),
        "104": (9, 2),
        "105": (7, 3),
        "106": (5, 0),
    }
    return make_kaggle_dataset(tmp_path / "idc", spec)


def sample_dir() -> Path | None:
    cand = os.environ.get("IDC_DATA_DIR") or str(ROOT.parent / "shared" / "idc-sample")
    p = Path(cand)
    return p if p.is_dir() else None


def in_ci() -> bool:
    """Under CI (``CI=true``) a missing requirement is a failure, not a skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(reason: str):
    if in_ci():
        pytest.fail(f"{reason} (CI=true: CI must provide it)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_sample() -> Path:
    p = sample_dir()
    if p is None:
        skip_or_fail(
            "the shared 8,035-patch sample is not here; set IDC_DATA_DIR to run integration tests"
        )
    return p


def toy_data(n=160, seed=0):
    """Patches whose darkness carries the label; 8 patients over train/val/test."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.35).astype(int)
    base = np.where(labels == 1, 90, 190)[:, None, None, None]
    images = np.clip(base + rng.normal(0, 25, (n, 50, 50, 3)), 0, 255).astype(np.uint8)
    patients = np.repeat(np.arange(8), n // 8).astype(str)
    split_of = {
        "0": "train",
        "1": "train",
        "2": "train",
        "3": "train",
        "4": "train",
        "5": "val",
        "6": "val",
        "7": "test",
    }
    df = pd.DataFrame(
        {
            "i": np.arange(n),
            "label": labels,
            "patient_id": patients,
            "split": [split_of[p] for p in patients],
        }
    )
    return images, df


#: settings that keep a test training to seconds
FAST = dict(batch_size=16, patience=2, augment=None, seed=3)


@pytest.fixture(scope="session")
def cnn_run(tmp_path_factory):
    """One real (1-epoch) training on toy patches, shared by the tests of what training writes
    and of what uses a trained model (made once per test run)."""
    from idc_utils.training import config, loop

    images, df = toy_data()
    out = shared_dir(tmp_path_factory, "trained-cnn")
    cfg = config.TrainConfig.scratch(epochs=1, image_size=50, cnn_width=8, **FAST)
    with one_process_at_a_time(out):  # the first trains; the others reuse its model and card
        res = loop.fit(cfg, images, df, out, "cnn", data_fingerprint="toy", log=lambda *_: None)
    return images, df, res


@pytest.fixture(scope="session")
def untrained_model(tmp_path_factory) -> Path:
    """A small CNN with random weights, saved with a valid card: what ``predict`` and the app need
    to run. Tests of input handling, validation and plumbing need *a* model, not a good one, so
    nothing is trained here. Its threshold is the median of its scores on toy patches, so that
    both classes occur."""
    import keras

    from idc_utils.models import cards, classifier, inference

    keras.utils.set_random_seed(0)
    model = classifier.build_classifier("cnn", 50, weights=None, cnn_width=4, dropout=0.0)
    path = tmp_path_factory.mktemp("untrained") / "toy.keras"
    model.save(path)
    images, _ = toy_data(64)
    threshold = float(np.median(inference.make_infer(model)(images)))
    cards.save_card(
        {
            "name": "toy",
            "backbone": "cnn",
            "image_size": 50,
            "threshold": threshold,
            "target_recall": 0.93,
            "tta": False,
            "last_conv_layer": "cnn_top_relu",
            "val_metrics": {"auc": 0.5, "recall": 0.93, "precision": 0.3},
            "disclaimer": "untrained test model",
        },
        path,
    )
    return path


def launch_chromium(pw):
    """Debian's Chromium, headless, through Playwright (with the flags that keep it off the
    network); skips, or fails under CI, when it is not installed."""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        skip_or_fail(
            "Debian chromium is not installed (.ci/run installs it): apt-get install chromium"
        )
    return pw.chromium.launch(
        executable_path=chromium,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    )


@pytest.fixture(scope="session")
def orthanc():
    """A real Orthanc with DICOMweb on loopback, for the session (skips, or fails under CI, when
    Orthanc is not installed)."""
    from idc_utils.serving.orthanc import OrthancError, start_orthanc

    try:
        server = start_orthanc()
    except OrthancError as exc:
        skip_or_fail(str(exc))
    yield server
    server.stop()


@pytest.fixture
def served(tmp_path):
    """A local HTTP server for a folder (as GitHub Pages serves the published book)."""
    site = tmp_path / "site"
    site.mkdir()
    handler = functools.partial(
        type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}),
        directory=str(site),
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield site, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def patient_data(n_pat=30, per=40, seed=0, strength=1.5):
    """Labels, probabilities and patient ids of ``n_pat`` patients with ``per`` patches each:
    IDC+ shares and scores vary by patient, so patient resampling matters."""
    rng = np.random.default_rng(seed)
    pats = np.repeat([f"p{k}" for k in range(n_pat)], per)
    y = (rng.random(n_pat * per) < np.repeat(rng.uniform(0.05, 0.6, n_pat), per)).astype(int)
    z = (
        strength * (2 * y - 1)
        + rng.normal(0, 1.2, len(y))
        + np.repeat(rng.normal(0, 0.8, n_pat), per)
    )
    return y, 1 / (1 + np.exp(-z)), pats
