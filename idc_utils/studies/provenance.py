"""Stored studies (``book/data/*.json``, too long for a build): where each was measured, and
whether on the split of the run that shows it."""

from __future__ import annotations

import pandas as pd

from idc_utils.data.split import assignment_digest


def study_provenance(study: dict, split_df: pd.DataFrame, tool: str) -> str:
    """Where a stored study (``book/data/*.json``) was measured, and whether on the split of the
    run that shows it (by :func:`idc_utils.data.split.assignment_digest`)."""
    # studies stored before the rename call the digest "patients_fingerprint"
    stored = study.get("assignment_digest", study.get("patients_fingerprint"))
    same = stored == assignment_digest(split_df)
    when = f" ({study['finished'][:10]})" if study.get("finished") else ""
    return (
        f"measured by {tool} on {study['machine']}{when}, {study['val_patients']} validation and "
        f"{study['test_patients']} test patients, "
        + (
            "this run's split"
            if same
            else "another split than this run's (read it for the size of each effect, not for "
            "this run's numbers)"
        )
    )
