"""DICOM files and DICOMweb: whole-slide images in, an IDC probability map out, and back.

The path a hospital would take, on a real server (:mod:`idc_utils.orthanc`):

1. **write** a rebuilt patient region (chapter 1's mosaic) as a pyramidal *VL Whole Slide
   Microscopy Image* series: tiled frames (``TILED_FULL``), one instance per level, each level
   half the resolution of the one above; the finest level has the training patches' pixel size;
2. **store** it with STOW-RS, **find** it with QIDO-RS, **stream** it tile by tile with WADO-RS
   (``wsidicom`` over ``dicomweb-client``);
3. **classify**: choose the level whose pixel spacing matches the training patches, read it,
   tile it on the 50-pixel grid and score the tissue tiles (:mod:`idc_utils.slides`, the same
   tiling as the app's Tissue tab);
4. **store back** the probability map as a FRACTIONAL *Segmentation* (``highdicom``) on the
   slide's frame of reference, which slide viewers overlay on the slide; read it back with
   QIDO/WADO and check it.

Single-frame DICOM patches (``.dcm``) are decoded like PNGs (:func:`decode_dicom_image`).

Research and teaching software, not a medical device.
"""

from __future__ import annotations

import datetime as _dt
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .data import PATCH_SIZE, PatchDecodeError

# The Kaggle patches were cut from slides scanned at 40x and downsampled to 2.5x, about 4 um per
# pixel (Janowczyk & Madabhushi 2016). A slide is read at the level closest to that.
TRAINING_PIXEL_SPACING_MM = 0.004
SPACING_TOLERANCE = 0.15  # a level within 15% of the training spacing is used as it is

WSI_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.6"  # VL Whole Slide Microscopy Image Storage
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"  # Segmentation Storage
EXPLICIT_VR_LITTLE = "1.2.840.10008.1.2.1"
# Orthanc's DICOMweb plugin answers frame requests only for an explicit transfer syntax
FRAME_MEDIA_TYPES = (("application/octet-stream", EXPLICIT_VR_LITTLE),)
DICOM_EXTRAS_HINT = "install the DICOM extras: pip install -e '.[dicom]'"


class DicomError(ValueError):
    """A DICOM object, series or server the project cannot use; the message names it and says
    what to do."""


def _pydicom():
    try:
        import pydicom
    except ImportError:  # pragma: no cover - the extra is part of every install target
        raise DicomError(f"reading DICOM needs pydicom: {DICOM_EXTRAS_HINT}") from None
    return pydicom


# ------------------------------------------------------------------------ single-frame patches


def is_dicom(data: bytes) -> bool:
    """A DICOM Part 10 file: 128-byte preamble, then ``DICM``."""
    return len(data) >= 132 and data[128:132] == b"DICM"


