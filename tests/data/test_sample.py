"""The teaching sample: its shipped manifest agrees with the shared sample, and
``data sample`` copies exactly its files out of a Kaggle download (nested folders, a second copy
of the patient folders, a .zip), checks every hash, names what is missing or different, and
copies nothing into a complete folder."""

from __future__ import annotations

import gzip
import os
import sys
import types
import zipfile
from pathlib import Path

import pytest
from conftest import make_kaggle_dataset, patch_name

from idc_utils.cli import main
from idc_utils.core.errors import DataError
from idc_utils.data import sample
from idc_utils.data.names import parse_patch_name

KAGGLE = sample.KAGGLE_FOLDER


def pngs(folder: Path) -> list[Path]:
    """The PNG files under ``folder``, sorted, through links to folders too."""
    found = []
    for dirpath, _, filenames in os.walk(folder, followlinks=True):
        found += [Path(dirpath) / f for f in filenames if f.endswith(".png")]
    return sorted(found)


def files_in(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in pngs(folder)}


def replace_file(path: Path, data: bytes) -> None:
    """Give ``path`` new bytes without writing through a link (the tree links to the sample)."""
    path.unlink()
    path.write_bytes(data)


def kaggle_tree(sample_root: Path, dest: Path) -> Path:
    """A Kaggle download made of ``sample_root`` as kagglehub leaves it: under
    ``versions/1/`` its ``IDC_regular_ps50_idx5/<patient>/`` and a second copy of every patient
    folder beside it, each a link to the sample's folder; the first patient's folders are real,
    holding links to its files and a patch the sample lacks; and a patient the sample lacks."""
    top = dest / "datasets" / "paultimothymooney" / "breast-histopathology-images"
    top = top / "versions" / "1"
    patients = sorted(p.name for p in sample_root.iterdir() if p.is_dir())
    (top / KAGGLE).mkdir(parents=True)
    for pid in patients:
        (top / pid).symlink_to(sample_root / pid, target_is_directory=True)
        if pid != patients[0]:
            (top / KAGGLE / pid).symlink_to(sample_root / pid, target_is_directory=True)
    for f in pngs(sample_root / patients[0]):
        link = top / KAGGLE / f.relative_to(sample_root)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(f)
    extra = top / KAGGLE / patients[0] / "0" / patch_name(patients[0], 99951, 99951, 0)
    extra.write_bytes(b"a patch the sample does not have")
    make_kaggle_dataset(top / KAGGLE, {"99999": (2, 1)})
    return top


# --- the mechanics, on a tiny self-made sample (these run everywhere) ---------------------------


@pytest.fixture
def tiny(tiny_dataset, tmp_path):
    """A tiny sample, its manifest, and a Kaggle-like download holding it and more."""
    entries = sample.build_manifest(tiny_dataset)
    download = kaggle_tree(tiny_dataset, tmp_path / "download")
    return types.SimpleNamespace(root=tiny_dataset, entries=entries, download=download)


def test_manifest_round_trips_byte_for_byte(tiny, tmp_path):
    a = sample.write_manifest(tiny.entries, tmp_path / "a.csv.gz")
    b = sample.write_manifest(list(reversed(tiny.entries)), tmp_path / "b.csv.gz")
    assert a.read_bytes() == b.read_bytes()  # sorted, no timestamp: regenerating changes nothing
    assert sample.read_manifest(a) == tiny.entries
    assert len(tiny.entries) == 60 and sum(e.label for e in tiny.entries) == 15
    first = tiny.entries[0]
    assert first.size == (tiny.root / first.relpath).stat().st_size
    assert first.sha256 == sample.sha256((tiny.root / first.relpath).read_bytes())


def test_manifest_of_a_folder_outside_the_layout_names_the_file(tiny_dataset):
    stray = tiny_dataset / "101" / "1" / patch_name("101", 1, 1, 0)  # class0 in the 1 folder
    stray.write_bytes(b"x")
    with pytest.raises(DataError, match=r"101/1/101_idx5_x1_y1_class0\.png: its folders"):
        sample.build_manifest(tiny_dataset)


