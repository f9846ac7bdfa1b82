"""A run published beside the book and fetched from it over HTTP, every hash checked."""

from __future__ import annotations

import json

import pytest

from idc_utils import cli
from idc_utils.chapters import published_run as pr


@pytest.fixture
def book_run(tmp_path):
    """A run folder as the book leaves it: split, models with cards, metrics, and its own
    notebooks and figures (which are not published)."""
    run = tmp_path / "runs" / "sample"
    (run / "models").mkdir(parents=True)
    (run / "figures").mkdir()
    (run / "split.csv").write_text("path,patient_id,label,split\n1/0/a.png,1,0,train\n")
    (run / "metrics.json").write_text('{"efficientnet": {"test_auc": 0.9}}')
    (run / "params.json").write_text("{}")
    (run / "models" / "cnn.keras").write_bytes(b"PK model bytes " * 100)
    (run / "models" / "cnn.json").write_text('{"threshold": 0.3}')
    (run / "figures" / "f.png").write_bytes(b"png")
    record = {"profile": "sample", "chapters": {"01_eda": {"depends_on": {"data": "d1"}}}}
    (run / "book.json").write_text(json.dumps(record))
    return run


def test_a_published_run_is_fetched_with_every_hash_checked(book_run, served, tmp_path):
    site, url = served
    files = pr.publish_run(book_run, site / "run")
    assert set(files) == {
        "run.json",
        "split.csv",
        "metrics.json",
        "params.json",
        "models/cnn.keras",
        "models/cnn.json",
    }
    about = json.loads((site / "run" / "run.json").read_text())
    assert about == {"profile": "sample", "data_files_digest": ["d1"]}

    fresh = tmp_path / "laptop" / "runs" / "sample"
    rep = pr.fetch_run(url + "/run", fresh)
    assert sorted(rep.downloaded) == sorted(files) and not rep.kept
    for rel in files[1:]:
        assert (fresh / rel).read_bytes() == (book_run / rel).read_bytes()
    again = pr.fetch_run(url + "/run/", fresh)  # a second fetch downloads nothing
    assert not again.downloaded and sorted(again.kept) == sorted(files)

    (fresh / "models" / "cnn.keras").write_bytes(b"a model trained here")
    with pytest.raises(pr.PublishedRunError, match=r"other versions of models/cnn\.keras"):
        pr.fetch_run(url + "/run", fresh)
    assert (fresh / "models" / "cnn.keras").read_bytes() == b"a model trained here"
    rep = pr.fetch_run(url + "/run", fresh, overwrite=True)
    assert rep.downloaded == ["models/cnn.keras"]


def test_a_wrong_hash_is_refused_and_nothing_is_kept(book_run, served, tmp_path):
    site, url = served
    pr.publish_run(book_run, site / "run")
    with open(site / "run" / "models" / "cnn.keras", "ab") as f:
        f.write(b"tampered")
    fresh = tmp_path / "fresh"
    with pytest.raises(pr.PublishedRunError, match=r"models/cnn\.keras: SHA-256 .* says"):
        pr.fetch_run(url + "/run", fresh)
    assert not (fresh / "models" / "cnn.keras").exists()
    assert not list(fresh.rglob("*.part"))

    code = cli.main(["run", "fetch", "--from", url + "/run", "--run-dir", str(tmp_path / "c")])
    assert code == 1


def test_unusable_addresses_and_sums_say_what_to_do(tmp_path, served, capsys):
    site, url = served
    with pytest.raises(pr.PublishedRunError, match="could not download .*SHA256SUMS"):
        pr.fetch_run(url + "/nothing-here", tmp_path / "r")
    (site / "bad").mkdir()
    (site / "bad" / "SHA256SUMS").write_text(f"{'0' * 64}  ../../etc/passwd\n")
    with pytest.raises(pr.PublishedRunError, match="line 1: not '<sha256>  <relative path>'"):
        pr.fetch_run(url + "/bad", tmp_path / "r")
    with pytest.raises(pr.PublishedRunError, match="holds no split and models"):
        pr.publish_run(tmp_path / "empty", tmp_path / "out")


def test_the_cli_publishes_and_fetches_a_local_folder(book_run, tmp_path, capsys):
    out = tmp_path / "published"
    assert cli.main(["run", "publish", "--run-dir", str(book_run), "--out", str(out)]) == 0
    assert (out / "SHA256SUMS").exists()
    dest = tmp_path / "mine"
    assert cli.main(["run", "fetch", "--from", str(out), "--run-dir", str(dest)]) == 0
    said = capsys.readouterr().out
    assert "fetched 6 files" in said and "every SHA-256 checked" in said
    assert (dest / "models" / "cnn.keras").read_bytes() == (
        book_run / "models/cnn.keras"
    ).read_bytes()


def test_only_some_files_and_the_shared_json_files_merge(book_run, served, tmp_path):
    site, url = served
    (site / "run").mkdir()
    (site / "run" / "stale.txt").write_text("from an earlier publication")
    pr.publish_run(book_run, site / "run")
    assert not (site / "run" / "stale.txt").exists()
    fresh = tmp_path / "fresh"
    rep = pr.fetch_run(url + "/run", fresh, only=("split.csv",))
    assert sorted(rep.downloaded) == ["run.json", "split.csv"]
    (fresh / "metrics.json").write_text('{"eda": {"patients": 3}}')  # a chapter ran here
    rep = pr.fetch_run(url + "/run", fresh)  # no clash: the sections merge
    merged = json.loads((fresh / "metrics.json").read_text())
    assert merged == {"eda": {"patients": 3}, "efficientnet": {"test_auc": 0.9}}
    assert "metrics.json" in rep.downloaded and not list(fresh.rglob("*.part"))


@pytest.mark.parametrize(
    "line", ["C:/Users/Public/evil.bat", "\\\\srv\\share\\x", "../up", "/etc/passwd", "a/../../b"]
)
def test_a_path_outside_the_run_folder_is_refused(line):
    with pytest.raises(pr.PublishedRunError, match="line 1"):
        pr.read_sums(f"{'0' * 64}  {line}\n", "SHA256SUMS")
