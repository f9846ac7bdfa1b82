"""A DICOM instance's attributes (a slide level, a Segmentation) read without its pixels, and the
ones a PACS administrator checks first, described in a table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from idc_utils.data.dicom_files import import_pydicom

CHECKED_ATTRIBUTES = (
    "SOPClassUID",
    "Modality",
    "ImageType",
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "ContainerIdentifier",
    "DimensionOrganizationType",
    "TotalPixelMatrixColumns",
    "TotalPixelMatrixRows",
    "Columns",
    "Rows",
    "NumberOfFrames",
    "PixelSpacing",
    "PhotometricInterpretation",
    "SegmentationType",
    "MaximumFractionalValue",
    "ContentQualification",
)


def read_attributes(path: str | Path):
    """A DICOM file's attributes without its pixels."""
    return import_pydicom().dcmread(path, stop_before_pixels=True)


def describe_instance(ds) -> pd.DataFrame:
    """The attributes a PACS administrator checks first, with their values."""

    rows = []
    for key in CHECKED_ATTRIBUTES:
        if key == "PixelSpacing":
            try:
                value = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing
            except (AttributeError, IndexError):
                continue
        elif key in ds:
            value = ds.data_element(key).value
        else:
            continue
        name = getattr(value, "name", "")
        text = (
            "\\".join(str(v) for v in value)
            if isinstance(value, (list, tuple))
            or (hasattr(value, "__iter__") and not isinstance(value, (str, bytes)))
            else str(value)
        )
        rows.append(
            {"attribute": key, "value": text + (f" ({name})" if name and name != text else "")}
        )
    return pd.DataFrame(rows)
