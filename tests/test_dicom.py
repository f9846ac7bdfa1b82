"""DICOM in and out: whole-slide series written and read back, single-frame patches decoded like
PNGs, clear errors for what cannot be used, and the round trip through a real Orthanc server."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

from idc_utils import dicom
from idc_utils.data import PatchDecodeError, decode_image


def tissue_like(h, w, seed=0):
    """An RGB image with white background and pink-purple 'tissue' blocks on the 50-px grid."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 255, np.uint8)
    for r in range(0, h, 50):
        for c in range(0, w, 50):
            if rng.random() < 0.6:
                base = rng.integers([120, 40, 110], [220, 120, 200])
                img[r : r + 50, c : c + 50] = np.clip(
                    base + rng.normal(0, 12, (min(50, h - r), min(50, w - c), 3)), 0, 255
                )
    return img


def single_frame(arr, photometric="RGB", syntax=ExplicitVRLittleEndian, pixels=True, bits=8):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = (
        meta.MediaStorageSOPClassUID,
        meta.MediaStorageSOPInstanceUID,
    )
    ds.PatientID, ds.Modality = "p1", "OT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Rows, ds.Columns = arr.shape[:2]
    ds.SamplesPerPixel = 3 if arr.ndim == 3 else 1
    ds.PhotometricInterpretation = photometric
    if arr.ndim == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if pixels and syntax == ExplicitVRLittleEndian:
        ds.PixelData = arr.tobytes()
    elif pixels:  # a compressed syntax: one fragment of bytes no installed decoder reads
        from pydicom.encaps import encapsulate

        ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(64)])
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def test_a_slide_is_written_as_a_pyramid_that_wsidicom_reads_back_exactly(tmp_path):
    from wsidicom import WsiDicom

    img = tissue_like(230, 330)
    series = dicom.write_slide(img, tmp_path / "slide", patient_id="14082", levels=3, tile=64)
    assert [lv["spacing_mm"] for lv in series.levels] == [0.004, 0.008, 0.016]
    ds = pydicom.dcmread(series.paths[0], stop_before_pixels=True)
    assert ds.SOPClassUID == dicom.WSI_SOP_CLASS and ds.Modality == "SM"
    assert list(ds.ImageType) == ["DERIVED", "PRIMARY", "VOLUME", "NONE"]
    assert (ds.TotalPixelMatrixColumns, ds.TotalPixelMatrixRows) == (330, 230)
    assert ds.NumberOfFrames == 4 * 6 and ds.DimensionOrganizationType == "TILED_FULL"
    assert ds.PatientID == "14082" and ds.FrameOfReferenceUID == series.frame_of_reference_uid
    low = pydicom.dcmread(series.paths[1], stop_before_pixels=True)
    assert low.ImageType[3] == "RESAMPLED" and low.SeriesInstanceUID == ds.SeriesInstanceUID
    slide = WsiDicom.open(tmp_path / "slide")
    assert dicom.level_spacings_mm(slide) == pytest.approx([0.004, 0.008, 0.016])
    level = dicom.choose_level(slide)
    assert level == 0
    np.testing.assert_array_equal(dicom.read_level(slide, level), img)


def test_a_slide_without_the_training_pixel_size_is_refused_with_its_levels(tmp_path):
    from wsidicom import WsiDicom

    dicom.write_slide(
        tissue_like(100, 100),
        tmp_path / "s",
        patient_id="1",
        levels=2,
        tile=64,
        pixel_spacing_mm=0.001,
    )
    with pytest.raises(dicom.DicomError, match=r"about 4 um per pixel.*levels: 1, 2 um"):
        dicom.choose_level(WsiDicom.open(tmp_path / "s"))


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


def test_predict_scores_dcm_patches_like_pngs(tmp_path, untrained_model):
    from PIL import Image

    from idc_utils import predict

    rgb = np.random.default_rng(2).integers(0, 256, (50, 50, 3), dtype=np.uint8)
    (tmp_path / "a.dcm").write_bytes(single_frame(rgb))
    Image.fromarray(rgb).save(tmp_path / "a.png")
    assert predict.predict_to_csv(untrained_model, [tmp_path], tmp_path / "p.csv") == 0
    df = pd.read_csv(tmp_path / "p.csv")
    probs = dict(zip(df["path"].map(lambda f: str(f).rsplit(".", 1)[-1]), df["prob"]))
    assert set(probs) == {"dcm", "png"} and probs["dcm"] == pytest.approx(probs["png"], abs=1e-6)
    assert df["error"].isna().all()


# ----------------------------------------------------------------- against a real Orthanc


@pytest.fixture(scope="module")
def slide_on_server(orthanc, tmp_path_factory):
    img = tissue_like(400, 560, seed=3)
    series = dicom.write_slide(
        img, tmp_path_factory.mktemp("wsi"), patient_id="14082", levels=3, tile=128
    )
    client = dicom.connect(orthanc.dicomweb_url)
    assert dicom.store(client, series.paths) == 3
    return img, series, client


