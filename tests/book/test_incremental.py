"""The book runner re-executes a chapter only when something it depends on changed.

A tiny book of two notebooks (no TensorFlow, seconds per kernel) in a temporary project: the
second reads what the first wrote. Each test changes one thing and checks which chapters run and
what the log says."""

from __future__ import annotations

import json
import shutil

import nbformat
import pytest
import yaml
from conftest import ROOT
from notebook_helpers import notebook

from idc_utils.book import dependencies, notebooks, runner, site
from idc_utils.core.digests import file_sha256

PARAMS = 'profile = "smoke"\ndata_dir = None\nrun_dir = None\nseed = None\nsize = None\n'


@pytest.fixture
def project(tmp_path, tiny_dataset):
    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    shutil.copytree(
        ROOT / "idc_utils", root / "idc_utils", ignore=shutil.ignore_patterns("__pycache__")
    )
    (root / "idc_utils" / "profiles.yml").write_text(
        yaml.safe_dump({"smoke": {"seed": 1, "size": 3}})
    )
    (root / "_toc.yml").write_text(
        yaml.safe_dump(
            {
                "format": "jb-book",
                "root": "intro",
                "chapters": [{"file": "notebooks/a_first"}, {"file": "notebooks/b_second"}],
            }
        )
    )
    a = notebook(
        [
            ("markdown", "# First\nIt writes a file."),
            ("code", PARAMS, "parameters"),
            (
                "code",
                "from idc_utils.chapters import params\n"
                "P = params.chapter_params('a_first', globals())\n"
                "(P.run.dir / 'a.txt').write_text(str(P.seed * P.size))",
            ),
        ]
    )
    b = notebook(
        [
            ("code", PARAMS, "parameters"),
            (
                "code",
                "from idc_utils.chapters import dicomweb_figures, params\n"
                "from idc_utils.serving import dicomweb\n"
                "P = params.chapter_params('b_second', globals())\n"
                "print('read', (P.run.dir / 'a.txt').read_text())\n"
                "print('a stored study it would show: book/data/study.json')",
            ),
        ],
        needs=["a_first"],
    )
    nbformat.write(a, root / "notebooks" / "a_first.ipynb")
    nbformat.write(b, root / "notebooks" / "b_second.ipynb")
    return root, tiny_dataset


def set_profile(root, **values):
    """Change the project's ``smoke`` profile (what the book's own parameters come from)."""
    path = root / "idc_utils" / "profiles.yml"
    profiles = yaml.safe_load(path.read_text())
    profiles["smoke"].update(values)
    path.write_text(yaml.safe_dump(profiles))


def build(project, **kw):
    root, data = project
    logs = []
    runner.run_chapters("smoke", str(data), root=root, log=logs.append, **kw)
    status = {}
    for line in logs:
        name, _, rest = line.removeprefix("[book] ").partition(": ")
        if rest.startswith(("reused", "running")):
            status[name] = rest
    return status


def touch(root, module):
    """Edit a module of the project's copy of the package (a comment at its end)."""
    path = root / "idc_utils" / module
    path.write_text(path.read_text() + "\n# edited\n")


def edit_cell(path, k, change):
    nb = nbformat.read(path, as_version=4)
    nb.cells[k].source = change(nb.cells[k].source)
    nbformat.write(nb, path)


