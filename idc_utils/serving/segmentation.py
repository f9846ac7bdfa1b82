"""The probability map as a DICOM Segmentation: written as a FRACTIONAL Segmentation (``highdicom``)
on the slide's frame of reference, which slide viewers overlay on the slide; read back and checked
against what was stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from idc_utils.core.constants import PATCH_SIZE
from idc_utils.core.errors import DicomError
from idc_utils.data.dicom_files import SEG_SOP_CLASS, import_pydicom, sop_name
from idc_utils.serving.dicomweb import connect, tag_value

IDC_PROPERTY = ("82711006", "SCT", "Infiltrating duct carcinoma")


def probability_segmentation(
    source_ds,
    per_tile: np.ndarray,
    step: int = PATCH_SIZE,
    *,
    model_name: str = "idc-book",
    model_version: str = "1",
    series_number: int = 100,
):
    """The per-tile IDC probability map (``per_tile``: grid rows x cols, NaN = not scored) as a
    FRACTIONAL Segmentation of the slide level ``source_ds``: same frame of reference, same
    total pixel matrix, each 50x50 tile one value, tiled frames. Background tiles are 0."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from idc_utils.data.mosaic import per_pixel

    h, w = int(source_ds.TotalPixelMatrixRows), int(source_ds.TotalPixelMatrixColumns)
    grid = np.nan_to_num(np.asarray(per_tile, np.float32), nan=0.0).clip(0, 1)
    rows, cols = -(-h // step), -(-w // step)
    if grid.shape != (rows, cols):
        raise DicomError(
            f"the probability map is {grid.shape[1]}x{grid.shape[0]} tiles but the slide level "
            f"is {cols}x{rows} tiles of {step} pixels"
        )
    pixels = per_pixel(grid, step, (h, w))
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="IDC probability",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=hd.sr.CodedConcept(*IDC_PROPERTY),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=model_name, version=model_version, family=codes.cid7162.ArtificialIntelligence
        ),
    )
    seg = hd.seg.Segmentation(
        source_images=[source_ds],
        pixel_array=pixels[None],
        segmentation_type=hd.seg.SegmentationTypeValues.FRACTIONAL,
        segment_descriptions=[description],
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="idc-book",
        manufacturer_model_name=model_name,
        software_versions=model_version,
        device_serial_number="0",
        series_description="IDC probability per 50x50 tile (research, not for diagnosis)",
        content_description="IDC probability map",
        content_label="IDC_PROBABILITY",
        tile_pixel_array=True,
        omit_empty_frames=False,
        max_fractional_value=255,
    )
    return seg


def segmentation_checks(
    seg_ds, pixels: np.ndarray, level_ds, per_tile: np.ndarray, listed: list[dict]
) -> dict[str, bool]:
    """What to check on a probability map read back from the archive, against the slide level
    it was computed on (``level_ds``): listed by QIDO, the same frame of reference and study,
    the same size, and the values stored (within 8-bit rounding; background 0)."""
    from idc_utils.data.mosaic import per_pixel

    size = (int(level_ds.TotalPixelMatrixRows), int(level_ds.TotalPixelMatrixColumns))
    expected = per_pixel(np.nan_to_num(per_tile), PATCH_SIZE, size)
    same_size = (int(seg_ds.TotalPixelMatrixRows), int(seg_ds.TotalPixelMatrixColumns)) == size
    return {
        "listed by QIDO-RS": seg_ds.SeriesInstanceUID in [r["series_uid"] for r in listed],
        "same frame of reference as the slide": seg_ds.FrameOfReferenceUID
        == level_ds.FrameOfReferenceUID,
        "same study": seg_ds.StudyInstanceUID == level_ds.StudyInstanceUID,
        "same size as the slide level": same_size and pixels.shape == size,
        "values within 8-bit rounding": pixels.shape == size
        and float(np.abs(pixels - expected).max()) <= 0.5 / 255 + 1e-6,
    }


def read_segmentation(source, study_uid=None, series_uid=None):
    """A stored probability map: from a file, or from DICOMweb (the series' single instance,
    WADO-RS). Returns ``(dataset, probabilities (rows, cols) at the slide level's pixels)``."""
    import highdicom as hd

    pydicom = import_pydicom()
    if isinstance(source, (str, Path)) and not str(source).startswith(("http:", "https:")):
        ds = pydicom.dcmread(source)
    else:
        client = connect(source) if isinstance(source, str) else source
        found = client.search_for_instances(study_uid, series_uid)
        if not found:
            raise DicomError(f"series {series_uid}: no instance on the server")
        ds = client.retrieve_instance(study_uid, series_uid, tag_value(found[0], "00080018"))
    if str(ds.get("SOPClassUID")) != SEG_SOP_CLASS:
        raise DicomError(f"{ds.get('SOPInstanceUID', source)}: not a Segmentation ({sop_name(ds)})")
    seg = hd.seg.Segmentation.from_dataset(ds)
    pixels = seg.get_total_pixel_matrix(combine_segments=False)[..., 0]
    return ds, np.asarray(pixels, np.float32)
