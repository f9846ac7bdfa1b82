"""Parser, scanner, loader and cache of idc_utils.data, on datasets the tests write themselves."""

from __future__ import annotations

import io
import shutil
import zipfile

import numpy as np
import pytest
from conftest import patch_name, write_png
from PIL import Image

from idc_utils import data

# ----------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name, expected",
    [
        ("10253_idx5_x1001_y1051_class0.png", ("10253", 1001, 1051, 0)),
        ("8863_idx5_x51_y1_class1.png", ("8863", 51, 1, 1)),
        ("some/dir/9_idx5_x0_y0_class1.PNG", ("9", 0, 0, 1)),
    ],
)
def test_parse_valid_names(name, expected):
    p = data.parse_patch_name(name)
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
    assert data.parse_patch_name(name) is None


# ----------------------------------------------------------------------------- scan


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

    res = data.scan(root)
    assert len(res.patches) == good
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
    with pytest.raises(data.DataNotFoundError, match="does not exist") as e:
        data.scan(tmp_path / "nope")
    assert "IDC_DATA_DIR" in str(e.value) and "make data" in str(e.value)

    monkeypatch.delenv("IDC_DATA_DIR", raising=False)
    with pytest.raises(data.DataNotFoundError, match="No dataset given"):
        data.scan(None)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(data.DataError, match="is empty"):
        data.scan(empty)

    wrong = tmp_path / "wrong"
    write_png(wrong / "cat.png", np.zeros((5, 5, 3), np.uint8))
    with pytest.raises(data.DataError, match="No Kaggle-style patches") as e:
        data.scan(wrong)
    assert "cat.png" in str(e.value)

    not_zip = tmp_path / "file.bin"
    not_zip.write_bytes(b"xx")
    with pytest.raises(data.DataNotFoundError, match="not a zip"):
        data.scan(not_zip)


def test_scan_reads_zip_and_reports_duplicates(tiny_dataset, tmp_path):
    z = tmp_path / "archive.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in sorted(tiny_dataset.rglob("*.png")):
            rel = f.relative_to(tiny_dataset).as_posix()
            zf.write(f, f"IDC_regular_ps50_idx5/{rel}")
            zf.write(f, rel)  # the Kaggle archive holds every patient twice
    res = data.scan(z)
    n = len(list(tiny_dataset.rglob("*.png")))
    assert len(res.patches) == n
    dups = res.problems[res.problems["problem"].str.startswith("duplicate")]
    assert len(dups) == n


# ----------------------------------------------------------------------------- decoding


def _png_bytes(arr, mode=None, **kw):
    buf = io.BytesIO()
    (Image.fromarray(arr, mode=mode) if mode else Image.fromarray(arr)).save(
        buf, format="PNG", **kw
    )
    return buf.getvalue()


def test_decode_pads_edge_patches_with_white_at_bottom_right():
    arr = np.zeros((13, 50, 3), np.uint8)  # 50 wide, 13 high: cut at the bottom edge
    patch, w, h, note = data.decode_patch(_png_bytes(arr))
    assert patch.shape == (50, 50, 3) and (w, h) == (50, 13)
    assert (patch[:13] == 0).all() and (patch[13:] == 255).all()
    assert note == "padded from 50x13"


def test_decode_converts_grayscale_rgba_and_16bit():
    gray = np.full((50, 50), 77, np.uint8)
    patch, *_, note = data.decode_patch(_png_bytes(gray))
    assert (patch == 77).all() and "grayscale" in note

    rgba = np.zeros((50, 50, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 0  # fully transparent: white
    rgba[:10, :, 3] = 255
    patch, *_, note = data.decode_patch(_png_bytes(rgba))
    assert (patch[:10, :, 0] == 200).all() and (patch[:10, :, 1] == 0).all()
    assert (patch[10:] == 255).all() and "transparency" in note

    g16 = np.full((50, 50), 65535, np.uint16)
    g16[:25] = 0
    img = Image.fromarray(g16)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    patch, *_, note = data.decode_patch(buf.getvalue())
    assert (patch[:25] == 0).all() and (patch[25:] == 255).all() and "16-bit" in note


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"", "empty file"),
        (b"this is not a png at all", "not an image"),
        (None, "unreadable"),  # truncated PNG, filled in below
    ],
)
def test_decode_rejects_bad_files_with_a_reason(payload, reason):
    if payload is None:
        payload = _png_bytes(
            np.random.default_rng(0).integers(0, 255, (50, 50, 3), dtype=np.uint8)
        )[:200]
    with pytest.raises(data.PatchDecodeError, match=reason):
        data.decode_patch(payload)


def test_decode_refuses_larger_images_unless_asked():
    big = np.zeros((80, 60, 3), np.uint8)
    with pytest.raises(data.PatchDecodeError, match="larger than a 50x50"):
        data.decode_patch(_png_bytes(big))
    patch, w, h, note = data.decode_patch(_png_bytes(big), allow_larger=True)
    assert patch.shape == (50, 50, 3) and note == "resized from 60x80"


