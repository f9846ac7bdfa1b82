"""DICOM's hierarchy as a DICOMweb server reports it, by keyword: what chapter 11 shows of the
slide it stored (patient > study > series > instances, each level of the pyramid an instance of
tiled frames)."""

from __future__ import annotations

import pandas as pd
from dicom_helpers import tissue_like

from idc_utils.data import dicom_slide
from idc_utils.serving import dicomweb


def test_tags_are_named_by_their_keywords():
    item = {
        "00080060": {"vr": "CS", "Value": ["SM"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Anonymous"}]},
        "00280008": {"vr": "IS", "Value": [12]},
        "7FE00010": {"vr": "OB", "BulkDataURI": "http://x/frames"},
        "00409096": {"vr": "SQ", "Value": [{}]},
        "00091001": {"vr": "LO", "Value": ["private"]},
    }
    assert dicomweb.keyword_for("0020000E") == "SeriesInstanceUID"
    assert dicomweb.by_keyword(item) == {
        "Modality": "SM",
        "PatientName": "Anonymous",
        "NumberOfFrames": 12,
        "00091001": "private",
    }


def test_server_contents_lists_a_stored_slide_level_by_level(orthanc, tmp_path):
    img = tissue_like(300, 420, seed=5)
    series = dicom_slide.write_slide(img, tmp_path, patient_id="contents-1", levels=2, tile=128)
    client = dicomweb.connect(orthanc.dicomweb_url)
    dicomweb.store(client, series.paths)
    table = dicomweb.server_contents(client)
    assert list(table.columns) == list(dicomweb.CONTENT_KEYWORDS)
    mine = table[table.StudyInstanceUID == series.study_uid]
    assert len(mine) == 2 and set(mine.PatientID) == {"contents-1"}
    assert set(mine.SeriesInstanceUID) == {series.series_uid} and set(mine.Modality) == {"SM"}
    assert mine.TotalPixelMatrixColumns.tolist() == [420, 210]
    assert mine.TotalPixelMatrixRows.tolist() == [300, 150]
    assert mine.NumberOfFrames.tolist() == [3 * 4, 2 * 2]  # 128-px tiles, row by row
    one = dicomweb.server_contents(client, patient_id="contents-1")
    # the same rows; other tests' objects on the shared server (a SEG has no NumberOfFrames
    # column value of this kind) may change the whole table's dtypes, not these values
    pd.testing.assert_frame_equal(
        one.reset_index(drop=True), mine.reset_index(drop=True), check_dtype=False
    )
