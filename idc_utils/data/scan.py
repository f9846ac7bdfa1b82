"""List and check every file of a dataset before any pixel is decoded: Kaggle names, label and
patient folders, duplicates. What is not used goes into a problems table with the fix; nothing
is dropped silently."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from idc_utils.core.errors import DataError
from idc_utils.data.names import parse_patch_name
from idc_utils.data.sources import HOW_TO_GET_DATA, PatchSource, open_source

PROBLEM_COLUMNS = ["path", "problem", "fix"]


FIX_NAME = (
    "Kaggle patch names look like 10253_idx5_x1001_y1051_class0.png; rename the file "
    "or move it out of the dataset folder"
)


FIX_LABEL = (
    "the folder (0 = IDC-, 1 = IDC+) and the _class<C> in the name must agree: check which "
    "is right and move or rename the file"
)


FIX_PATIENT = "move the file into the folder of the patient its name gives"


FIX_DUPLICATE = (
    "nothing to do if the copies are the same patch (the Kaggle zip holds two copies); first copy"
)


FIX_NOT_PNG = "only .png patches are read; remove the file or ignore this line"


@dataclass
class ScanResult:
    """What a dataset folder holds, before any pixel is decoded."""

    root: Path
    files: pd.DataFrame  # the usable patch files: path, patient_id, x, y, label, bytes
    problems: pd.DataFrame  # files not used: path, problem, fix
    files_seen: int
    listing: list  # every file seen: (relative path, size, change stamp), sorted

    @property
    def files_digest(self) -> str:
        """A short digest of the usable files (names, labels, sizes), known before any pixel is
        decoded: what the book's rebuild tracking compares. The data's *fingerprint* is the
        decoded dataset's (:attr:`idc_utils.data.dataset.Dataset.fingerprint`)."""
        return table_digest(self.files)


def scan(source: str | os.PathLike | PatchSource | None = None) -> ScanResult:
    """List and check every file of a dataset: names, label folders, duplicates.

    Raises :class:`~idc_utils.core.errors.DataError` when nothing usable is found (empty folder,
    wrong folder)."""
    src = open_source(source)
    listing = sorted(src.list_files())  # one order for every source and file system
    rows, problems = [], []
    seen: dict[str, str] = {}
    for rel, size, _stamp in listing:
        problem = check_file(rel, seen)
        if problem:
            problems.append((rel, *problem))
            continue
        parsed = parse_patch_name(rel)
        seen[PurePosixPath(rel).name] = rel
        rows.append((rel, parsed.patient_id, parsed.x, parsed.y, parsed.label, size))
    files = pd.DataFrame(rows, columns=["path", "patient_id", "x", "y", "label", "bytes"])
    files = files.astype({"patient_id": str, "x": int, "y": int, "label": int, "bytes": int})
    if files.empty:
        if not listing:
            raise DataError(f"Dataset folder {src.root} is empty.\n" + HOW_TO_GET_DATA)
        examples = ", ".join(p for p, *_ in problems[:3])
        raise DataError(
            f"No Kaggle-style patches found in {src.root} ({len(listing)} files, e.g. "
            f"{examples}). Expected <patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png. Is "
            "this the IDC_regular_ps50_idx5 folder?\n" + HOW_TO_GET_DATA
        )
    problems_table = pd.DataFrame(problems, columns=PROBLEM_COLUMNS)
    return ScanResult(src.root, files, problems_table, len(listing), listing)


def check_file(rel: str, seen: dict[str, str]) -> tuple[str, str] | None:
    """Why the file at ``rel`` cannot be used as a patch, as ``(problem, fix)``; ``None`` when
    it can. ``seen`` maps the names already used to their paths (duplicates)."""
    name = PurePosixPath(rel).name
    parts = PurePosixPath(rel).parts
    if name.startswith(".") or "__MACOSX" in parts:
        return "hidden or system file, ignored", FIX_NOT_PNG
    if not name.lower().endswith(".png"):
        return "not a PNG, ignored", FIX_NOT_PNG
    parsed = parse_patch_name(name)
    if parsed is None:
        return "file name does not match the Kaggle pattern", FIX_NAME
    in_label_folder = len(parts) >= 2 and parts[-2] in ("0", "1")
    if in_label_folder and int(parts[-2]) != parsed.label:
        return f"label folder {parts[-2]} disagrees with name class{parsed.label}", FIX_LABEL
    patient_folder = parts[-3] if len(parts) >= 3 else ""
    if in_label_folder and patient_folder.isdigit() and patient_folder != parsed.patient_id:
        return (
            f"patient folder {patient_folder} disagrees with name patient {parsed.patient_id}",
            FIX_PATIENT,
        )
    if name in seen:
        return "duplicate patch name, first copy used", f"{FIX_DUPLICATE}: {seen[name]}"
    return None


def table_digest(df: pd.DataFrame) -> str:
    """A short digest of a patch table's names, labels, file sizes and (once decoded) patch
    sizes: the same files give the same digest, on any machine."""
    cols = [c for c in ("path", "label", "bytes", "width", "height") if c in df.columns]
    h = hashlib.sha256()
    for row in df[cols].astype(str).itertuples(index=False):
        h.update(("\t".join(row) + "\n").encode())
    return h.hexdigest()[:16]