def decode_dicom_image(data: bytes, max_pixels: int) -> tuple[np.ndarray, list[str]]:
    """A single-frame DICOM image as uint8 RGB, with notes, or :class:`PatchDecodeError` saying
    why not (no pixel data, truncated, compressed without a decoder, several frames...)."""
    pydicom = _pydicom()
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, ValueError, OSError) as exc:
        raise PatchDecodeError(f"unreadable DICOM file ({exc})") from None
    if "PixelData" not in ds:
        raise PatchDecodeError(
            f"DICOM file without pixel data (SOP class {_sop_name(ds)}); export the image itself"
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
    notes = [f"DICOM {_sop_name(ds)}"]
    if frames > 1:
        if frames > 1 and ds.get("SOPClassUID") == WSI_SOP_CLASS:
            raise PatchDecodeError(
                "a whole-slide DICOM instance (tiled frames); open the slide with the DICOMweb "
                "tab or idc_utils.dicom.open_slide"
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


def _sop_name(ds) -> str:
    uid = ds.get("SOPClassUID")
    return getattr(uid, "name", None) or str(uid or "unknown")


# ------------------------------------------------------------------------------ writing slides


@dataclass
class SlideSeries:
    """A written (or found) slide: its identifiers and the instances of its levels."""

    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    patient_id: str
    paths: list[Path] = field(default_factory=list)
    levels: list[dict] = field(default_factory=list)  # size_px and spacing_mm per level


def _downsample(img: np.ndarray) -> np.ndarray:
    """Half the size, each pixel the mean of a 2x2 block (white beyond the edge)."""
    h, w = img.shape[:2]
    hp, wp = h + h % 2, w + w % 2
    padded = np.full((hp, wp, 3), 255, np.uint16)
    padded[:h, :w] = img
    out = padded.reshape(hp // 2, 2, wp // 2, 2, 3).sum(axis=(1, 3))
    return ((out + 2) // 4).astype(np.uint8)


def _frames(img: np.ndarray, tile: int) -> tuple[bytes, int]:
    """Tiles of ``img`` in row-major order (TILED_FULL), padded with white, as raw bytes."""
    from .slides import grid_tiles

    frames = grid_tiles(img, tile)
    return np.ascontiguousarray(frames).tobytes(), len(frames)


def _code(value: str, scheme: str, meaning: str):
    from pydicom.dataset import Dataset

    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return c


def write_slide(
    image: np.ndarray,
    out_dir: str | Path,
    *,
    patient_id: str,
    levels: int = 3,
    tile: int = 256,
    pixel_spacing_mm: float = TRAINING_PIXEL_SPACING_MM,
    study_uid: str | None = None,
    series_description: str = "IDC-book rebuilt patient region (H&E)",
) -> SlideSeries:
    """Write ``image`` (uint8 RGB) as a VL Whole Slide Microscopy series of ``levels``
    instances (level ``k`` at ``pixel_spacing_mm * 2**k``), uncompressed tiled frames
    (explicit VR little endian), into ``out_dir``. Returns the series' identifiers."""
    pydicom = _pydicom()
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import generate_uid

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise DicomError(f"a slide is uint8 RGB (H, W, 3), not {image.dtype} {image.shape}")
    if levels < 1 or tile < 16:
        raise DicomError("a slide needs at least one level and tiles of at least 16 pixels")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now()
    series = SlideSeries(
        study_uid=study_uid or generate_uid(),
        series_uid=generate_uid(),
        frame_of_reference_uid=generate_uid(),
        patient_id=str(patient_id),
    )
    dim_org_uid = generate_uid()
    pyramid_uid = generate_uid()
    level_img = image
    for k in range(levels):
        if k:
            level_img = _downsample(level_img)
        h, w = level_img.shape[:2]
        spacing = pixel_spacing_mm * 2**k
        data, n_frames = _frames(level_img, tile)
        sop_uid = generate_uid()

        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = WSI_SOP_CLASS
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = EXPLICIT_VR_LITTLE
        ds = Dataset()
        ds.file_meta = meta
        ds.preamble = b"\0" * 128
        ds.SOPClassUID, ds.SOPInstanceUID = WSI_SOP_CLASS, sop_uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID = series.study_uid, series.series_uid
        ds.FrameOfReferenceUID = series.frame_of_reference_uid
        ds.PositionReferenceIndicator = "SLIDE_CORNER"
        ds.Modality = "SM"
        ds.PatientID = series.patient_id
        ds.PatientName = f"IDC-Kaggle^{series.patient_id}"
        ds.PatientBirthDate, ds.PatientSex = "", ""
        ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "1", "", ""
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
        ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
        ds.StudyDescription = "IDC-book teaching slide"
        ds.SeriesDescription = series_description
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.Manufacturer = "idc-book"
        ds.ManufacturerModelName = "mosaic of Kaggle IDC patches"
        ds.DeviceSerialNumber = "0"
        ds.SoftwareVersions = "idc-book"
        ds.ContentQualification = "RESEARCH"
        ds.BurnedInAnnotation = "NO"
        ds.SpecimenLabelInImage = "NO"
        ds.FocusMethod = "AUTO"
        ds.ExtendedDepthOfField = "NO"
        ds.VolumetricProperties = "VOLUME"
        ds.LossyImageCompression = "00"
        # level 0 is rebuilt from patches (DERIVED); lower levels are resampled from it
        ds.ImageType = ["DERIVED", "PRIMARY", "VOLUME", "NONE" if k == 0 else "RESAMPLED"]
        ds.PyramidUID = pyramid_uid
        ds.ContainerIdentifier = f"{series.patient_id}-slide"
        ds.IssuerOfTheContainerIdentifierSequence = Sequence()
        ds.ContainerTypeCodeSequence = Sequence([_code("433466003", "SCT", "Microscope slide")])
        spec = Dataset()
        spec.SpecimenIdentifier = f"{series.patient_id}-specimen"
        spec.SpecimenUID = generate_uid(entropy_srcs=[series.patient_id, "specimen"])
        spec.IssuerOfTheSpecimenIdentifierSequence = Sequence()
        spec.SpecimenPreparationSequence = Sequence()
        ds.SpecimenDescriptionSequence = Sequence([spec])
        optical = Dataset()
        optical.OpticalPathIdentifier = "1"
        optical.IlluminationTypeCodeSequence = Sequence(
            [_code("111744", "DCM", "Brightfield illumination")]
        )
        optical.IlluminationColorCodeSequence = Sequence(
            [_code("414298005", "SCT", "Full Spectrum")]
        )
        ds.OpticalPathSequence = Sequence([optical])
        ds.NumberOfOpticalPaths = 1
        ds.ImageOrientationSlide = [0, -1, 0, -1, 0, 0]
        origin = Dataset()
        origin.XOffsetInSlideCoordinateSystem = 0
        origin.YOffsetInSlideCoordinateSystem = 0
        ds.TotalPixelMatrixOriginSequence = Sequence([origin])
        ds.DimensionOrganizationType = "TILED_FULL"
        org = Dataset()
        org.DimensionOrganizationUID = dim_org_uid
        ds.DimensionOrganizationSequence = Sequence([org])
        ds.TotalPixelMatrixColumns, ds.TotalPixelMatrixRows = w, h
        ds.TotalPixelMatrixFocalPlanes = 1
        ds.NumberOfFocalPlanes = 1
        ds.ImagedVolumeWidth = w * spacing
        ds.ImagedVolumeHeight = h * spacing
        ds.ImagedVolumeDepth = 0.001
        shared = Dataset()
        measures = Dataset()
        measures.PixelSpacing = [spacing, spacing]
        measures.SliceThickness = 0.001
        measures.SpacingBetweenSlices = 0.001
        shared.PixelMeasuresSequence = Sequence([measures])
        frame_type = Dataset()
        frame_type.FrameType = list(ds.ImageType)
        shared.WholeSlideMicroscopyImageFrameTypeSequence = Sequence([frame_type])
        path_id = Dataset()
        path_id.OpticalPathIdentifier = "1"
        shared.OpticalPathIdentificationSequence = Sequence([path_id])
        ds.SharedFunctionalGroupsSequence = Sequence([shared])
        ds.Rows = ds.Columns = tile
        ds.NumberOfFrames = n_frames
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelRepresentation = 0
        ds.PixelData = data
        path = out_dir / f"level-{k}.dcm"
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        series.paths.append(path)
        series.levels.append({"size_px": (w, h), "spacing_mm": spacing})
    return series


# ------------------------------------------------------------------------------ DICOMweb


def _web_client_class():
    from wsidicom import WsiDicomWebClient

    class _BytesFramesClient(WsiDicomWebClient):
        """dicomweb-client returns frames as ``bytearray``, which pydicom's uncompressed decoder
        takes for a list of values; wsidicom gets ``bytes``."""

        def get_frames(self, *args, **kwargs):
            return (bytes(f) for f in super().get_frames(*args, **kwargs))

    return _BytesFramesClient


def connect(url: str, timeout: float = 10.0):
    """A DICOMweb client for ``url`` (e.g. ``http://127.0.0.1:8042/dicom-web``), checked with
    one QIDO request, or :class:`DicomError` saying the server cannot be reached or refused."""
    import requests
    from dicomweb_client.api import DICOMwebClient

    url = (url or "").strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise DicomError(
            f"{url or 'an empty address'!r} is not a DICOMweb address; give one like "
            "http://127.0.0.1:8042/dicom-web (start a local server with "
            "`python -m idc_utils dicom serve`)"
        )
    # a large read timeout: storing or streaming a slide level takes a while
    client = DICOMwebClient(url, timeout=(timeout, max(60.0, timeout)))
    client.set_http_retry_params(retry=False)  # the probe: an absent server answers at once
    try:
        client.search_for_studies(limit=1)
    except requests.exceptions.ConnectionError:
        raise DicomError(
            f"no DICOMweb server answers at {url}: is it running? (start a local one with "
            "`python -m idc_utils dicom serve`)"
        ) from None
    except requests.exceptions.Timeout:
        raise DicomError(
            f"the DICOMweb server at {url} did not answer within {timeout:.0f} s"
        ) from None
    except requests.exceptions.HTTPError as exc:
        code = exc.response.status_code if exc.response is not None else "?"
        raise DicomError(
            f"the server at {url} refused a DICOMweb search (HTTP {code}); check the address "
            "(it ends with the DICOMweb root, e.g. /dicom-web) and your access rights"
        ) from None
    # later requests retry a busy server (429, 503, ...) a few times, quickly
    client.set_http_retry_params(retry=True, max_attempts=3, wait_exponential_multiplier=250)
    return client


def store(client, datasets) -> int:
    """STOW-RS: send DICOM datasets (or paths to files) to the server; the number sent."""
    import requests

    pydicom = _pydicom()
    items = [d if hasattr(d, "SOPInstanceUID") else pydicom.dcmread(d) for d in datasets]
    try:
        client.store_instances(items)
    except requests.exceptions.HTTPError as exc:
        code = exc.response.status_code if exc.response is not None else "?"
        raise DicomError(
            f"the server refused to store {len(items)} instance(s) (HTTP {code})"
        ) from None
    return len(items)


def _value(item: dict, tag: str, default=""):
    values = item.get(tag, {}).get("Value") or [default]
    v = values[0]
    return v.get("Alphabetic", "") if isinstance(v, dict) else v


def find_series(client, modality: str | None = "SM") -> list[dict]:
    """QIDO-RS: the series on the server (slides by default), newest study first, as plain
    dicts (study_uid, series_uid, patient_id, modality, description, instances)."""
    filters = {"Modality": modality} if modality else {}
    fields = ["PatientID", "SeriesDescription", "NumberOfSeriesRelatedInstances", "StudyDate"]
    found = client.search_for_series(search_filters=filters, fields=fields)
    rows = [
        {
            "study_uid": _value(s, "0020000D"),
            "series_uid": _value(s, "0020000E"),
            "patient_id": str(_value(s, "00100020")),
            "modality": _value(s, "00080060"),
            "description": _value(s, "0008103E"),
            "instances": int(_value(s, "00201209", 0) or 0),
        }
        for s in found
    ]
    return sorted(rows, key=lambda r: (r["patient_id"], r["series_uid"]))


def open_slide(source, study_uid: str | None = None, series_uid: str | None = None):
    """A ``wsidicom.WsiDicom`` from a folder of DICOM files, or from a DICOMweb client/address
    with the study and series. :class:`DicomError` when it is not a whole slide."""
    from wsidicom import WsiDicom
    from wsidicom.errors import WsiDicomNotFoundError

    try:
        if isinstance(source, (str, Path)) and not str(source).startswith(("http:", "https:")):
            folder = Path(source)
            if not folder.is_dir():
                raise DicomError(f"{folder}: not a folder of DICOM files")
            return WsiDicom.open(folder)
        client = connect(source) if isinstance(source, str) else source
        if not (study_uid and series_uid):
            raise DicomError("opening a slide over DICOMweb needs its study and series UIDs")
        with warnings.catch_warnings():  # the metadata names the pixels by URI; not needed
            warnings.filterwarnings("ignore", message="No bulk data URI handler")
            return WsiDicom.open_web(
                _web_client_class()(client),
                study_uid,
                series_uid,
                requested_transfer_syntax=EXPLICIT_VR_LITTLE,
            )
    except WsiDicomNotFoundError as exc:
        where = series_uid or source
        raise DicomError(
            f"{where}: no whole-slide image found ({exc}). A slide is a series of VL Whole Slide "
            "Microscopy instances (modality SM)"
        ) from None
    except DicomError:
        raise
    except Exception as exc:  # wsidicom raises many types for series it cannot use
        where = series_uid or source
        raise DicomError(f"{where}: cannot be opened as a whole slide ({exc})") from None


def level_spacings_mm(slide) -> list[float]:
    return [float(lv.pixel_spacing.width) for lv in slide.levels]


def choose_level(
    slide, target_mm: float = TRAINING_PIXEL_SPACING_MM, tolerance: float = SPACING_TOLERANCE
) -> int:
    """The index of the level whose pixel spacing is closest to the training patches' (within
    ``tolerance``, relative), or :class:`DicomError` listing what the slide has."""
    spacings = level_spacings_mm(slide)
    best = int(np.argmin([abs(np.log(s / target_mm)) for s in spacings]))
    if abs(spacings[best] / target_mm - 1) > tolerance:
        have = ", ".join(f"{1000 * s:g}" for s in spacings)
        raise DicomError(
            f"no level of this slide has about {1000 * target_mm:g} um per pixel, the size the "
            f"model was trained at (levels: {have} um per pixel). Resample the slide, or add "
            "that level to its pyramid"
        )
    return best


def read_level(slide, level: int, max_pixels: int = 60_000_000, progress=None) -> np.ndarray:
    """The whole ``level`` as uint8 RGB, streamed in bands of tiles (``progress(fraction)``)."""
    lv = slide.levels[level]
    w, h = int(lv.size.width), int(lv.size.height)
    if w * h > max_pixels:
        raise DicomError(
            f"level {level} is {w}x{h} pixels, above the {max_pixels:,} limit for one read; "
            "analyse a region of the slide"
        )
    out = np.empty((h, w, 3), np.uint8)
    band = max(PATCH_SIZE, int(lv.tile_size.height)) if hasattr(lv, "tile_size") else 256
    for y in range(0, h, band):
        rows = min(band, h - y)
        region = slide.read_region((0, y), lv.level, (w, rows))
        out[y : y + rows] = np.asarray(region.convert("RGB"))
        if progress is not None:
            progress(min(1.0, (y + rows) / h))
    return out


def level_dataset(source, slide, level: int, study_uid=None, series_uid=None):
    """The DICOM attributes (no pixels) of the instance that holds ``level``: what the stored
    result refers to and is aligned with."""
    pydicom = _pydicom()
    lv = slide.levels[level]
    size = (int(lv.size.width), int(lv.size.height))

    def matches(ds) -> bool:
        return (int(ds.TotalPixelMatrixColumns), int(ds.TotalPixelMatrixRows)) == size and str(
            ds.get("SOPClassUID")
        ) == WSI_SOP_CLASS

    if isinstance(source, (str, Path)) and not str(source).startswith(("http:", "https:")):
        for f in sorted(Path(source).iterdir()):
            if f.is_file():
                try:
                    ds = pydicom.dcmread(f, stop_before_pixels=True)
                except Exception:
                    continue
                if "TotalPixelMatrixColumns" in ds and matches(ds):
                    return ds
    else:
        client = connect(source) if isinstance(source, str) else source
        for inst in client.search_for_instances(study_uid, series_uid):
            meta = client.retrieve_instance_metadata(
                study_uid, series_uid, _value(inst, "00080018")
            )
            meta.pop("7FE00010", None)  # the pixels stay on the server
            ds = pydicom.Dataset.from_json(meta)
            if "TotalPixelMatrixColumns" in ds and matches(ds):
                return ds
    raise DicomError(f"no instance of the series holds level {level} ({size[0]}x{size[1]})")


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

    from .slides import per_pixel

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
    from .slides import per_pixel

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

    pydicom = _pydicom()
    if isinstance(source, (str, Path)) and not str(source).startswith(("http:", "https:")):
        ds = pydicom.dcmread(source)
    else:
        client = connect(source) if isinstance(source, str) else source
        found = client.search_for_instances(study_uid, series_uid)
        if not found:
            raise DicomError(f"series {series_uid}: no instance on the server")
        ds = client.retrieve_instance(study_uid, series_uid, _value(found[0], "00080018"))
    if str(ds.get("SOPClassUID")) != SEG_SOP_CLASS:
        raise DicomError(
            f"{ds.get('SOPInstanceUID', source)}: not a Segmentation ({_sop_name(ds)})"
        )
    seg = hd.seg.Segmentation.from_dataset(ds)
    pixels = seg.get_total_pixel_matrix(combine_segments=False)[..., 0]
    return ds, np.asarray(pixels, np.float32)


# ------------------------------------------------------------------------------ analysis


@dataclass
class SlideAnalysis:
    """A slide level read and scored: its pixels, which level, the tile scores and the DICOM
    attributes of the instance the result refers to."""

    image: np.ndarray
    level: int
    spacing_mm: float
    scores: object  # predict.ImageScores
    source: object  # pydicom Dataset of the level (no pixels)
    read_seconds: float

    @property
    def per_tile(self) -> np.ndarray:
        return self.scores.per_tile


@dataclass
class SlideLevel:
    """The level of a slide read for analysis: pixels, index, pixel spacing, the attributes
    of its instance (what a stored result refers to) and how long the read took."""

    image: np.ndarray
    level: int
    spacing_mm: float
    source: object  # pydicom Dataset of the level (no pixels)
    read_seconds: float


def read_slide_level(
    source, study_uid: str | None = None, series_uid: str | None = None, progress=None
) -> SlideLevel:
    """Open a slide (folder or DICOMweb) and read, tile by tile, the level whose pixel size
    matches the training patches (``progress(fraction)``)."""
    import time

    slide = open_slide(source, study_uid, series_uid)
    try:
        level = choose_level(slide)
        t0 = time.perf_counter()
        image = read_level(slide, level, progress=progress)
        read_s = time.perf_counter() - t0
        spacing = level_spacings_mm(slide)[level]
        ds = level_dataset(source, slide, level, study_uid, series_uid)
    finally:
        slide.close()
    return SlideLevel(image, level, spacing, ds, read_s)


class ProgressLine:
    """``progress(stage, fraction)`` printed as one growing line per stage, in steps of 10%:
    readable in a terminal, a notebook and a rendered book alike."""

    def __init__(self, step: float = 0.1, out=None):
        self.step, self.out, self.stage, self.next = step, out, None, 0.0

    def __call__(self, stage: str, fraction: float) -> None:
        import sys

        out = self.out or sys.stdout
        if stage != self.stage:
            if self.stage is not None:
                print(file=out)
            print(f"{stage}:", end="", file=out)
            self.stage, self.next = stage, self.step
        while fraction + 1e-9 >= self.next:
            print(f" {round(100 * self.next)}%", end="", file=out, flush=True)
            self.next += self.step
        if fraction >= 1.0 - 1e-9 and stage == "score":
            print(file=out)


def analyse_slide(
    probabilities,
    source,
    study_uid: str | None = None,
    series_uid: str | None = None,
    *,
    min_tissue: float = 0.25,
    progress=None,
) -> SlideAnalysis:
    """Read the slide's matching level (:func:`read_slide_level`), tile it on the 50-pixel grid
    and score the tissue (:func:`idc_utils.predict.score_image`, the Tissue tab's tiling).
    ``progress(stage, fraction)`` reports reading and scoring."""
    from .predict import score_image

    lv = read_slide_level(
        source, study_uid, series_uid, (lambda f: progress("read", f)) if progress else None
    )
    scores = score_image(
        probabilities, lv.image, min_tissue, (lambda f: progress("score", f)) if progress else None
    )
    return SlideAnalysis(lv.image, lv.level, lv.spacing_mm, scores, lv.source, lv.read_seconds)


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
    return _pydicom().dcmread(path, stop_before_pixels=True)


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
