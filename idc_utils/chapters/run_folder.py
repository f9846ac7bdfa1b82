"""The run folder that chains the chapters: the paths they agree on, figures saved as PNG, and
numbers recorded by section.

    runs/<profile>/params.json        what each chapter ran with
    runs/<profile>/split.csv          the patient-level split (chapter 01)
    runs/<profile>/models/<name>.keras + <name>.json   models and their cards
    runs/<profile>/metrics.json       numbers the chapters report, by section
    runs/<profile>/figures/           every figure, as PNG
    runs/<profile>/notebooks/         the executed chapters
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from idc_utils.core.paths import project_root


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