# ----------------------------------------------------------------------------- load + cache


def test_load_dataset_matches_files_and_reports_corrupt(tiny_dataset):
    root = tiny_dataset
    bad = root / "105" / "0" / patch_name("105", 999, 999, 0)
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    small = np.zeros((20, 50, 3), np.uint8)
    write_png(root / "106" / "1" / patch_name("106", 1, 951, 1), small)

    ds = data.load_dataset(root)
    m = ds.manifest
    total = len(list(root.rglob("*.png")))
    assert len(m) == total - 1, "only the corrupt file is left out"
    assert ds.images.shape == (total - 1, 50, 50, 3) and ds.images.dtype == np.uint8
    assert bad.relative_to(root).as_posix() in set(ds.problems["path"])
    assert ds.problems["problem"].str.contains("unreadable patch").any()
    assert "1 files not used" in ds.report()
    # pixels follow their rows: IDC+ patches were written darker
    means = ds.patches(m).reshape(len(m), -1).mean(1)
    full = (m["height"] == 50).to_numpy()
    assert (
        means[full & (m["label"] == 1).to_numpy()].max()
        < means[full & (m["label"] == 0).to_numpy()].min()
    )
    edge = m[m["note"].str.contains("padded")]
    assert len(edge) == 1 and edge.iloc[0]["height"] == 20
    assert ds.summary()["edge_patches_padded"] == 1


def test_second_load_reads_the_cache_and_notices_changes(tiny_dataset, tmp_path):
    cache = tmp_path / "cache"
    first = data.load_dataset(tiny_dataset, cache_dir=cache)
    assert not first.from_cache and first.cache_dir is not None
    second = data.load_dataset(tiny_dataset, cache_dir=cache)
    assert second.from_cache
    assert isinstance(second.images, np.memmap)
    np.testing.assert_array_equal(np.asarray(first.images), np.asarray(second.images))
    assert first.manifest.equals(second.manifest)
    # a new file changes the key: no stale cache
    write_png(
        tiny_dataset / "101" / "0" / patch_name("101", 2001, 2001, 0),
        np.zeros((50, 50, 3), np.uint8),
    )
    third = data.load_dataset(tiny_dataset, cache_dir=cache)
    assert not third.from_cache and len(third) == len(first) + 1


def test_damaged_cache_is_rebuilt(tiny_dataset, tmp_path):
    cache = tmp_path / "cache"
    ds = data.load_dataset(tiny_dataset, cache_dir=cache)
    (ds.cache_dir / "images.npy").write_bytes(b"broken")
    again = data.load_dataset(tiny_dataset, cache_dir=cache)
    assert not again.from_cache and len(again) == len(ds)


def test_parallel_decode_gives_the_same_patches(tiny_dataset, tmp_path):
    one = data.load_dataset(tiny_dataset, use_cache=False, workers=1)
    two = data.load_dataset(tiny_dataset, use_cache=False, workers=2)
    np.testing.assert_array_equal(one.images, two.images)


def test_load_from_zip_equals_load_from_folder(tiny_dataset, tmp_path):
    z = tmp_path / "d.zip"
    shutil.make_archive(str(z.with_suffix("")), "zip", tiny_dataset)
    a = data.load_dataset(tiny_dataset, use_cache=False)
    b = data.load_dataset(z, use_cache=False)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.fingerprint == b.fingerprint


def test_subsample_patients_keeps_whole_patients(tiny_dataset):
    m = data.load_dataset(tiny_dataset, use_cache=False).manifest
    sub = data.subsample_patients(m, 3, seed=1, keep=["103"])
    assert sub["patient_id"].nunique() == 3 and "103" in set(sub["patient_id"])
    for pid, grp in sub.groupby("patient_id"):
        assert len(grp) == (m["patient_id"] == pid).sum()
    assert data.subsample_patients(m, 3, seed=1, keep=["103"]).equals(sub)


def test_find_dataset_root(tmp_path):
    (tmp_path / "IDC_regular_ps50_idx5").mkdir()
    assert data.find_dataset_root(tmp_path).name == "IDC_regular_ps50_idx5"
    assert (
        data.find_dataset_root(tmp_path / "IDC_regular_ps50_idx5").name == "IDC_regular_ps50_idx5"
    )


def test_cli_data_check_names_the_problem(tmp_path, capsys):
    from idc_utils.__main__ import main

    assert main(["data", "check", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "IDC_DATA_DIR" in err


def test_shared_sample_loads_completely(shared_sample):
    ds = data.load_dataset(shared_sample)
    s = ds.summary()
    assert s["patches"] == 8035 and s["patients"] == 209 and s["problems"] == 0
    assert s["edge_patches_padded"] == 74
    assert abs(s["idc_positive_share"] - 0.283) < 0.001
