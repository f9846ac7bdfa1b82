"""DICOM files: single-frame patches decoded like PNGs, slides written as pyramids."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from dicom_helpers import single_frame, tissue_like
from pydicom.uid import JPEG2000Lossless

from idc_utils.core.errors import PatchDecodeError
from idc_utils.data import dicom_files, dicom_slide
from idc_utils.data.decode import decode_image
from idc_utils.serving import dicomweb


def test_a_slide_is_written_as_a_pyramid_that_wsidicom_reads_back_exactly(tmp_path):
    from wsidicom import WsiDicom

    img = tissue_like(230, 330)
    series = dicom_slide.write_slide(img, tmp_path / "slide", patient_id="14082", levels=3, tile=64)
    assert [lv["spacing_mm"] for lv in series.levels] == [0.004, 0.008, 0.016]
    ds = pydicom.dcmread(series.paths[0], stop_before_pixels=True)
    assert ds.SOPClassUID == dicom_files.WSI_SOP_CLASS and ds.Modality == "SM"
    assert list(ds.ImageType) == ["DERIVED", "PRIMARY", "VOLUME", "NONE"]
    assert (ds.TotalPixelMatrixColumns, ds.TotalPixelMatrixRows) == (330, 230)
    assert ds.NumberOfFrames == 4 * 6 and ds.DimensionOrganizationType == "TILED_FULL"
    assert ds.PatientID == "14082" and ds.FrameOfReferenceUID == series.frame_of_reference_uid
    low = pydicom.dcmread(series.paths[1], stop_before_pixels=True)
    assert low.ImageType[3] == "RESAMPLED" and low.SeriesInstanceUID == ds.SeriesInstanceUID
    slide = WsiDicom.open(tmp_path / "slide")
    assert dicomweb.level_spacings_mm(slide) == pytest.approx([0.004, 0.008, 0.016])
    level = dicomweb.choose_level(slide)
    assert level == 0
    np.testing.assert_array_equal(dicomweb.read_level(slide, level), img)


def test_single_frame_dicom_patches_decode_like_pngs():
    rgb = np.random.default_rng(1).integers(0, 256, (50, 50, 3), dtype=np.uint8)
    arr, notes = decode_image(single_frame(rgb))
    np.testing.assert_array_equal(arr, rgb)
    assert any("DICOM" in n for n in notes)
    grey16 = (np.arange(50 * 40, dtype=np.uint16).reshape(40, 50) * 20).astype(np.uint16)
    arr, notes = decode_image(single_frame(grey16, "MONOCHROME2", bits=16))
    assert (
        arr.shape == (40, 50, 3) and arr.dtype == np.uint8 and "converted from grayscale" in notes
    )


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda rgb: single_frame(rgb, pixels=False), "without pixel data"),
        (lambda rgb: single_frame(rgb)[:-700], "unreadable DICOM|cannot be decoded"),
        (lambda rgb: single_frame(rgb, syntax=JPEG2000Lossless), "cannot be decoded"),
    ],
    ids=["no-pixel-data", "truncated", "unsupported-transfer-syntax"],
)
def test_unusable_dicom_files_get_a_plain_reason(make, reason):
    rgb = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(PatchDecodeError, match=reason):
        decode_image(make(rgb))