@pytest.mark.slow
def test_upload_search_stream_classify_store_back_and_read_back(
    slide_on_server, untrained_model, tmp_path
):
    from PIL import Image

    from idc_utils import predict

    img, series, client = slide_on_server
    found = dicom.find_series(client)
    mine = [r for r in found if r["series_uid"] == series.series_uid]
    assert mine and mine[0]["patient_id"] == "14082" and mine[0]["instances"] == 3
    pred = predict.Predictor.load(untrained_model)
    web = dicom.analyse_slide(pred.probabilities, client, series.study_uid, series.series_uid)
    assert web.level == 0 and web.spacing_mm == pytest.approx(0.004)
    np.testing.assert_array_equal(web.image, img)  # streamed tile by tile, pixel for pixel
    # the PNG path (the Tissue tab's): same tiles, same probabilities
    Image.fromarray(img).save(tmp_path / "slide.png")
    png, _ = decode_image((tmp_path / "slide.png").read_bytes())
    local = predict.score_image(pred.probabilities, png)
    assert (np.isnan(web.per_tile) == np.isnan(local.per_tile)).all()
    assert np.isfinite(web.per_tile).sum() > 10
    np.testing.assert_allclose(web.per_tile, local.per_tile, atol=1e-6)
    # store the map back as a FRACTIONAL Segmentation, find it, read it back
    seg = dicom.probability_segmentation(web.source, web.per_tile)
    dicom.store(client, [seg])
    segs = dicom.find_series(client, modality="SEG")
    ds, pixels = dicom.read_segmentation(client, series.study_uid, seg.SeriesInstanceUID)
    assert isinstance(ds, pydicom.Dataset) and ds.SegmentationType == "FRACTIONAL"
    assert ds.FrameOfReferenceUID == series.frame_of_reference_uid
    assert ds.StudyInstanceUID == series.study_uid
    assert (ds.TotalPixelMatrixRows, ds.TotalPixelMatrixColumns) == img.shape[:2]
    expected = np.kron(np.nan_to_num(web.per_tile), np.ones((50, 50)))[
        : img.shape[0], : img.shape[1]
    ]
    assert pixels.shape == img.shape[:2]
    np.testing.assert_allclose(pixels, expected, atol=1 / 255 / 2 + 1e-6)
    checks = dicom.segmentation_checks(ds, pixels, web.source, web.per_tile, segs)
    assert all(checks.values()), checks
    # and the checks do catch a map that is not the one stored
    wrong = dicom.segmentation_checks(ds, pixels, web.source, web.per_tile * 0.5, segs)
    assert not wrong["values within 8-bit rounding"]
    table = dicom.describe_instance(ds).set_index("attribute")["value"]
    assert table["SegmentationType"] == "FRACTIONAL" and table["Modality"] == "SEG"


@pytest.mark.slow
def test_a_series_that_is_not_a_slide_is_refused(slide_on_server):
    _, series, client = slide_on_server
    ds = pydicom.dcmread(io.BytesIO(single_frame(np.zeros((50, 50, 3), np.uint8))))
    dicom.store(client, [ds])
    with pytest.raises(dicom.DicomError, match=ds.SeriesInstanceUID):
        dicom.open_slide(client, ds.StudyInstanceUID, ds.SeriesInstanceUID)


@pytest.mark.slow
def test_unreachable_refusing_or_malformed_servers_get_a_plain_message(orthanc):
    from idc_utils.app import free_port

    with pytest.raises(dicom.DicomError, match="no DICOMweb server answers"):
        dicom.connect(f"http://127.0.0.1:{free_port()}/dicom-web", timeout=3)
    with pytest.raises(dicom.DicomError, match=r"refused a DICOMweb search \(HTTP 404\)"):
        dicom.connect(orthanc.url + "/not-dicom-web")
    with pytest.raises(dicom.DicomError, match="not a DICOMweb address"):
        dicom.connect("127.0.0.1:8042")


@pytest.mark.slow
def test_the_app_dicomweb_tab_finds_maps_and_stores(slide_on_server, orthanc, untrained_model):
    from idc_utils import app, predict

    img, series, client = slide_on_server
    pred = predict.Predictor.load(untrained_model)
    choices = app.dicomweb_slides(orthanc.dicomweb_url)
    value = f"{series.study_uid}|{series.series_uid}"
    assert value in [v for _, v in choices]
    res, state = app.analyze_dicomweb(pred, orthanc.dicomweb_url, value, use_context=False)
    assert "over DICOMweb" in res.summary and res.overlay.ndim == 3
    assert state.per_tile.shape == (-(-img.shape[0] // 50), -(-img.shape[1] // 50))
    before = {r["series_uid"] for r in dicom.find_series(client, "SEG")}
    message = app.store_dicomweb_result(pred, state)
    after = {r["series_uid"] for r in dicom.find_series(client, "SEG")}
    (new,) = after - before
    assert new in message
    with pytest.raises(app.InputError, match="choose a slide"):
        app.analyze_dicomweb(pred, orthanc.dicomweb_url, None)
    with pytest.raises(app.InputError, match="Map a slide first"):
        app.store_dicomweb_result(pred, None)
    from idc_utils.app import free_port

    with pytest.raises(app.InputError, match="no DICOMweb server answers"):
        app.dicomweb_slides(f"http://127.0.0.1:{free_port()}/dicom-web")


def test_progress_is_one_line_per_stage_in_steps_of_ten_percent():
    out = io.StringIO()
    line = dicom.ProgressLine(out=out)
    for f in (0.05, 0.31, 1.0):
        line("read", f)
    for f in (0.5, 1.0):
        line("score", f)
    read, score = out.getvalue().splitlines()
    assert read == "read: " + " ".join(f"{p}%" for p in range(10, 101, 10))
    assert score.startswith("score: 10%") and score.endswith("100%")
