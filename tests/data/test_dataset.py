"""Loading a dataset: every file accounted for, the decoded-patch cache, zips, subsets."""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
from conftest import patch_name, write_png

from idc_utils.data import dataset


def test_load_dataset_matches_files_and_reports_corrupt(tiny_dataset):
    root = tiny_dataset
    bad = root / "105" / "0" / patch_name("105", 999, 999, 0)
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    small = np.zeros((20, 50, 3), np.uint8)
    write_png(root / "106" / "1" / patch_name("106", 1, 951, 1), small)

    ds = dataset.load_dataset(root)
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
    first = dataset.load_dataset(tiny_dataset, cache_dir=cache)
    assert not first.from_cache and first.cache_dir is not None
    second = dataset.load_dataset(tiny_dataset, cache_dir=cache)
    assert second.from_cache
    assert isinstance(second.images, np.memmap)
    np.testing.assert_array_equal(np.asarray(first.images), np.asarray(second.images))
    assert first.manifest.equals(second.manifest)
    # a new file changes the key: no stale cache
    write_png(
        tiny_dataset / "101" / "0" / patch_name("101", 2001, 2001, 0),
        np.zeros((50, 50, 3), np.uint8),
    )
    third = dataset.load_dataset(tiny_dataset, cache_dir=cache)
    assert not third.from_cache and len(third) == len(first) + 1


def test_damaged_cache_is_rebuilt(tiny_dataset, tmp_path):
    cache = tmp_path / "cache"
    ds = dataset.load_dataset(tiny_dataset, cache_dir=cache)
    (ds.cache_dir / "images.npy").write_bytes(b"broken")
    again = dataset.load_dataset(tiny_dataset, cache_dir=cache)
    assert not again.from_cache and len(again) == len(ds)


def test_parallel_decode_gives_the_same_patches(tiny_dataset, tmp_path):
    one = dataset.load_dataset(tiny_dataset, use_cache=False, workers=1)
    two = dataset.load_dataset(tiny_dataset, use_cache=False, workers=2)
    np.testing.assert_array_equal(one.images, two.images)


def test_load_from_zip_equals_load_from_folder(tiny_dataset, tmp_path):
    z = tmp_path / "d.zip"
    shutil.make_archive(str(z.with_suffix("")), "zip", tiny_dataset)
    a = dataset.load_dataset(tiny_dataset, use_cache=False)
    b = dataset.load_dataset(z, use_cache=False)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.fingerprint == b.fingerprint


def test_subsample_patients_keeps_whole_patients(tiny_dataset):
    m = dataset.load_dataset(tiny_dataset, use_cache=False).manifest
    sub = dataset.subsample_patients(m, 3, seed=1, keep=["103"])
    assert sub["patient_id"].nunique() == 3 and "103" in set(sub["patient_id"])
    for pid, grp in sub.groupby("patient_id"):
        assert len(grp) == (m["patient_id"] == pid).sum()
    assert dataset.subsample_patients(m, 3, seed=1, keep=["103"]).equals(sub)


def test_cli_data_check_names_the_problem(tmp_path, capsys):
    from idc_utils.cli import main

    assert main(["data", "check", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "IDC_DATA_DIR" in err


def test_shared_sample_loads_completely(shared_sample):
    ds = dataset.load_dataset(shared_sample)
    s = ds.summary()
    assert s["patches"] == 8035 and s["patients"] == 209 and s["problems"] == 0
    assert s["edge_patches_padded"] == 74
    assert abs(s["idc_positive_share"] - 0.283) < 0.001


def test_write_zip_keeps_kaggle_paths(tmp_path):

    (tmp_path / "7" / "1").mkdir(parents=True)
    (tmp_path / "7" / "1" / "a.png").write_bytes(b"x")
    z = dataset.write_zip(tmp_path, ["7/1/a.png"], tmp_path / "p.zip")
    assert zipfile.ZipFile(z).namelist() == ["7/1/a.png"]