def test_each_change_reruns_exactly_what_depends_on_it(project):
    """One scenario, build after build (each build checks the previous one's record)."""
    root, data = project
    a_nb, b_nb = root / "notebooks" / "a_first.ipynb", root / "notebooks" / "b_second.ipynb"
    status = build(project)
    assert all(s.startswith("running, because no executed copy") for s in status.values()), status

    status = build(project)  # nothing changed
    assert all(s.startswith("reused") for s in status.values()), status
    rec = json.loads((root / "runs" / "smoke" / "book.json").read_text())["chapters"]
    assert list(rec["a_first"]["outputs"]) == ["a.txt"] and rec["a_first"]["peak_rss_mb"] > 0
    assert rec["a_first"]["outputs"]["a.txt"] == file_sha256(root / "runs" / "smoke" / "a.txt")
    assert rec["a_first"]["depends_on"]["params"] == {"profile": "smoke", "seed": 1, "size": 3}
    assert "chapters/params.py" in rec["a_first"]["depends_on"]["modules"]
    assert "serving/dicomweb.py" not in rec["a_first"]["depends_on"]["modules"]
    assert (root / "runs" / "smoke" / "logs" / "a_first.log").exists()

    edit_cell(a_nb, 0, lambda s: "# First, reworded\nIt writes a file.")  # prose only
    status = build(project)
    assert status["a_first"].startswith("reused") and "prose updated" in status["a_first"]
    assert status["b_second"].startswith("reused")
    done = nbformat.read(root / "runs" / "smoke" / "notebooks" / "a_first.ipynb", as_version=4)
    assert done.cells[0].source.startswith("# First, reworded")
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in done.cells)

    set_profile(root, size=4)  # a parameter of the book's profile
    status = build(project)
    assert "parameters changed: size 3 -> 4" in status["a_first"]
    assert "it reads a_first, which ran in this build" in status["b_second"]

    touch(root, "chapters/run_folder.py")  # a module both import (through chapters/params.py)
    status = build(project)
    assert all("idc_utils changed: chapters/run_folder.py" in s for s in status.values()), status
    touch(root, "serving/app/ui.py")  # a module neither imports
    assert all(s.startswith("reused") for s in build(project).values())
    for edited in ("serving/dicomweb.py", "chapters/dicomweb_figures.py"):
        touch(root, edited)  # the DICOMweb code; the second chapter's figure code
        status = build(project)
        assert status["a_first"].startswith("reused"), status
        assert f"idc_utils changed: {edited}" in status["b_second"], status

    edit_cell(b_nb, 1, lambda s: s + "\nprint('more')")  # code of the second chapter
    status = build(project)
    assert status["a_first"].startswith("reused") and "its code cells changed" in status["b_second"]

    study = root / "book" / "data" / "study.json"  # a stored study only the second mentions
    study.parent.mkdir(parents=True)
    study.write_text("{}")
    status = build(project)
    assert status["a_first"].startswith("reused")
    assert "stored results it reads changed: study.json" in status["b_second"]
    study.write_text('{"measured": "again"}')
    assert "study.json" in build(project)["b_second"]

    (root / "runs" / "smoke" / "a.txt").unlink()  # an output deleted
    status = build(project)
    assert "its outputs are missing: a.txt" in status["a_first"]

    extra = next(data.glob("101/0/*.png"))  # the data
    shutil.copy(extra, extra.with_name(extra.name.replace("_x", "_x9")))
    assert all("the data changed" in s for s in build(project).values())
    forced = build(project, force=True)
    assert all(s.startswith("running, because --force") for s in forced.values())


def test_module_closure_follows_imports_inside_the_package():
    code = "from idc_utils.serving import predict\nimport numpy as np\n%matplotlib inline\n"
    mods = dependencies.module_closure(code, ROOT / "idc_utils")
    # predict imports decode at the top and slide context inside a function; the parents' too
    assert {"__init__.py", "serving/__init__.py", "serving/predict.py"} <= set(mods)
    assert {"data/decode.py", "models/inference.py", "evaluation/slide_context.py"} <= set(mods)
    assert not any(m.startswith(("serving/app/", "book/", "training/")) for m in mods), mods
    assert dependencies.module_closure("import numpy", ROOT / "idc_utils") == {}


def test_an_import_the_tracking_cannot_resolve_fails_loudly(project):
    root, _ = project
    with pytest.raises(dependencies.UnresolvedImportError, match="cell 1, line 1.*slides"):
        dependencies.module_closure("from idc_utils import slides", root / "idc_utils")
    b_nb = root / "notebooks" / "b_second.ipynb"  # a chapter that imports a moved module
    edit_cell(b_nb, 1, lambda s: "import numpy\nfrom idc_utils.chapters import runs\n" + s)
    with pytest.raises(
        dependencies.UnresolvedImportError, match="b_second.ipynb, code cell 2, line 2: .*runs"
    ):
        build(project)
    edit_cell(b_nb, 1, lambda s: s.split("\n", 2)[2])
    with pytest.raises(dependencies.UnresolvedImportError, match="gone"):
        dependencies.module_closure("from idc_utils.data.mosaic import gone", root / "idc_utils")
    helper = root / "idc_utils" / "chapters" / "run_folder.py"  # one both chapters import
    helper.write_text(helper.read_text() + "\n\ndef later():\n    from idc_utils import runs\n")
    with pytest.raises(
        dependencies.UnresolvedImportError, match="idc_utils.chapters.run_folder, line .*runs"
    ):
        build(project)


def test_every_chapter_declares_what_it_reads_and_it_comes_earlier():
    names = [p.stem for p in notebooks.chapter_notebooks()]
    for k, path in enumerate(notebooks.chapter_notebooks()):
        needs = notebooks.chapter_needs(nbformat.read(path, as_version=4))
        assert set(needs) <= set(names[:k]), (path.name, needs)
        if k:
            assert "01_eda" in needs, f"{path.name} reads the split of 01_eda"


def test_build_html_syncs_only_changed_files(tmp_path):
    src = tmp_path / "a.txt"
    dst = tmp_path / "out" / "a.txt"
    src.write_text("x")
    assert site._sync_file(src, dst) and not site._sync_file(src, dst)
    src.write_text("y")
    assert site._sync_file(src, dst) and dst.read_text() == "y"


