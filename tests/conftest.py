"""Shared fixtures: tiny self-made datasets for unit tests; the shared sample for integration."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Never touch the user's ~/.cache: each test session gets its own patch cache."""
    old = os.environ.get("IDC_CACHE_DIR")
    os.environ["IDC_CACHE_DIR"] = str(tmp_path_factory.mktemp("idc-cache"))
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


def make_kaggle_dataset(root: Path, patients: dict[str, tuple[int, int]], seed: int = 0, size=(50, 50)):
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
    spec = {"101": (8, 4), "102": (10, 0), "103": (6, 6), "104": (9, 2), "105": (7, 3), "106": (5, 0)}
    return make_kaggle_dataset(tmp_path / "idc", spec)


def sample_dir() -> Path | None:
    cand = os.environ.get("IDC_DATA_DIR") or str(ROOT.parent / "shared" / "idc-sample")
    p = Path(cand)
    return p if p.is_dir() else None


@pytest.fixture(scope="session")
def shared_sample() -> Path:
    p = sample_dir()
    if p is None:
        pytest.skip("the shared 8,035-patch sample is not here; set IDC_DATA_DIR to run integration tests")
    return p