def test_a_bad_manifest_row_is_named_with_its_line(tiny, tmp_path):
    import dataclasses

    bad = [*tiny.entries[:3], dataclasses.replace(tiny.entries[3], label=1)]
    path = sample.write_manifest(bad, tmp_path / "bad.csv.gz")
    with pytest.raises(DataError, match=r"bad\.csv\.gz has 1 bad row:\n  line 5: 101/0/"):
        sample.read_manifest(path)
    short = sample.write_manifest(tiny.entries[:1], tmp_path / "short.csv.gz")
    text = gzip.decompress(short.read_bytes()).decode().rsplit(",", 1)[0]  # no sha256
    short.write_bytes(gzip.compress(text.encode()))
    with pytest.raises(DataError, match=r"line 2: 101/0/\S+: not 5 fields"):
        sample.read_manifest(short)
    (tmp_path / "plain.csv").write_text("relpath\n")
    with pytest.raises(DataError, match="plain.csv is not a gzipped CSV"):
        sample.read_manifest(tmp_path / "plain.csv")


def test_copies_exactly_the_manifest_from_a_nested_download(tiny, tmp_path):
    out = tmp_path / "out"
    report = sample.make_sample(tiny.download.parents[4], out, tiny.entries)  # from its top
    assert (report.copied, report.kept) == (60, 0)
    assert report.source == str(tiny.download / KAGGLE)  # the copy find_dataset_root prefers
    assert files_in(out) == files_in(tiny.root)  # not the extra patch, not patient 99999
    again = sample.make_sample(tmp_path / "nowhere", out, tiny.entries)  # no source needed
    assert (again.copied, again.kept, again.source) == (0, 60, None)
    assert "nothing copied" in again.summary()


def test_a_wrong_file_in_the_output_is_replaced_and_a_foreign_one_refused(tiny, tmp_path):
    out = tmp_path / "out"
    sample.make_sample(tiny.download, out, tiny.entries)
    (out / tiny.entries[0].relpath).write_bytes(b"truncated")
    report = sample.make_sample(tiny.download, out, tiny.entries)
    assert (report.copied, report.kept) == (1, 59)
    assert files_in(out) == files_in(tiny.root)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match=r"holds 1 file not in .*\n  notes\.txt"):
        sample.make_sample(tiny.download, out, tiny.entries)
    assert (out / "notes.txt").read_text() == "mine"


def test_missing_and_different_files_are_named_and_nothing_is_copied(tiny, tmp_path):
    first, second = tiny.entries[0].relpath, tiny.entries[1].relpath
    (tiny.download / KAGGLE / first).unlink()
    replace_file(tiny.download / KAGGLE / second, b"other bytes")
    out = tmp_path / "out"
    with pytest.raises(DataError) as err:
        sample.make_sample(tiny.download, out, tiny.entries)
    msg = str(err.value)
    assert "2 of the teaching sample's 60 files are missing or different" in msg
    assert f"missing    {first}" in msg and f"different  {second}" in msg
    assert "re-download the Kaggle set" in msg
    assert not out.exists()


def test_a_long_list_of_problems_names_the_first_few_and_counts_them(tiny, tmp_path):
    for e in tiny.entries[:8]:
        (tiny.download / KAGGLE / e.relpath).unlink()
    with pytest.raises(DataError, match=r"8 of .* 60 files(.|\n)*\.\.\. and 3 more\n") as err:
        sample.make_sample(tiny.download, tmp_path / "out", tiny.entries)
    assert str(err.value).count("missing    ") == sample.SHOWN