@pytest.mark.book
def test_a_failed_page_build_fails_again_until_fixed(project):
    """Sphinx keeps what it read in a failed build; the next incremental build must still fail."""
    root, _ = project
    (root / "book").mkdir()
    (root / "book" / "intro.md").write_text("# Tiny\n\nSee {ref}`a-missing-label`.\n")
    (root / "_config.yml").write_text(
        yaml.safe_dump(
            {
                "title": "Tiny",
                "only_build_toc_files": True,
                "execute": {"execute_notebooks": "off"},
            }
        )
    )
    build(project)
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    toc = {**toc, "root": "book/intro", "chapters": toc["chapters"][:1]}  # the one with a title
    (root / "_toc.yml").write_text(yaml.safe_dump(toc))
    for _ in range(2):
        with pytest.raises(notebooks.ChapterError, match="warnings count as errors"):
            site.build_html("smoke", root=root, log=lambda _: None)
    (root / "book" / "intro.md").write_text("# Tiny\n\nNo reference now.\n")
    index = site.build_html("smoke", root=root, log=lambda _: None)
    assert "No reference now." in (index.parent / "book" / "intro.html").read_text()


def test_pages_of_chapters_that_left_the_book_are_removed_from_the_html(tmp_path):
    src, html = tmp_path / "src", tmp_path / "html"
    for rel in ("notebooks/01_eda.ipynb", "notebooks/11_dicomweb.ipynb", "book/intro.md"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text("x")
    pages = ["notebooks/01_eda", "notebooks/11_dicomweb", "notebooks/07_dicomweb", "book/intro"]
    for rel in pages:
        (html / f"{rel}.html").parent.mkdir(parents=True, exist_ok=True)
        (html / f"{rel}.html").write_text("<html/>")
        (html / "_sources" / f"{rel}.ipynb").parent.mkdir(parents=True, exist_ok=True)
        (html / "_sources" / f"{rel}.ipynb").write_text("x")
    removed = site.prune_removed_pages(src, html)
    assert removed == [html / "notebooks" / "07_dicomweb.html"]  # renamed to 11_dicomweb
    assert not (html / "_sources" / "notebooks" / "07_dicomweb.ipynb").exists()
    assert (html / "notebooks" / "11_dicomweb.html").exists()
    assert (html / "book" / "intro.html").exists()


def run_papermill(root, data, tmp_path, monkeypatch, **parameters):
    """The chapter ``a_first`` run as a reader would: plain papermill, with ``-p`` values."""
    import papermill as pm

    monkeypatch.setenv("IDC_BOOK_ROOT", str(root))
    monkeypatch.setenv("IDC_DATA_DIR", str(data))
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(
        str(root / "notebooks" / "a_first.ipynb"),
        str(out),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(root / "notebooks"),
        progress_bar=False,
    )
    return nbformat.read(out, as_version=4)


def book_files(run):
    """The book run's artefacts, byte for byte (what an experiment must leave alone)."""
    skip = ("notebooks", "logs", "experiments")
    return {
        p.relative_to(run).as_posix(): p.read_bytes()
        for p in run.rglob("*")
        if p.is_file() and p.relative_to(run).parts[0] not in skip
    }


def test_experiments_never_write_the_books_run(project, tmp_path, monkeypatch):
    root, data = project
    book = root / "runs" / "smoke"
    build(project)
    before = book_files(book)

    done = run_papermill(root, data, tmp_path, monkeypatch, size=5)  # papermill -p size 5
    assert book_files(book) == before
    [exp] = (book / "experiments").glob("a_first-*")
    assert (exp / "a.txt").read_text() == "5"  # seed 1 x size 5
    shown = "".join(o.get("text", "") for c in done.cells for o in c.get("outputs", []))
    assert "Experiment (size=5): writing to runs/smoke/experiments/a_first-" in shown
    assert (
        run_papermill(root, data, tmp_path, monkeypatch, size=5)
        and len(list((book / "experiments").glob("a_first-*"))) == 1
    )  # the same overrides, the same folder

    logs = []
    runner.run_chapters("smoke", str(data), root=root, log=logs.append, overrides={"size": 6})
    assert any("experiment (size=6): writing to runs/smoke/experiments/book-" in m for m in logs)
    [whole] = (book / "experiments").glob("book-*")
    assert (whole / "a.txt").read_text() == "6" and (
        whole / "notebooks" / "b_second.ipynb"
    ).exists()
    assert book_files(book) == before
    status = build(project)  # the book itself: nothing of it changed
    assert all(s.startswith("reused") for s in status.values()), status


def test_an_artefact_changed_behind_the_books_back_is_rebuilt(project):
    root, _ = project
    book = root / "runs" / "smoke"
    build(project)
    (book / "a.txt").write_text("overwritten by hand")
    status = build(project)
    assert "its outputs were changed since it ran (not by the book): a.txt" in status["a_first"]
    assert "it reads a_first, which ran in this build" in status["b_second"]
    assert (book / "a.txt").read_text() == "3"
    assert all(s.startswith("reused") for s in build(project).values())


def test_an_unknown_parameter_is_an_error_naming_the_valid_ones(project, tmp_path, monkeypatch):
    import papermill as pm

    root, data = project
    with pytest.raises(ValueError, match="unknown parameter 'not_a_key'.*seed, size"):
        build(project, overrides={"not_a_key": 1})
    assert not (root / "runs" / "smoke" / "book.json").exists()  # failed before any chapter
    with pytest.raises(pm.PapermillExecutionError) as err:
        run_papermill(root, data, tmp_path, monkeypatch, not_a_key=1)
    assert "unknown parameter 'not_a_key'" in str(err.value)
    assert "profile, data_dir, run_dir, seed, size" in str(err.value)


def test_a_hung_cell_fails_the_chapter_after_the_profiles_timeout(project):
    root, _ = project
    set_profile(root, chapter_timeout_s=3)
    edit_cell(
        root / "notebooks" / "a_first.ipynb", 2, lambda s: s + "\nimport time\ntime.sleep(60)"
    )
    with pytest.raises(notebooks.ChapterError, match="longer than the profile's chapter_timeout_s"):
        build(project)


def test_book_with_overrides_does_not_render_the_books_pages_from_the_experiment(
    project, monkeypatch, capsys
):
    from idc_utils import cli

    root, data = project
    monkeypatch.setenv("IDC_BOOK_ROOT", str(root))
    assert cli.main(["book", "--profile", "smoke", "--data-dir", str(data), "-p", "size", "7"]) == 0
    said = capsys.readouterr().out
    assert "an experiment: its executed chapters are in" in said and "experiments/book-" in said
    assert not (root / "_build").exists()


def test_an_output_reused_by_a_later_run_is_still_watched(project):
    """A chapter that re-runs but reuses what it wrote before (as a training reuses its model)
    keeps that file among its outputs: overwriting it later is still noticed."""
    root, _ = project
    book = root / "runs" / "smoke"
    build(project)
    keep = "p = P.run.dir / 'a.txt'\nif not p.exists():\n    p.write_text(str(P.seed * P.size))"
    edit_cell(root / "notebooks" / "a_first.ipynb", 2, lambda s: s.rsplit("\n", 1)[0] + "\n" + keep)
    assert "its code cells changed" in build(project)["a_first"]  # a.txt not rewritten
    (book / "a.txt").write_text("a 1-epoch model")
    assert "its outputs were changed since it ran" in build(project)["a_first"]


def test_a_published_folder_named_by_a_parameter_is_a_dependency(tmp_path):
    """Chapter 10 loads the generator published in the folder ``gen_checkpoint`` names: a new
    generator there must re-run the chapter, as a new stored study does."""
    from idc_utils.book import dependencies

    folder = tmp_path / "book" / "data" / "generator"
    folder.mkdir(parents=True)
    (folder / "generator.json").write_text("{}")
    (folder / "generator.weights.h5").write_bytes(b"weights")
    (tmp_path / "book" / "data" / "study.json").write_text("{}")
    params = {"gen_checkpoint": "book/data/generator", "seed": 1}
    first = dependencies.stored_results("print('study.json')", tmp_path, params)
    assert set(first) == {
        "study.json",
        "generator/generator.json",
        "generator/generator.weights.h5",
    }
    assert set(dependencies.stored_results("print()", tmp_path, {"gen_checkpoint": None})) == set()
    (folder / "generator.weights.h5").write_bytes(b"new weights")
    second = dependencies.stored_results("print('study.json')", tmp_path, params)
    assert second["generator/generator.weights.h5"] != first["generator/generator.weights.h5"]
    assert second["study.json"] == first["study.json"]


def test_the_run_time_line_reads_as_a_sentence():
    from idc_utils.book import notebooks

    entry = {
        "seconds": 186.0,
        "machine": "Intel(R) Xeon(R) Processor, 2 cores; no GPU",
        "finished": "2026-12-03T03:00:00",
    }
    text = notebooks.run_time_text(entry, "sample")
    assert text.startswith("**Run time.** This chapter ran in 3.1 min with the profile `sample`")
    assert "on a machine with Intel(R) Xeon(R) Processor, 2 cores, no GPU." in text
    assert "{doc}`status page <../book/status>`" in text
