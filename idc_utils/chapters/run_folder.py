"""The run folder that chains the chapters: the paths they agree on, figures saved as PNG, and
numbers recorded by section.

    runs/<profile>/params.json        what each chapter ran with
    runs/<profile>/split.csv          the patient-level split (chapter 01)
    runs/<profile>/models/<name>.keras + <name>.json   models and their cards
    runs/<profile>/metrics.json       numbers the chapters report, by section
    runs/<profile>/figures/           every figure, as PNG
    runs/<profile>/notebooks/         the executed chapters
    runs/<profile>/experiments/<chapter>-<digest>/   runs with parameter overrides

A run with parameters that differ from the profile is an *experiment*: it gets its own folder,
seeded with copies of the book run's artefacts (:func:`seed_experiment`), so that trying
``papermill 05_cnn_baseline.ipynb out.ipynb -p cnn_epochs 1`` never replaces the book's model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from idc_utils.core.digests import file_sha256
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


#: what an experiment folder does not copy from the book's run: what the book itself renders
#: (notebooks, logs, figures, its record) and other experiments
NOT_COPIED = ("notebooks", "logs", "figures", "experiments", "book.json", "experiment.json")


def overrides_digest(overrides: dict) -> str:
    """8 hex digits naming a set of parameter overrides (the same overrides, the same name)."""
    text = json.dumps(_jsonable(overrides), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def experiment_dir(book_run: Path, label: str, overrides: dict) -> Path:
    """Where a run with ``overrides`` writes: ``<book run>/experiments/<label>-<digest>/``."""
    return Path(book_run) / "experiments" / f"{label}-{overrides_digest(overrides)}"


def seed_experiment(book_run: Path, exp_dir: Path, overrides: dict) -> dict[str, str]:
    """Copy into ``exp_dir`` what the book's run holds for later chapters to read (split,
    models and their cards, metrics, caches), so that the experiment reads the book's upstream
    artefacts and writes only into its own folder: the book's run is never written.

    A file the experiment has since rewritten is kept; a copy it has not touched is refreshed
    when the book's file changed. Returns ``{relative path: sha256}`` of the copies, also kept in
    ``exp_dir/experiment.json``."""
    book_run, exp_dir = Path(book_run), Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    record_path = exp_dir / "experiment.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    copied = dict(record.get("copied", {}))
    for src in sorted(book_run.rglob("*")) if book_run.is_dir() else []:
        rel = src.relative_to(book_run)
        resume_state = any(p.endswith((".work", ".part", ".tmp", ".lock")) for p in rel.parts)
        if not src.is_file() or rel.parts[0] in NOT_COPIED or resume_state:
            continue
        dst = exp_dir / rel
        digest = file_sha256(src)
        if dst.exists():
            mine = file_sha256(dst)
            if mine == digest or copied.get(rel.as_posix()) != mine:
                continue  # already the book's, or rewritten by the experiment: keep it
        dst.parent.mkdir(parents=True, exist_ok=True)
        part = dst.with_name(dst.name + ".part")  # an interrupted copy is never taken as
        shutil.copy2(src, part)  # something the experiment wrote
        part.replace(dst)
        copied[rel.as_posix()] = digest
    record.update(book_run=str(book_run), overrides=_jsonable(overrides), copied=copied)
    tmp = record_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
    tmp.replace(record_path)
    return copied


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
