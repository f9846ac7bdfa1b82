"""Profiles: named parameter sets in ``idc_utils/profiles.yml`` (``smoke`` for tests and CI,
``sample`` for the teaching sample on a laptop, ``full`` for the whole Kaggle set on a GPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from idc_utils.core.paths import project_root

#: the profiles, shipped inside the package (so that an installed idc_utils has them too)
PROFILE_FILE = "idc_utils/profiles.yml"


#: keys that are not tuning parameters and always exist
RESERVED = ("profile", "data_dir", "run_dir")


def load_profiles(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Every profile of ``path`` (default: the checkout's ``idc_utils/profiles.yml``, else the
    installed package's), by name."""
    if path is None:
        in_checkout = project_root() / PROFILE_FILE
        path = in_checkout if in_checkout.exists() else Path(__file__).parents[1] / "profiles.yml"
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: run from the idc-book checkout or set IDC_BOOK_ROOT"
        )
    raw = yaml.safe_load(path.read_text())
    profiles = {k: v for k, v in raw.items() if not k.startswith("_") and isinstance(v, dict)}
    if not profiles:
        raise ValueError(f"{path} defines no profiles")
    return profiles


def profile_params(profile: str, path: str | Path | None = None) -> dict[str, Any]:
    """The parameters of one profile; an unknown name is an error that lists the others."""
    profiles = load_profiles(path)
    if profile not in profiles:
        raise ValueError(
            f"unknown profile {profile!r}; choose one of {sorted(profiles)} "
            "(idc_utils/profiles.yml)"
        )
    return dict(profiles[profile])
