"""DICOMweb: a slide found with QIDO-RS, streamed tile by tile with WADO-RS (``wsidicom`` over
``dicomweb-client``), results stored with STOW-RS. The same readers open a slide from a folder of
DICOM files.

The path a hospital would take, on a real server (:mod:`idc_utils.serving.orthanc` starts one
here): the slide is written as DICOM (:mod:`idc_utils.data.dicom_slide`) and **stored**; it is
**found** among the server's series; the level whose pixel spacing matches the training patches is
chosen and **streamed**; the map computed from it is stored back as a Segmentation
(:mod:`idc_utils.serving.segmentation`). Research and teaching software, not a medical device."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from idc_utils.core.constants import PATCH_SIZE, TRAINING_PIXEL_SPACING_MM
from idc_utils.core.errors import DicomError
from idc_utils.data.dicom_files import EXPLICIT_VR_LITTLE, WSI_SOP_CLASS, import_pydicom

SPACING_TOLERANCE = 0.15  # a level within 15% of the training spacing is used as it is


def _web_client_class():
    """wsidicom's DICOMweb client, with frames handed over as ``bytes``."""
    from wsidicom import WsiDicomWebClient

    class _BytesFramesClient(WsiDicomWebClient):
        """dicomweb-client returns frames as ``bytearray``, which pydicom's uncompressed decoder
        takes for a list of values; wsidicom gets ``bytes``."""

        def get_frames(self, *args, **kwargs):
            return (bytes(f) for f in super().get_frames(*args, **kwargs))

    return _BytesFramesClient


def connect(url: str, timeout: float = 10.0):
    """A DICOMweb client for ``url`` (e.g. ``http://127.0.0.1:8042/dicom-web``), checked with one
    QIDO request, or :class:`~idc_utils.core.errors.DicomError` saying the server cannot be reached
    or refused."""
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

    pydicom = import_pydicom()
    items = [d if hasattr(d, "SOPInstanceUID") else pydicom.dcmread(d) for d in datasets]
    try:
        client.store_instances(items)
    except requests.exceptions.HTTPError as exc:
        code = exc.response.status_code if exc.response is not None else "?"
        raise DicomError(
            f"the server refused to store {len(items)} instance(s) (HTTP {code})"
        ) from None
    return len(items)


def tag_value(item: dict, tag: str, default=""):
    """The first value of ``tag`` in a DICOM JSON item (a person's name as text)."""
    values = item.get(tag, {}).get("Value") or [default]
    v = values[0]
    return v.get("Alphabetic", "") if isinstance(v, dict) else v


def keyword_for(tag: str) -> str:
    """The keyword of a tag as DICOM JSON writes it: ``"00080060"`` -> ``"Modality"`` (the tag
    itself when the dictionary does not know it, e.g. a private tag)."""
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(int(tag, 16)) or tag


def by_keyword(item: dict) -> dict:
    """A DICOM JSON item (what QIDO-RS and WADO-RS metadata return, keyed by tags such as
    ``"0020000E"``) keyed by keywords (``"SeriesInstanceUID"``), each with its first value;
    sequences and bulk data (pixels stay on the server) left out."""
    return {
        keyword_for(tag): tag_value(item, tag)
        for tag, element in item.items()
        if element.get("vr") != "SQ" and element.get("Value")
    }


#: the columns of :func:`server_contents`, one row per instance
CONTENT_KEYWORDS = (
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "SOPInstanceUID",
    "InstanceNumber",
    "TotalPixelMatrixColumns",
    "TotalPixelMatrixRows",
    "Columns",
    "Rows",
    "NumberOfFrames",
)


def server_contents(client, patient_id: str | None = None):
    """What a DICOMweb server holds (for one patient, or all), one row per instance with the
    :data:`CONTENT_KEYWORDS`: the studies and their series found with QIDO-RS, each series'
    instances read with WADO-RS metadata (their attributes without pixels). DICOM's hierarchy is
    in the rows: a patient has studies, a study has series, a series has instances."""
    import pandas as pd

    rows = []
    filters = {"PatientID": str(patient_id)} if patient_id is not None else {}
    for study in client.search_for_studies(search_filters=filters):
        study_uid = tag_value(study, "0020000D")
        for series in client.search_for_series(study_uid):
            series_uid = tag_value(series, "0020000E")
            for instance in client.retrieve_series_metadata(study_uid, series_uid):
                named = by_keyword(instance)
                rows.append({k: named.get(k) for k in CONTENT_KEYWORDS})
    table = pd.DataFrame(rows, columns=list(CONTENT_KEYWORDS))
    table["NumberOfFrames"] = table["NumberOfFrames"].fillna(1).astype(int)
    return table.sort_values(["PatientID", "Modality", "InstanceNumber"], ignore_index=True)


def find_series(client, modality: str | None = "SM") -> list[dict]:
    """QIDO-RS: the series on the server (slides by default), newest study first, as plain
    dicts (study_uid, series_uid, patient_id, modality, description, instances)."""
    filters = {"Modality": modality} if modality else {}
    fields = ["PatientID", "SeriesDescription", "NumberOfSeriesRelatedInstances", "StudyDate"]
    found = client.search_for_series(search_filters=filters, fields=fields)
    rows = [
        {
            "study_uid": tag_value(s, "0020000D"),
            "series_uid": tag_value(s, "0020000E"),
            "patient_id": str(tag_value(s, "00100020")),
            "modality": tag_value(s, "00080060"),
            "description": tag_value(s, "0008103E"),
            "instances": int(tag_value(s, "00201209", 0) or 0),
        }
        for s in found
    ]
    return sorted(rows, key=lambda r: (r["patient_id"], r["series_uid"]))


def open_slide(source, study_uid: str | None = None, series_uid: str | None = None):
    """A ``wsidicom.WsiDicom`` from a folder of DICOM files, or from a DICOMweb client/address with
    the study and series. :class:`~idc_utils.core.errors.DicomError` when it is not a whole slide.
    """
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
    """The pixel spacing of each level of a slide, in millimetres."""
    return [float(lv.pixel_spacing.width) for lv in slide.levels]


def choose_level(
    slide, target_mm: float = TRAINING_PIXEL_SPACING_MM, tolerance: float = SPACING_TOLERANCE
) -> int:
    """The index of the level whose pixel spacing is closest to the training patches' (within
    ``tolerance``, relative), or :class:`~idc_utils.core.errors.DicomError` listing what the slide
    has."""
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
    pydicom = import_pydicom()
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
                study_uid, series_uid, tag_value(inst, "00080018")
            )
            meta.pop("7FE00010", None)  # the pixels stay on the server
            ds = pydicom.Dataset.from_json(meta)
            if "TotalPixelMatrixColumns" in ds and matches(ds):
                return ds
    raise DicomError(f"no instance of the series holds level {level} ({size[0]}x{size[1]})")


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
