"""DICOMweb against a real Orthanc: store, find, stream, map, store back, read back."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from dicom_helpers import single_frame, tissue_like

from idc_utils.core import errors
from idc_utils.data import dicom_attributes, dicom_slide
from idc_utils.data.decode import decode_image
from idc_utils.serving import dicomweb, predictor, segmentation, slide_analysis, tissue
from idc_utils.serving.app import dicomweb_tab, inputs


@pytest.fixture(scope="module")
def slide_on_server(orthanc, tmp_path_factory):
    img = tissue_like(400, 560, seed=3)
    series = dicom_slide.write_slide(
        img, tmp_path_factory.mktemp("wsi"), patient_id="14082", levels=3, tile=128
    )
    client = dicomweb.connect(orthanc.dicomweb_url)
    assert dicomweb.store(client, series.paths) == 3
    return img, series, client


def test_a_slide_without_the_training_pixel_size_is_refused_with_its_levels(tmp_path):
    from wsidicom import WsiDicom

    dicom_slide.write_slide(
        tissue_like(100, 100),
        tmp_path / "s",
        patient_id="1",
        levels=2,
        tile=64,
        pixel_spacing_mm=0.001,
    )
    with pytest.raises(errors.DicomError, match=r"about 4 um per pixel.*levels: 1, 2 um"):
        dicomweb.choose_level(WsiDicom.open(tmp_path / "s"))


@pytest.mark.slow
def test_upload_search_stream_classify_store_back_and_read_back(
    slide_on_server, untrained_model, tmp_path
):
    from PIL import Image

    img, series, client = slide_on_server
    found = dicomweb.find_series(client)
    mine = [r for r in found if r["series_uid"] == series.series_uid]
    assert mine and mine[0]["patient_id"] == "14082" and mine[0]["instances"] == 3
    pred = predictor.Predictor.load(untrained_model)
    web = slide_analysis.analyze_slide(
        pred.probabilities, client, series.study_uid, series.series_uid
    )
    assert web.level == 0 and web.spacing_mm == pytest.approx(0.004)
    np.testing.assert_array_equal(web.image, img)  # streamed tile by tile, pixel for pixel
    # the PNG path (the Tissue tab's): same tiles, same probabilities
    Image.fromarray(img).save(tmp_path / "slide.png")
    png, _ = decode_image((tmp_path / "slide.png").read_bytes())
    local = tissue.score_image(pred.probabilities, png)
    assert (np.isnan(web.per_tile) == np.isnan(local.per_tile)).all()
    assert np.isfinite(web.per_tile).sum() > 10
    np.testing.assert_allclose(web.per_tile, local.per_tile, atol=1e-6)
    # store the map back as a FRACTIONAL Segmentation, find it, read it back
    seg = segmentation.probability_segmentation(web.source, web.per_tile)
    dicomweb.store(client, [seg])
    segs = dicomweb.find_series(client, modality="SEG")
    ds, pixels = segmentation.read_segmentation(client, series.study_uid, seg.SeriesInstanceUID)
    assert isinstance(ds, pydicom.Dataset) and ds.SegmentationType == "FRACTIONAL"
    assert ds.FrameOfReferenceUID == series.frame_of_reference_uid
    assert ds.StudyInstanceUID == series.study_uid
    assert (ds.TotalPixelMatrixRows, ds.TotalPixelMatrixColumns) == img.shape[:2]
    expected = np.kron(np.nan_to_num(web.per_tile), np.ones((50, 50)))[
        : img.shape[0], : img.shape[1]
    ]
    assert pixels.shape == img.shape[:2]
    np.testing.assert_allclose(pixels, expected, atol=1 / 255 / 2 + 1e-6)
    checks = segmentation.segmentation_checks(ds, pixels, web.source, web.per_tile, segs)
    assert all(checks.values()), checks
    # and the checks do catch a map that is not the one stored
    wrong = segmentation.segmentation_checks(ds, pixels, web.source, web.per_tile * 0.5, segs)
    assert not wrong["values within 8-bit rounding"]
    table = dicom_attributes.describe_instance(ds).set_index("attribute")["value"]
    assert table["SegmentationType"] == "FRACTIONAL" and table["Modality"] == "SEG"


@pytest.mark.slow
def test_a_series_that_is_not_a_slide_is_refused(slide_on_server):
    _, series, client = slide_on_server
    ds = pydicom.dcmread(io.BytesIO(single_frame(np.zeros((50, 50, 3), np.uint8))))
    dicomweb.store(client, [ds])
    with pytest.raises(errors.DicomError, match=ds.SeriesInstanceUID):
        dicomweb.open_slide(client, ds.StudyInstanceUID, ds.SeriesInstanceUID)


@pytest.mark.slow
def test_unreachable_refusing_or_malformed_servers_get_a_plain_message(orthanc):
    from idc_utils.core.ports import free_port

    with pytest.raises(errors.DicomError, match="no DICOMweb server answers"):
        dicomweb.connect(f"http://127.0.0.1:{free_port()}/dicom-web", timeout=3)
    with pytest.raises(errors.DicomError, match=r"refused a DICOMweb search \(HTTP 404\)"):
        dicomweb.connect(orthanc.url + "/not-dicom-web")
    with pytest.raises(errors.DicomError, match="not a DICOMweb address"):
        dicomweb.connect("127.0.0.1:8042")


@pytest.mark.slow
def test_the_app_dicomweb_tab_finds_maps_and_stores(slide_on_server, orthanc, untrained_model):

    img, series, client = slide_on_server
    pred = predictor.Predictor.load(untrained_model)
    choices = dicomweb_tab.dicomweb_slides(orthanc.dicomweb_url)
    value = f"{series.study_uid}|{series.series_uid}"
    assert value in [v for _, v in choices]
    res, state = dicomweb_tab.analyze_dicomweb(pred, orthanc.dicomweb_url, value, use_context=False)
    assert "over DICOMweb" in res.summary and res.overlay.ndim == 3
    assert state.per_tile.shape == (-(-img.shape[0] // 50), -(-img.shape[1] // 50))
    before = {r["series_uid"] for r in dicomweb.find_series(client, "SEG")}
    message = dicomweb_tab.store_dicomweb_result(pred, state)
    after = {r["series_uid"] for r in dicomweb.find_series(client, "SEG")}
    (new,) = after - before
    assert new in message
    with pytest.raises(inputs.InputError, match="choose a slide"):
        dicomweb_tab.analyze_dicomweb(pred, orthanc.dicomweb_url, None)
    with pytest.raises(inputs.InputError, match="Map a slide first"):
        dicomweb_tab.store_dicomweb_result(pred, None)
    from idc_utils.core.ports import free_port

    with pytest.raises(inputs.InputError, match="no DICOMweb server answers"):
        dicomweb_tab.dicomweb_slides(f"http://127.0.0.1:{free_port()}/dicom-web")
