"""A chapter's parameters: the papermill ``parameters`` cell resolved against a profile.

Every chapter has one ``parameters`` cell: ``profile`` plus the keys it uses, all ``None`` by
default. :func:`chapter_params` fills each ``None`` from the profile in
``idc_utils/profiles.yml``, keeps what papermill passed, records the result in
``runs/<profile>/params.json`` and returns it, with the run folder
(:class:`idc_utils.chapters.run_folder.Run`) the chapters read and write their artifacts in.
"""

from __future__ import annotations

import ast
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any

from idc_utils.chapters.profiles import RESERVED, profile_params
from idc_utils.chapters.run_folder import Run, experiment_dir, seed_experiment
from idc_utils.core.paths import display_path
from idc_utils.core.seeding import seed_everything


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


def injected_unknown(namespace: dict) -> tuple[list[str], list[str]]:
    """Names that papermill injected (``-p KEY VALUE``) but the chapter's ``parameters`` cell does
    not declare, and the names it declares. Read from the kernel's input history: papermill puts
    its ``# Parameters`` cell right after the chapter's own. Empty lists outside papermill."""
    cells = [c for c in namespace.get("In", []) if isinstance(c, str)]
    for k in range(len(cells) - 1, 0, -1):
        if cells[k].lstrip().startswith("# Parameters"):
            try:
                injected, declared = assigned_names(cells[k]), assigned_names(cells[k - 1])
            except SyntaxError:  # not a parameters cell after all
                continue
            if declared:
                return [n for n in injected if n not in declared], declared
    return [], []


def assigned_names(code: str) -> list[str]:
    """The names a cell assigns at its top level, in order (a ``parameters`` cell's keys)."""
    tree = ast.parse(code)
    return [
        t.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    ]


def chapter_params(
    chapter: str, namespace: dict | None = None, *, profile: str | None = None, **given: Any
) -> ChapterParams:
    """Resolve a chapter's parameters: what the caller (papermill) set wins, the profile fills
    every ``None``. Records them in the run folder's ``params.json`` under the chapter's name.

    A chapter calls ``chapter_params("05_cnn_baseline", globals())`` right after its parameters
    cell: the parameters are the names of that namespace that the profile (or ``data_dir``,
    ``run_dir``) defines, so each is listed once, in the parameters cell.

    A key papermill passed that the chapter does not declare is an error naming the valid ones.
    Values that differ from the profile make the run an *experiment*: unless ``run_dir`` is
    given, it writes to ``runs/<profile>/experiments/<chapter>-<digest>/``, seeded with the
    book run's artefacts, and never into the book's run."""
    if namespace is not None:
        profile = namespace.get("profile", profile)
        unknown, declared = injected_unknown(namespace)
        if unknown:
            raise ValueError(
                f"{chapter}: unknown parameter {', '.join(map(repr, unknown))}; this chapter's "
                f"parameters are {', '.join(declared)} (its cell tagged 'parameters')"
            )
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
    overrides = {
        k: values[k] for k in sorted(explicit) if k not in RESERVED and values[k] != prof.get(k)
    }
    run = _run_folder(chapter, profile, values.get("run_dir"), overrides)
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


def _run_folder(chapter: str, profile: str, run_dir, overrides: dict) -> Run:
    """The book's run folder; for overrides without a ``run_dir``, the experiment's own."""
    if run_dir or not overrides:
        return Run.for_profile(profile, run_dir)
    book = Run.for_profile(profile).dir
    exp = experiment_dir(book, chapter, overrides)
    seed_experiment(book, exp, overrides)
    shown = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
    print(
        f"Experiment ({shown}): writing to {display_path(exp)}; the book's run "
        f"{display_path(book)} is read, never written."
    )
    return Run(exp, profile)
