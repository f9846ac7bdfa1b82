"""The HTML: stage the book (``_config.yml``, ``_toc.yml``, ``book/`` and the executed chapters) in
``_build/src``, rewriting only files whose content changed, write the status page, and run
``jupyter-book build`` with warnings as errors into ``_build/html`` (Sphinx then re-renders only
changed pages); pages of chapters that left the book are removed."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from idc_utils.book.editions import EDITIONS, without_solutions
from idc_utils.book.notebooks import ChapterError, chapter_notebooks
from idc_utils.chapters.run_folder import Run
from idc_utils.core.paths import display_path, project_root

BOOK_FILES = ("_config.yml", "_toc.yml")


BOOK_DIRS = ("book",)


#: the libraries whose versions the status page lists
STATUS_PACKAGES = (
    "idc-book",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "numpy",
    "pandas",
    "scikit-learn",
    "imbalanced-learn",
    "gradio",
    "papermill",
    "jupyter-book",
    "sphinx-exercise",
)


def _sync_file(src: Path, dst: Path) -> bool:
    """Copy when the content differs (an unchanged file keeps its time, so Sphinx skips it)."""
    data = src.read_bytes()
    if dst.exists() and dst.read_bytes() == data:
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data)
    return True


def status_page(profile: str, chapters: dict, edition: str) -> str:
    """The status page: every chapter of this build, when and where it ran, how long, its peak
    memory, and the versions of the libraries that built it."""
    from importlib import metadata

    lines = [
        "# Status of this build",
        "",
        f"Profile `{profile}`, {edition} edition. Each chapter ran when its inputs last changed "
        "(`make book` reuses the others); the run-time line at the top of each chapter says "
        "the same.",
        "",
        "| chapter | ran on | minutes | peak memory (GB) | machine |",
        "|---|---|---:|---:|---|",
    ]
    for name, rec in chapters.items():
        lines.append(
            f"| {{doc}}`../notebooks/{name}` | {rec.get('finished', '?')[:16].replace('T', ' ')} "
            f"| {rec.get('seconds', 0) / 60:.1f} | {rec.get('peak_rss_mb', 0) / 1024:.2f} "
            f"| {rec.get('machine', '?')} |"
        )
    total = sum(rec.get("seconds", 0) for rec in chapters.values()) / 60
    lines += [
        "",
        f"All chapters together: {total:.1f} min of compute.",
        "",
        "## Library versions",
        "",
        "| package | version |",
        "|---|---|",
    ]
    for pkg in STATUS_PACKAGES:
        try:
            lines.append(f"| {pkg} | {metadata.version(pkg)} |")
        except metadata.PackageNotFoundError:
            continue
    lines += [
        "",
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}.",
        "",
    ]
    return "\n".join(lines)


def stage_book(
    profile: str,
    root: Path | None = None,
    run_dir=None,
    out: Path | None = None,
    edition: str = "teacher",
) -> Path:
    """Mirror the book sources and the executed chapters into ``<out>/_build/src``; write the
    status page and, for the student edition, a configuration that hides the solutions."""
    if edition not in EDITIONS:
        raise ValueError(f"unknown edition {edition!r}; choose one of {EDITIONS}")
    root = root or project_root()
    run = Run.for_profile(profile, run_dir or root / "runs" / profile)
    src = (out or root) / "_build" / "src"
    wanted: dict[Path, Path] = {src / f: root / f for f in BOOK_FILES}
    for d in BOOK_DIRS:
        for f in (root / d).rglob("*"):
            if f.is_file():
                wanted[src / f.relative_to(root)] = f
    missing = []
    for nb_path in chapter_notebooks(root):
        done = run.dir / "notebooks" / nb_path.name
        if not done.exists():
            missing.append(nb_path.name)
        wanted[src / "notebooks" / nb_path.name] = done
    if missing:
        raise ChapterError(
            f"chapters not executed for profile {profile!r}: {missing}; run "
            f"`python -m idc_utils book --profile {profile}` without --build-only"
        )
    src.mkdir(parents=True, exist_ok=True)
    for f in [p for p in src.rglob("*") if p.is_file() and p not in wanted]:
        f.unlink()  # a page removed from the book
    generated = {
        src / "book" / "status.md": status_page(
            profile,
            {  # the chapters of this table of contents (a renamed one leaves an old entry)
                name: info
                for name, info in run.read_json(run.dir / "book.json").get("chapters", {}).items()
                if name in {nb.stem for nb in chapter_notebooks(root)}
            },
            edition,
        ),
    }
    config = yaml.safe_load((root / "_config.yml").read_text())
    if edition == "student":
        # gated solutions (their code cells included) leave the staged chapters; sphinx-exercise
        # hides any solution written as one directive
        for dst, origin in list(wanted.items()):
            if dst.suffix == ".ipynb" and dst.parent == src / "notebooks":
                nb, _ = without_solutions(json.loads(origin.read_text()), origin.name)
                generated[dst] = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        config.setdefault("sphinx", {}).setdefault("config", {})["hide_solutions"] = True
        config["title"] = config.get("title", "") + " (student edition)"
    generated[src / "_config.yml"] = yaml.safe_dump(config, sort_keys=False)
    for dst, origin in wanted.items():
        if dst not in generated:
            _sync_file(origin, dst)
    for dst, text in generated.items():
        if not dst.exists() or dst.read_text() != text:
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(text)
    return src


SOURCE_SUFFIXES = (".ipynb", ".md")


def prune_removed_pages(src: Path, html: Path) -> list[Path]:
    """Delete the rendered pages (and their ``_sources`` copies) of chapters and pages that
    are no longer in the staged book: Sphinx's incremental build leaves them behind, and a
    published copy would still serve a renamed chapter under its old name."""
    removed = []
    for folder in ("notebooks", "book"):
        for page in sorted((html / folder).glob("*.html")):
            if any((src / folder / (page.stem + suf)).exists() for suf in SOURCE_SUFFIXES):
                continue
            removed.append(page)
            page.unlink()
            for copy in (html / "_sources" / folder).glob(page.stem + ".*"):
                copy.unlink()
    return removed


def edition_output(root: Path, edition: str) -> Path:
    """Where an edition is built: the teacher's in ``_build/html``, the student's in
    ``_build/student/_build/html``."""
    return root if edition == "teacher" else root / "_build" / "student"


def build_html(
    profile: str,
    root: Path | None = None,
    run_dir=None,
    out: Path | None = None,
    log=print,
    full: bool = False,
    edition: str = "teacher",
) -> Path:
    """Render the staged book, nitpicky and with warnings as errors, into ``<out>/_build/html``
    (``out`` defaults to the edition's folder); only changed pages are re-rendered unless
    ``full``. Returns its ``index.html``."""
    root = root or project_root()
    out = Path(out) if out else edition_output(root, edition)
    src = stage_book(profile, root, run_dir, out, edition)
    html = out / "_build" / "html"
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [
        str(exe) if exe.exists() else "jupyter-book",
        "build",
        str(src),
        "--path-output",
        str(out),
        "--nitpick",
        "--warningiserror",
        "--keep-going",
        "-q",
    ]
    if full:
        cmd.append("--all")
    log("[book] " + " ".join(cmd[1:]))
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if res.returncode != 0:
        # Sphinx keeps the pages it read; the next incremental build would not read them again
        # and so would not repeat their warnings. Forget them so that it fails the same way.
        shutil.rmtree(out / "_build" / ".doctrees", ignore_errors=True)
        sys.stderr.write(res.stdout[-6000:] + res.stderr[-6000:])
        raise ChapterError("jupyter-book build failed (warnings count as errors); see above")
    index = html / "index.html"
    if not index.exists():
        raise ChapterError(f"jupyter-book finished but {index} is missing")
    for gone in prune_removed_pages(src, html):
        log(f"[book] removed {display_path(gone)}: its chapter or page left the book")
    log(
        f"[book] built the {edition} edition: {display_path(index)} "
        f"in {time.perf_counter() - t0:.0f} s"
    )
    return index
