"""Kaggle patch names: ``<patient>_idx5_x<X>_y<Y>_class<C>.png`` carries the patient, the patch's
position on the slide and its label."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

PATCH_NAME_RE = re.compile(
    r"^(?P<patient>\d+)_idx5_x(?P<x>\d+)_y(?P<y>\d+)_class(?P<label>[01])\.png$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PatchName:
    patient_id: str
    x: int
    y: int
    label: int


def parse_patch_name(name: str) -> PatchName | None:
    """Parse ``10253_idx5_x1001_y1051_class0.png``; ``None`` when the name is not of that form."""
    m = PATCH_NAME_RE.match(PurePosixPath(name).name)
    if not m:
        return None
    return PatchName(m["patient"], int(m["x"]), int(m["y"]), int(m["label"]))
