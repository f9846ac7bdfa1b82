"""A rebuilt patient region written as a DICOM whole slide.

:func:`write_slide` writes a pyramidal *VL Whole Slide Microscopy Image* series: tiled frames
(``TILED_FULL``), one instance per level, each level half the resolution of the one above; the
finest level has the training patches' pixel size. Storing, finding and streaming slides over
the network is :mod:`idc_utils.serving.dicomweb`; reading an instance's attributes,
:mod:`idc_utils.data.dicom_attributes`."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from idc_utils.core.constants import TRAINING_PIXEL_SPACING_MM
from idc_utils.core.errors import DicomError
from idc_utils.data.dicom_files import EXPLICIT_VR_LITTLE, WSI_SOP_CLASS, import_pydicom


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
    from idc_utils.data.mosaic import grid_tiles

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
    pydicom = import_pydicom()
    from pydicom.uid import generate_uid

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise DicomError(f"a slide is uint8 RGB (H, W, 3), not {image.dtype} {image.shape}")
    if levels < 1 or tile < 16:
        raise DicomError("a slide needs at least one level and tiles of at least 16 pixels")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    series = SlideSeries(
        study_uid=study_uid or generate_uid(),
        series_uid=generate_uid(),
        frame_of_reference_uid=generate_uid(),
        patient_id=str(patient_id),
    )
    shared = {
        "now": _dt.datetime.now(),
        "description": series_description,
        "dimension_organization_uid": generate_uid(),
        "pyramid_uid": generate_uid(),
    }
    level_img = image
    for k in range(levels):
        if k:
            level_img = _downsample(level_img)
        spacing = pixel_spacing_mm * 2**k
        ds = _level_instance(series, k, level_img, spacing, tile, shared)
        path = out_dir / f"level-{k}.dcm"
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        h, w = level_img.shape[:2]
        series.paths.append(path)
        series.levels.append({"size_px": (w, h), "spacing_mm": spacing})
    return series


def _level_instance(series: SlideSeries, k: int, img: np.ndarray, spacing, tile, shared):
    """One level of the pyramid as a complete DICOM instance (attributes and pixels)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import generate_uid

    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = WSI_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = EXPLICIT_VR_LITTLE
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.SOPClassUID, ds.SOPInstanceUID = WSI_SOP_CLASS, sop_uid
    _patient_study_series(ds, series, k, shared["now"], shared["description"])
    # level 0 is rebuilt from patches (DERIVED); lower levels are resampled from it
    ds.ImageType = ["DERIVED", "PRIMARY", "VOLUME", "NONE" if k == 0 else "RESAMPLED"]
    ds.PyramidUID = shared["pyramid_uid"]
    _specimen_and_optics(ds, series.patient_id)
    _pixel_matrix(ds, img, spacing, tile, shared["dimension_organization_uid"])
    return ds


def _patient_study_series(ds, series: SlideSeries, k: int, now, description: str) -> None:
    """Who, which study and series, when, and by what device: the identifying attributes."""
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
    ds.SeriesDescription = description
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


def _specimen_and_optics(ds, patient_id: str) -> None:
    """The slide container, the specimen on it and the brightfield optical path."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import generate_uid

    ds.ContainerIdentifier = f"{patient_id}-slide"
    ds.IssuerOfTheContainerIdentifierSequence = Sequence()
    ds.ContainerTypeCodeSequence = Sequence([_code("433466003", "SCT", "Microscope slide")])
    spec = Dataset()
    spec.SpecimenIdentifier = f"{patient_id}-specimen"
    spec.SpecimenUID = generate_uid(entropy_srcs=[patient_id, "specimen"])
    spec.IssuerOfTheSpecimenIdentifierSequence = Sequence()
    spec.SpecimenPreparationSequence = Sequence()
    ds.SpecimenDescriptionSequence = Sequence([spec])
    optical = Dataset()
    optical.OpticalPathIdentifier = "1"
    optical.IlluminationTypeCodeSequence = Sequence(
        [_code("111744", "DCM", "Brightfield illumination")]
    )
    optical.IlluminationColorCodeSequence = Sequence([_code("414298005", "SCT", "Full Spectrum")])
    ds.OpticalPathSequence = Sequence([optical])
    ds.NumberOfOpticalPaths = 1


def _pixel_matrix(ds, img: np.ndarray, spacing: float, tile: int, dim_org_uid: str) -> None:
    """The level's geometry (total pixel matrix, spacing, orientation) and its tiled frames."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    h, w = img.shape[:2]
    data, n_frames = _frames(img, tile)
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
