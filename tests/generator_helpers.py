"""Training data for the generators' tests (diffusion and GAN): patches whose colour carries
the class."""

from __future__ import annotations

import numpy as np
import pandas as pd


def two_kinds(n=64, seed=0):
    """Patches whose colour carries the class: pale pink (IDC-) or dark purple (IDC+)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    base = np.where(labels[:, None] == 1, [90, 40, 120], [230, 180, 210])[:, None, None, :]
    images = np.clip(base + rng.normal(0, 10, (n, 50, 50, 3)), 0, 255).astype(np.uint8)
    rows = pd.DataFrame(
        {"i": np.arange(n), "label": labels, "patient_id": (np.arange(n) // 8).astype(str)}
    ).assign(split="train")
    return images, rows


def gan_params(**changes):
    """A profile's GAN parameters for a tiny GAN (``adversarial.config_from_params`` and
    ``generator_study.judged_generator`` read them), with ``changes``."""
    p = {
        "gen_image_size": 8,
        "gan_widths": [16, 8],
        "gan_anneal_from": 0,
        "gan_anneal_steps": 0,
        "gan_restart_from": 0,
        "gan_restart_steps": 0,
        "gan_restart_lr": 1e-4,
        "seed": 3,
        "gan_train_steps": 2,
        "gan_checkpoint": None,
    }
    return {**p, **changes}


def assert_committed(folder, files: int) -> None:
    """``folder`` holds ``files`` files tracked by git (where the project is a git checkout):
    a published generator a fresh clone must find."""
    import subprocess

    from idc_utils.core.paths import project_root

    root = project_root()
    if not (root / ".git").exists():
        return
    tracked = subprocess.run(
        ["git", "ls-files", str(folder)], cwd=root, capture_output=True, text=True
    ).stdout.split()
    assert len(tracked) == files, f"{folder} is not committed: {tracked}"