def test_a_source_that_is_no_download_says_what_to_give(tiny, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    for src, what in [
        (tmp_path / "nowhere", "does not exist"),
        (tmp_path / "notes.txt", "not a .zip"),
        (tmp_path / "empty", "holds none of the sample's patient folders"),
    ]:
        with pytest.raises(DataError, match=what) as err:
            sample.make_sample(src, tmp_path / "out", tiny.entries)
        assert "--from takes the Kaggle download" in str(err.value)


def test_a_zip_is_read_by_the_files_asked_for(tiny, tmp_path):
    """A zip holding the sample twice: the copy under IDC_regular_ps50_idx5 is read, even when
    the other copy differs."""
    archive = tmp_path / "archive.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for rel, data in files_in(tiny.download / KAGGLE).items():
            zf.writestr(f"{KAGGLE}/{rel}", data)
            zf.writestr(rel, b"a damaged second copy")
    out = tmp_path / "out"
    assert sample.make_sample(archive, out, tiny.entries).copied == 60
    assert files_in(out) == files_in(tiny.root)


def test_the_command_downloads_only_when_needed(tiny, tmp_path, capsys, monkeypatch):
    """Without --from (what `make data` runs) it downloads with kagglehub into --dest, then
    copies; into a complete folder it downloads nothing."""
    monkeypatch.setattr(sample, "read_manifest", lambda: tiny.entries)
    calls = []

    def dataset_download(handle):
        calls.append((handle, os.environ["KAGGLEHUB_CACHE"]))
        return str(tiny.download)  # versions/1, where kagglehub puts it

    kagglehub = types.SimpleNamespace(dataset_download=dataset_download)
    monkeypatch.setitem(sys.modules, "kagglehub", kagglehub)
    monkeypatch.delenv("KAGGLEHUB_CACHE", raising=False)
    out, dest = tmp_path / "data" / "idc-sample", tmp_path / "data"
    args = ["data", "sample", "--out", str(out), "--dest", str(dest)]
    assert main(args) == 0
    assert calls == [("paultimothymooney/breast-histopathology-images", str(dest))]
    printed = capsys.readouterr().out
    assert f"IDC_DATA_DIR={tiny.download / KAGGLE}" in printed  # the full set, for PROFILE=full
    assert printed.rstrip().endswith(f"export IDC_DATA_DIR={out}")
    assert files_in(out) == files_in(tiny.root)
    assert main(args) == 0 and len(calls) == 1
    assert "nothing copied" in capsys.readouterr().out


# --- the real sample (the shared 8,035 patches; skips without them, fails under CI) -------------


def test_the_shipped_manifest_is_the_shared_sample(shared_sample):
    entries = sample.read_manifest()
    assert len(entries) == 8035
    assert len({e.patient_id for e in entries}) == 209
    assert sum(e.label for e in entries) / len(entries) == pytest.approx(0.283, abs=0.001)
    for e in entries:
        name = parse_patch_name(e.relpath)
        assert (name.patient_id, name.label) == (e.patient_id, e.label)
    assert sample.build_manifest(shared_sample) == entries  # same files, same bytes


@pytest.fixture(scope="module")
def download(shared_sample, tmp_path_factory):
    return kaggle_tree(shared_sample, tmp_path_factory.mktemp("kaggle"))


def test_the_sample_comes_out_of_a_nested_kaggle_download(shared_sample, download, tmp_path):
    report = sample.make_sample(download.parent.parent, tmp_path / "out")  # from versions/
    assert (report.copied, report.kept) == (8035, 0)
    assert files_in(tmp_path / "out") == files_in(shared_sample)


def test_the_sample_comes_out_of_the_kaggle_zip(shared_sample, download, tmp_path):
    archive = tmp_path / "archive.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # stored, as Kaggle's patches barely compress
        for path in pngs(download / KAGGLE):
            zf.write(path, path.relative_to(download).as_posix())
    assert sample.make_sample(archive, tmp_path / "out").copied == 8035
    assert files_in(tmp_path / "out") == files_in(shared_sample)


def test_a_damaged_download_names_its_files(shared_sample, tmp_path):
    download = kaggle_tree(shared_sample, tmp_path / "download")
    patient = sorted(download.joinpath(KAGGLE).iterdir())[0]
    gone, changed = pngs(patient)[:2]
    assert gone.is_symlink() and changed.is_symlink()
    gone.unlink()
    replace_file(changed, changed.read_bytes()[:-1])  # one byte short
    with pytest.raises(DataError) as err:
        sample.make_sample(download, tmp_path / "out")
    msg = str(err.value)
    assert "2 of the teaching sample's 8,035 files are missing or different" in msg
    assert f"missing    {gone.relative_to(download / KAGGLE).as_posix()}" in msg
    assert f"different  {changed.relative_to(download / KAGGLE).as_posix()}" in msg


def test_the_command_copies_checks_and_prints_the_folder_to_use(download, tmp_path, capsys):
    out = tmp_path / "idc-sample"
    assert main(["data", "sample", "--from", str(download), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "copied 8,035 files" in printed and "all 8,035 files" in printed
    assert printed.rstrip().splitlines()[-1] == f"  export IDC_DATA_DIR={out.resolve()}"
    assert main(["data", "sample", "--from", str(tmp_path / "gone"), "--out", str(out)]) == 0
    assert "nothing copied" in capsys.readouterr().out


def test_the_command_names_a_damaged_download(shared_sample, tmp_path, capsys):
    download = kaggle_tree(shared_sample, tmp_path / "download")
    gone = pngs(download / KAGGLE)[0]
    gone.unlink()
    out = tmp_path / "out"
    assert main(["data", "sample", "--from", str(download), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert gone.name in err and "re-download the Kaggle set" in err
    assert not out.exists()
