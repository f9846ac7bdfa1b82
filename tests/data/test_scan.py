"""Patch names, data sources and the scan that checks every file before decoding."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from conftest import patch_name, write_png

from idc_utils.core import errors
from idc_utils.data import names, scan, sources


@pytest.mark.parametrize(
    "name, expected",
    [
        ("10253_idx5_x1001_y1051_class0.png", ("10253", 1001, 1051, 0)),
        ("8863_idx5_x51_y1_class1.png", ("8863", 51, 1, 1)),
        ("some/dir/9_idx5_x0_y0_class1.PNG", ("9", 0, 0, 1)),
    ],
)
def test_parse_valid_names(name, expected):
    p = names.parse_patch_name(name)
    assert (p.patient_id, p.x, p.y, p.label) == expected


@pytest.mark.parametrize(
    "name",
    [
        "10253_idx5_x1001_y1051_class2.png",  # no such class
        "10253_idx5_x1001_y1051.png",  # no class
        "10253_x1001_y1051_class0.png",  # no idx5
        "abc_idx5_x1_y1_class0.png",  # patient not numeric
        "10253_idx5_x1001_y1051_class0.jpg",
        "10253_idx5_x-5_y1051_class0.png",
    ],
)
def test_parse_rejects_other_names(name):
    assert names.parse_patch_name(name) is None


def test_scan_reports_every_odd_file(tiny_dataset):
    root = tiny_dataset
    good = len(list(root.rglob("*.png")))
    # label folder says 1, name says class0
    arr = np.full((50, 50, 3), 128, np.uint8)
    write_png(root / "101" / "1" / patch_name("101", 901, 901, 0), arr)
    # patient folder disagrees with the name
    write_png(root / "102" / "0" / patch_name("999", 901, 901, 0), arr)
    # a name that does not match
    write_png(root / "103" / "0" / "scan_0001.png", arr)
    (root / "README.txt").write_text("hello")
    (root / "104" / ".DS_Store").write_bytes(b"\0")

    res = scan.scan(root)
    assert len(res.files) == good
    problems = dict(zip(res.problems["path"], res.problems["problem"]))
    assert (
        "label folder 1 disagrees with name class0"
        in problems[f"101/1/{patch_name('101', 901, 901, 0)}"]
    )
    assert "patient folder 102 disagrees" in problems[f"102/0/{patch_name('999', 901, 901, 0)}"]
    assert "does not match" in problems["103/0/scan_0001.png"]
    assert "not a PNG" in problems["README.txt"]
    assert "hidden" in problems["104/.DS_Store"]
    assert (res.problems["fix"].str.len() > 10).all(), "every problem comes with a fix"
    assert res.files_seen == good + 5


def test_scan_missing_and_empty_and_wrong_folders(tmp_path, monkeypatch):
    with pytest.raises(errors.DataNotFoundError, match="does not exist") as e:
        scan.scan(tmp_path / "nope")
    assert "IDC_DATA_DIR" in str(e.value) and "make data" in str(e.value)

    monkeypatch.delenv("IDC_DATA_DIR", raising=False)
    with pytest.raises(errors.DataNotFoundError, match="No dataset given"):
        scan.scan(None)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(errors.DataError, match="is empty"):
        scan.scan(empty)

    wrong = tmp_path / "wrong"
    write_png(wrong / "cat.png", np.zeros((5, 5, 3), np.uint8))
    with pytest.raises(errors.DataError, match="No Kaggle-style patches") as e:
        scan.scan(wrong)
    assert "cat.png" in str(e.value)

    not_zip = tmp_path / "file.bin"
    not_zip.write_bytes(b"xx")
    with pytest.raises(errors.DataNotFoundError, match="not a zip"):
        scan.scan(not_zip)


def test_scan_reads_zip_and_reports_duplicates(tiny_dataset, tmp_path):
    z = tmp_path / "archive.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in sorted(tiny_dataset.rglob("*.png")):
            rel = f.relative_to(tiny_dataset).as_posix()
            zf.write(f, f"IDC_regular_ps50_idx5/{rel}")
            zf.write(f, rel)  # the Kaggle archive holds every patient twice
    res = scan.scan(z)
    n = len(list(tiny_dataset.rglob("*.png")))
    assert len(res.files) == n
    dups = res.problems[res.problems["problem"].str.startswith("duplicate")]
    assert len(dups) == n


def test_find_dataset_root(tmp_path):
    (tmp_path / "IDC_regular_ps50_idx5").mkdir()
    assert sources.find_dataset_root(tmp_path).name == "IDC_regular_ps50_idx5"
    inner = tmp_path / "IDC_regular_ps50_idx5"
    assert sources.find_dataset_root(inner).name == "IDC_regular_ps50_idx5"
