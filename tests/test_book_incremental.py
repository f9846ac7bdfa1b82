"""The book runner re-executes a chapter only when something it depends on changed.

A tiny book of two notebooks (no TensorFlow, seconds per kernel) in a temporary project: the
second reads what the first wrote. Each test changes one thing and checks which chapters run and
what the log says."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import ROOT

from idc_utils import book


def notebook(cells, needs=()):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["idc_book"] = {"needs": list(needs)}
    for kind, src, *tags in cells:
        cell = (
            nbformat.v4.new_code_cell(src) if kind == "code" else nbformat.v4.new_markdown_cell(src)
        )
        if tags:
            cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    return nb


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
                "from idc_utils import runs\nP = runs.chapter_params('a_first', globals())\n"
                "(P.run.dir / 'a.txt').write_text(str(P.seed * P.size))",
            ),
        ]
    )
    b = notebook(
        [
            ("code", PARAMS, "parameters"),
            (
                "code",
                "from idc_utils import runs\nP = runs.chapter_params('b_second', globals())\n"
                "print('read', (P.run.dir / 'a.txt').read_text())\n"
                "print('a stored study it would show: book/data/study.json')",
            ),
        ],
        needs=["a_first"],
    )
    nbformat.write(a, root / "notebooks" / "a_first.ipynb")
    nbformat.write(b, root / "notebooks" / "b_second.ipynb")
    return root, tiny_dataset


def build(project, **kw):
    root, data = project
    logs = []
    book.run_chapters("smoke", str(data), root=root, log=logs.append, **kw)
    status = {}
    for line in logs:
        name, _, rest = line.removeprefix("[book] ").partition(": ")
        if rest.startswith(("reused", "running")):
            status[name] = rest
    return status


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
    assert rec["a_first"]["outputs"] == ["a.txt"] and rec["a_first"]["peak_rss_mb"] > 0
    assert rec["a_first"]["depends_on"]["params"] == {"profile": "smoke", "seed": 1, "size": 3}
    assert "runs.py" in rec["a_first"]["depends_on"]["modules"]
    assert (root / "runs" / "smoke" / "logs" / "a_first.log").exists()

    edit_cell(a_nb, 0, lambda s: "# First, reworded\nIt writes a file.")  # prose only
    status = build(project)
    assert status["a_first"].startswith("reused") and "prose updated" in status["a_first"]
    assert status["b_second"].startswith("reused")
    done = nbformat.read(root / "runs" / "smoke" / "notebooks" / "a_first.ipynb", as_version=4)
    assert done.cells[0].source.startswith("# First, reworded")
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in done.cells)

    status = build(project, overrides={"size": 4})  # a parameter
    assert "parameters changed: size 3 -> 4" in status["a_first"]
    assert "it reads a_first, which ran in this build" in status["b_second"]

    runs_py = root / "idc_utils" / "runs.py"  # a module both import
    runs_py.write_text(runs_py.read_text() + "\n# a comment\n")
    status = build(project, overrides={"size": 4})
    assert all("idc_utils changed: runs.py" in s for s in status.values()), status
    slides_py = root / "idc_utils" / "slides.py"  # a module neither imports
    slides_py.write_text(slides_py.read_text() + "\n#\n")
    assert all(s.startswith("reused") for s in build(project, overrides={"size": 4}).values())

    edit_cell(b_nb, 1, lambda s: s + "\nprint('more')")  # code of the second chapter
    status = build(project, overrides={"size": 4})
    assert status["a_first"].startswith("reused") and "its code cells changed" in status["b_second"]

    study = root / "book" / "data" / "study.json"  # a stored study only the second mentions
    study.parent.mkdir(parents=True)
    study.write_text("{}")
    status = build(project, overrides={"size": 4})
    assert status["a_first"].startswith("reused")
    assert "stored results it reads changed: study.json" in status["b_second"]
    study.write_text('{"measured": "again"}')
    assert "study.json" in build(project, overrides={"size": 4})["b_second"]

    (root / "runs" / "smoke" / "a.txt").unlink()  # an output deleted
    status = build(project, overrides={"size": 4})
    assert "its outputs are missing: a.txt" in status["a_first"]

    extra = next(data.glob("101/0/*.png"))  # the data
    shutil.copy(extra, extra.with_name(extra.name.replace("_x", "_x9")))
    assert all("the data changed" in s for s in build(project, overrides={"size": 4}).values())
    forced = build(project, overrides={"size": 4}, force=True)
    assert all(s.startswith("running, because --force") for s in forced.values())


def test_module_closure_follows_imports_inside_the_package():
    code = "from idc_utils import predict\nimport numpy as np\n%matplotlib inline\n"
    mods = book.module_closure(code, ROOT / "idc_utils")
    assert {"__init__.py", "predict.py", "data.py", "infer.py"} <= set(mods)
    assert "app.py" not in mods and "book.py" not in mods
    assert book.module_closure("import numpy", ROOT / "idc_utils") == {}


def test_every_chapter_declares_what_it_reads_and_it_comes_earlier():
    names = [p.stem for p in book.chapter_notebooks()]
    for k, path in enumerate(book.chapter_notebooks()):
        needs = book.chapter_needs(nbformat.read(path, as_version=4))
        assert set(needs) <= set(names[:k]), (path.name, needs)
        if k:
            assert "01_eda" in needs, f"{path.name} reads the split of 01_eda"


def test_build_html_syncs_only_changed_files(tmp_path):
    src = tmp_path / "a.txt"
    dst = tmp_path / "out" / "a.txt"
    src.write_text("x")
    assert book._sync_file(src, dst) and not book._sync_file(src, dst)
    src.write_text("y")
    assert book._sync_file(src, dst) and dst.read_text() == "y"


def test_chapter_params_lists_parameters_once(tmp_path, monkeypatch):
    from idc_utils import runs

    ns = {
        "profile": "smoke",
        "data_dir": None,
        "run_dir": str(tmp_path),
        "seed": None,
        "image_size": 77,
        "np": object(),
        "P": None,
    }
    monkeypatch.setenv("IDC_DATA_DIR", "/somewhere/data")
    P = runs.chapter_params("x", ns)
    assert P.seed == runs.profile_params("smoke")["seed"] and P.image_size == 77
    assert set(P.values) == {"data_dir", "run_dir", "seed", "image_size"}
    t = P.table()
    assert (
        t.loc["data_dir", "value"] == "$IDC_DATA_DIR"
        and t.loc["image_size", "source"] == "papermill / caller"
    )
    assert Path(tmp_path).name in t.loc["run_dir", "value"]


def test_the_student_copy_drops_each_gated_solution_with_its_code():
    nb = notebook(
        [
            ("markdown", "```{exercise}\n:label: ex-a\nHow many?\n```"),
            ("markdown", "```{solution-start} ex-a\n:class: dropdown\n```"),
            ("code", "answer = 42"),
            ("markdown", "```{solution-end}\n```"),
            ("markdown", "After the exercise."),
        ]
    )
    kept, removed = book.without_solutions(nb, "a.ipynb")
    assert removed == 1
    assert ["".join(c["source"]) for c in kept["cells"]] == [
        "```{exercise}\n:label: ex-a\nHow many?\n```",
        "After the exercise.",
    ]
    assert len(nb.cells) == 5  # the teacher's notebook is untouched


@pytest.mark.parametrize(
    "cells, problem",
    [
        ([("markdown", "```{solution-start} ex-a\n```")], "never closed"),
        ([("markdown", "```{solution-end}\n```")], "never opened"),
        (
            [
                ("markdown", "```{solution-start} ex-a\n```"),
                ("markdown", "```{solution-start} ex-b\n```"),
            ],
            "inside the one opened at cell 0",
        ),
    ],
)
def test_unbalanced_solution_markers_name_the_notebook(cells, problem):
    with pytest.raises(book.ChapterError, match=rf"a\.ipynb: .*{problem}"):
        book.without_solutions(notebook(cells), "a.ipynb")


def test_every_chapter_has_balanced_solutions_and_exercises():
    for path in book.chapter_notebooks(ROOT):
        nb = json.loads(path.read_text())
        kept, removed = book.without_solutions(nb, path.name)
        assert removed >= 2, path.name
        assert not any("{solution" in "".join(c["source"]) for c in kept["cells"]), path.name


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
        with pytest.raises(book.ChapterError, match="warnings count as errors"):
            book.build_html("smoke", root=root, log=lambda _: None)
    (root / "book" / "intro.md").write_text("# Tiny\n\nNo reference now.\n")
    index = book.build_html("smoke", root=root, log=lambda _: None)
    assert "No reference now." in (index.parent / "book" / "intro.html").read_text()


def test_pages_of_chapters_that_left_the_book_are_removed_from_the_html(tmp_path):
    src, html = tmp_path / "src", tmp_path / "html"
    for rel in ("notebooks/01_eda.ipynb", "notebooks/08_dicomweb.ipynb", "book/intro.md"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text("x")
    pages = ["notebooks/01_eda", "notebooks/08_dicomweb", "notebooks/07_dicomweb", "book/intro"]
    for rel in pages:
        (html / f"{rel}.html").parent.mkdir(parents=True, exist_ok=True)
        (html / f"{rel}.html").write_text("<html/>")
        (html / "_sources" / f"{rel}.ipynb").parent.mkdir(parents=True, exist_ok=True)
        (html / "_sources" / f"{rel}.ipynb").write_text("x")
    removed = book.prune_removed_pages(src, html)
    assert removed == [html / "notebooks" / "07_dicomweb.html"]  # renamed to 08_dicomweb
    assert not (html / "_sources" / "notebooks" / "07_dicomweb.ipynb").exists()
    assert (html / "notebooks" / "08_dicomweb.html").exists()
    assert (html / "book" / "intro.html").exists()


def test_stored_studies_the_chapters_read_are_in_the_repository():
    """Chapter code names its stored studies as ``"book" / "data" / "<file>"``: each must exist
    and be committed (not git-ignored), or a fresh clone's chapter says the study is missing."""
    import re
    import subprocess

    named = set()
    for nb in book.chapter_notebooks(ROOT):
        code = book.code_source(nbformat.read(nb, as_version=4))
        named |= set(re.findall(r'"book" / "data" / "([^"]+)"', code))
    assert {"recipe_study.json", "learning_curve.json"} <= named
    for name in sorted(named):
        path = ROOT / "book" / "data" / name
        assert path.is_file(), f"{path} is missing: run the tool that writes it"
        assert set(book.stored_results(name, ROOT)) == {name}
        if (ROOT / ".git").exists() and shutil.which("git"):
            tracked = subprocess.run(
                ["git", "ls-files", "--error-unmatch", str(path)],
                cwd=ROOT,
                check=False,
                capture_output=True,
            ).returncode
            assert tracked == 0, f"{path} is not committed: a fresh clone would not have it"


def test_the_sample_profile_trains_a_recipe_the_stored_study_measured():
    """Chapter 6 marks the study's row of the recipe chapter 5 trains: a profile changed without
    measuring it would leave the book's recipe outside the lever table."""
    import json

    from idc_utils import recipe_study, runs, train

    study = json.loads((ROOT / "book" / "data" / "recipe_study.json").read_text())
    recipe = train.TrainConfig.for_transfer(runs.profile_params("sample")).as_dict()
    chosen = recipe_study.book_variant(study, json.loads(json.dumps(recipe)))
    assert chosen is not None, "the sample profile's recipe is not a row of the recipe study"
    assert chosen != "reference"  # the study's start; the profile took its validation choice
    d = study["variants"][chosen]["tta"]["val_auc_vs_reference"]
    assert d[1] > 0, f"{chosen} is not better than the reference on validation: {d}"
