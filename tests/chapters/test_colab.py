"""The chapters' Colab set-up cell: the same in every chapter, idle locally, and on "Colab" (a
clean venv here, with local servers for the repository, the sample and the published run) it
installs the package, rebuilds the sample and fetches the run, every hash checked."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import nbformat
import pytest
import yaml
from conftest import ROOT
from test_published_run import book_run  # noqa: F401 - a fixture

from idc_utils.book.notebooks import chapter_notebooks
from idc_utils.chapters import colab, published_run
from idc_utils.data import sample


def setup_cells(path):
    nb = nbformat.read(path, as_version=4)
    return nb, [c for c in nb.cells if "colab-setup" in c.metadata.get("tags", [])]


def test_every_chapter_starts_with_the_setup_cell_for_its_number():
    for path in chapter_notebooks():
        nb, cells = setup_cells(path)
        assert len(cells) == 1, f"{path.name}: run tools/setup_cells.py"
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code[0] is cells[0] and "parameters" in code[1].metadata.get("tags", [])
        assert cells[0].source == colab.setup_cell(int(path.stem[:2])), (
            f"{path.name}: its set-up cell differs from colab.SETUP_CELL; run tools/setup_cells.py"
        )
        assert "remove-cell" in cells[0].metadata.tags  # Colab runs it; the book hides it
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["url"] == colab.REPOSITORY
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"


def test_the_published_run_of_a_github_repository():
    url = colab.pages_run_url("https://github.com/Some-One/idc-book.git")
    assert url == "https://some-one.github.io/idc-book/run/"
    assert colab.pages_run_url("https://gitlab.com/x") is None


def test_locally_the_cell_does_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDC_BOOK")}
    code = colab.setup_cell(6)
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True)
    assert list(tmp_path.iterdir()) == []


def test_each_chapter_fetches_what_it_reads_and_a_second_run_changes_nothing(
    shared_sample,
    book_run,  # noqa: F811
    served,
    tmp_path,
    monkeypatch,
):
    site, url = served
    published_run.publish_run(book_run, site / "run")
    monkeypatch.setenv("IDC_DATA_DIR", str(shared_sample))  # the sample is there already
    monkeypatch.setenv("IDC_RUN_URL", f"{url}/run/")
    home = tmp_path / "idc-book"
    run = home / "runs" / "sample"
    colab.setup(home, chapter=2, log=lambda *_: None)
    assert sorted(p.name for p in run.iterdir()) == ["run.json", "split.csv"]
    colab.setup(home, chapter=6, log=lambda *_: None)
    assert sorted(p.name for p in (run / "models").iterdir()) == ["cnn.json", "cnn.keras"]
    (run / "params.json").write_text('{"07_evaluation": {"profile": "sample"}}')
    said = []
    colab.setup(home, chapter=7, log=said.append)  # after a chapter ran here: no clash
    assert "07_evaluation" in (run / "params.json").read_text()
    colab.setup(home, chapter=7, log=said.append)  # the cell run twice
    assert said[-1].startswith("the published run: 0 files fetched")


@pytest.mark.slow
def test_on_colab_the_cell_installs_the_book_and_fetches_sample_and_run(
    shared_sample,
    book_run,  # noqa: F811
    served,
    tmp_path,
):
    site, url = served
    with zipfile.ZipFile(site / "idc-sample.zip", "w", zipfile.ZIP_STORED) as z:
        for entry in sample.read_manifest():
            z.write(shared_sample / entry.relpath, f"IDC_regular_ps50_idx5/{entry.relpath}")
    published_run.publish_run(book_run, site / "run")
    venv = tmp_path / "colab-venv"  # a clean Python: no idc_utils, no dependencies
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    home = tmp_path / "content" / "idc-book"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("IDC_", "VIRTUAL_ENV"))},
        "IDC_BOOK_SETUP": "1",
        "IDC_BOOK_REPO": ROOT.as_uri(),  # the checkout under test, cloned as from GitHub
        "IDC_BOOK_ROOT": str(home),
        "IDC_BOOK_EXTRAS": "",  # the package alone: what the cell itself needs is stdlib
        "IDC_BOOK_PIP_ARGS": "--no-deps",
        "IDC_SAMPLE_URL": f"{url}/idc-sample.zip",
        "IDC_RUN_URL": f"{url}/run/",
    }
    code = colab.setup_cell(6) + "\nprint('DATA', os.environ['IDC_DATA_DIR'])"
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (home / ".git").is_dir() and (home / "idc_utils" / "chapters" / "colab.py").exists()
    data = home / "data" / "idc-sample"
    assert f"DATA {data}" in done.stdout and "every SHA-256 checked" in done.stdout
    assert sum(1 for _ in data.rglob("*.png")) == len(sample.read_manifest())
    model = home / "runs" / "sample" / "models" / "cnn.keras"
    assert model.read_bytes() == (book_run / "models" / "cnn.keras").read_bytes()
