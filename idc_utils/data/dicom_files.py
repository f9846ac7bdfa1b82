"""DICOM files at the bottom of the stack: the identifiers the project uses (SOP classes, transfer
syntax), pydicom imported with a clear error, and a single-frame DICOM image decoded like a PNG
(:func:`idc_utils.data.decode.decode_image` calls it). Nothing here touches a network."""

from __future__ import annotations

import io

import numpy as np

from idc_utils.core.errors import DicomError, PatchDecodeError

WSI_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.6"  # VL Whole Slide Microscopy Image Storage


SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"  # Segmentation Storage


EXPLICIT_VR_LITTLE = "1.2.840.10008.1.2.1"


DICOM_EXTRAS_HINT = "install the DICOM extras: pip install -e '.[dicom]'"


def import_pydicom():
    try:
        import pydicom
    except ImportError:  # pragma: no cover - the extra is part of every install target
        raise DicomError(f"reading DICOM needs pydicom: {DICOM_EXTRAS_HINT}") from None
    return pydicom


def decode_dicom_image(data: bytes, max_pixels: int) -> tuple[np.ndarray, list[str]]:
    """A single-frame DICOM image as uint8 RGB, with notes, or
    :class:`~idc_utils.core.errors.PatchDecodeError` saying why not (no pixel data, truncated,
    compressed without a decoder, several frames...)."""
    pydicom = import_pydicom()
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, ValueError, OSError) as exc:
        raise PatchDecodeError(f"unreadable DICOM file ({exc})") from None
    if "PixelData" not in ds:
        raise PatchDecodeError(
            f"DICOM file without pixel data (SOP class {sop_name(ds)}); export the image itself"
        )
    rows, cols = int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if rows * cols > max_pixels:
        raise PatchDecodeError(
            f"image is {cols}x{rows} = {rows * cols:,} pixels, above the {max_pixels:,} limit"
        )
    syntax = ds.file_meta.get("TransferSyntaxUID", "?")
    try:
        arr = ds.pixel_array
    except Exception as exc:  # pydicom raises several types for missing decoders / bad data
        name = getattr(syntax, "name", syntax)
        raise PatchDecodeError(
            f"DICOM pixel data cannot be decoded (transfer syntax {name}: {exc}). Export the "
            "image uncompressed (explicit VR little endian) or as JPEG baseline"
        ) from None
    notes = [f"DICOM {sop_name(ds)}"]
    if frames > 1:
        if frames > 1 and ds.get("SOPClassUID") == WSI_SOP_CLASS:
            raise PatchDecodeError(
                "a whole-slide DICOM instance (tiled frames); open the slide with the DICOMweb "
                "tab or idc_utils.serving.dicomweb.open_slide"
            )
        arr = arr[0]
        notes.append(f"first of {frames} frames used")
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric.startswith("YBR"):
        from pydicom.pixels import convert_color_space

        arr = convert_color_space(arr, photometric, "RGB")
        notes.append(f"converted from {photometric}")
    arr = np.asarray(arr)
    if arr.dtype != np.uint8:
        top = float(2 ** int(ds.get("BitsStored", 8)) - 1)
        arr = np.clip(arr.astype(np.float64) / top * 255 + 0.5, 0, 255).astype(np.uint8)
        notes.append(f"scaled from {int(ds.get('BitsStored', 16))} bits")
    if arr.ndim == 2:
        if photometric == "MONOCHROME1":
            arr = 255 - arr
        arr = np.repeat(arr[..., None], 3, axis=2)
        notes.append("converted from grayscale")
    return np.ascontiguousarray(arr[..., :3]), notes


def sop_name(ds) -> str:
    uid = ds.get("SOPClassUID")
    return getattr(uid, "name", None) or str(uid or "unknown")
