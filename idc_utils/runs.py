"""Profiles, chapter parameters and the run folder that chains the chapters.

Every chapter has one ``parameters`` cell: ``profile`` plus the keys it uses, all ``None`` by
default. :func:`chapter_params` fills each ``None`` from the profile in
``idc_utils/profiles.yml``, keeps what papermill passed, records the result in
``runs/<profile>/params.json`` and returns it. The chapters read and write their artifacts in
that one run folder:

    runs/<profile>/params.json        what each chapter ran with
    runs/<profile>/split.csv          the patient-level split (chapter 01)
    runs/<profile>/models/<name>.keras + <name>.json   models and their cards
    runs/<profile>/metrics.json       numbers the chapters report, by section
    runs/<profile>/figures/           every figure, as PNG
    runs/<profile>/notebooks/         the executed chapters
"""

from __future__ import annotations

import json
import os
import platform
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

#: the profiles, shipped inside the package (so that an installed idc_utils has them too)
PROFILE_FILE = "idc_utils/profiles.yml"
#: keys that are not tuning parameters and always exist
RESERVED = ("profile", "data_dir", "run_dir")


def project_root() -> Path:
    """The idc-book checkout: ``$IDC_BOOK_ROOT``, else the nearest parent of the working
    directory holding ``_toc.yml`` and ``idc_utils/``, else the folder above this package."""
    env = os.environ.get("IDC_BOOK_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "_toc.yml").exists() and (d / "idc_utils").is_dir():
            return d
    return Path(__file__).resolve().parent.parent


def load_profiles(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    if path is None:
        in_checkout = project_root() / PROFILE_FILE
        path = in_checkout if in_checkout.exists() else Path(__file__).with_name("profiles.yml")
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
    profiles = load_profiles(path)
    if profile not in profiles:
        raise ValueError(
            f"unknown profile {profile!r}; choose one of {sorted(profiles)} "
            "(idc_utils/profiles.yml)"
        )
    return dict(profiles[profile])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (when imported) TensorFlow/Keras."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ["PYTHONHASHSEED"] = str(seed)
    import sys

    if "tensorflow" in sys.modules or "keras" in sys.modules:
        import keras

        keras.utils.set_random_seed(seed)


@dataclass
class Run:
    """A run folder ``runs/<profile>/`` and the paths the chapters agree on."""

    dir: Path
    profile: str = "sample"

    def __post_init__(self):
        self.dir = Path(self.dir)
        for sub in ("models", "figures", "notebooks"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)

    @classmethod
    def for_profile(cls, profile: str, run_dir: str | Path | None = None) -> Run:
        d = Path(run_dir).resolve() if run_dir else project_root() / "runs" / profile
        return cls(d, profile)

    @property
    def split_csv(self) -> Path:
        return self.dir / "split.csv"

    @property
    def params_json(self) -> Path:
        return self.dir / "params.json"

    @property
    def metrics_json(self) -> Path:
        return self.dir / "metrics.json"

    @property
    def figures(self) -> Path:
        return self.dir / "figures"

    @property
    def models(self) -> Path:
        return self.dir / "models"

    def model_path(self, name: str) -> Path:
        return self.models / f"{name}.keras"

    def save_figure(self, fig, name: str, dpi: int = 110) -> Path:
        path = self.figures / f"{name}.png"
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        return path

    def read_json(self, path: Path) -> dict:
        return json.loads(path.read_text()) if path.exists() else {}

    def update_json(self, path: Path, section: str, values: dict) -> None:
        data = self.read_json(path)
        data[section] = _jsonable(values)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        tmp.replace(path)

    def record_metrics(self, section: str, values: dict) -> None:
        """Store numbers a chapter reports under ``metrics.json[section]``."""
        self.update_json(self.metrics_json, section, values)

    def metrics(self) -> dict:
        return self.read_json(self.metrics_json)


@dataclass
class ChapterParams:
    """The parameters a chapter ran with; attribute access, plus the run folder."""

    chapter: str
    profile: str
    values: dict[str, Any]
    run: Run
    given: set[str] = field(default_factory=set)

    def __getattr__(self, key):
        values = self.__dict__.get("values", {})
        if key in values:
            return values[key]
        raise AttributeError(f"chapter parameter {key!r} is not defined (have {sorted(values)})")

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)

    def table(self):
        """A table for the book: each parameter, its value, and where it came from. Paths are
        shown as the reader would write them: ``$IDC_DATA_DIR`` or relative to the repository."""
        import pandas as pd

        rows = []
        for k, v in self.values.items():
            if k == "data_dir":
                shown = "$IDC_DATA_DIR" if k not in self.given else display_path(v)
            elif k == "run_dir":
                shown = display_path(v)
            else:
                shown = repr(v)
            rows.append(
                {
                    "parameter": k,
                    "value": shown,
                    "source": "papermill / caller"
                    if k in self.given
                    else f"profile '{self.profile}'",
                }
            )
        return pd.DataFrame(rows).set_index("parameter")


def display_path(path) -> str:
    """A path relative to the repository when it lies inside it, else as given."""
    if path is None:
        return "None"
    try:
        return Path(path).resolve().relative_to(project_root().resolve()).as_posix()
    except ValueError:
        return str(path)


def chapter_params(
    chapter: str, namespace: dict | None = None, *, profile: str | None = None, **given: Any
) -> ChapterParams:
    """Resolve a chapter's parameters: what the caller (papermill) set wins, the profile fills
    every ``None``. Records them in ``run_dir/params.json`` under the chapter's name.

    A chapter calls ``chapter_params("04_cnn_baseline", globals())`` right after its parameters
    cell: the parameters are the names of that namespace that the profile (or ``data_dir``,
    ``run_dir``) defines, so each is listed once, in the parameters cell."""
    if namespace is not None:
        profile = namespace.get("profile", profile)
    profile = profile or "sample"
    prof = profile_params(profile)
    if namespace is not None:
        given = {
            **{
                k: v
                for k, v in namespace.items()
                if (k in prof or k in RESERVED) and k != "profile"
            },
            **given,
        }
    values: dict[str, Any] = {}
    explicit = set()
    unknown = []
    for key, val in given.items():
        if val is not None:
            values[key] = val
            explicit.add(key)
        elif key in prof:
            values[key] = prof[key]
        elif key in ("data_dir", "run_dir"):
            values[key] = None
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(
            f"{chapter}: parameters {unknown} have no value and no default in profile {profile!r}; "
            "add them to idc_utils/profiles.yml or pass them with papermill -p"
        )
    if values.get("data_dir") is None and os.environ.get("IDC_DATA_DIR"):
        values["data_dir"] = os.environ["IDC_DATA_DIR"]
    run = Run.for_profile(profile, values.get("run_dir"))
    values["run_dir"] = str(run.dir)
    params = ChapterParams(chapter, profile, values, run, explicit)
    record = {
        "profile": profile,
        "parameters": values,
        "given": sorted(explicit),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
    }
    run.update_json(run.params_json, chapter, record)
    if "seed" in values:
        seed_everything(int(values["seed"]))
    return params


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return None if np.isnan(obj) else float(obj)
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj
