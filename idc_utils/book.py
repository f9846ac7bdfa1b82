"""Run the chapters with papermill under a profile, then render the Jupyter Book.

``python -m idc_utils book --profile sample`` (what ``make book`` calls):

1. checks that the data can be found (else says how to get it) before anything slow starts;
2. executes every notebook listed in ``_toc.yml``, in order, with papermill, passing the profile
   and any ``-p KEY VALUE`` overrides; executed copies go to ``runs/<profile>/notebooks/``;
3. fails when a cell raised or printed a traceback;
4. stages the book (``_config.yml``, ``_toc.yml``, ``book/`` and the executed chapters) in
   ``_build/src`` and runs ``jupyter-book build`` with warnings as errors into ``_build/html``.

The source notebooks in git carry no outputs; the book shows the executed copies.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from .data import resolve_data_dir
from .runs import Run, project_root

BOOK_FILES = ("_config.yml", "_toc.yml")
BOOK_DIRS = ("book",)
KERNEL_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "PYTHONWARNINGS": "ignore::DeprecationWarning,ignore::FutureWarning",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "TQDM_DISABLE": "1",
}


class ChapterError(RuntimeError):
    """A chapter failed to execute, or executed with error output."""


def chapter_notebooks(root: Path | None = None) -> list[Path]:
    """The notebooks of ``_toc.yml``, in reading order."""
    root = root or project_root()
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            f = node.get("file")
            if isinstance(f, str) and f.startswith("notebooks/"):
                found.append(f)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    paths = []
    for f in found:
        p = root / (f if f.endswith(".ipynb") else f + ".ipynb")
        if not p.exists():
            raise FileNotFoundError(f"_toc.yml lists {f} but {p} does not exist")
        paths.append(p)
    return paths


def error_outputs(nb) -> list[str]:
    """Tracebacks and error outputs in an executed notebook (cell number and first line)."""
    problems = []
    for k, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"cell {k}: {out.get('ename')}: {out.get('evalue')}")
            elif out.get("output_type") == "stream" and out.get("name") == "stderr":
                text = out.get("text", "")
                if "Traceback (most recent call last)" in text:
                    problems.append(f"cell {k}: traceback on stderr: {text.strip().splitlines()[-1]}")
    return problems


def run_chapters(
    profile: str = "sample",
    data_dir: str | None = None,
    overrides: dict | None = None,
    only: list[str] | None = None,
    root: Path | None = None,
    run_dir: str | Path | None = None,
    log=print,
) -> list[Path]:
    """Execute the chapters with papermill; returns the executed notebooks."""
    import nbformat
    import papermill as pm

    root = root or project_root()
    data_path = resolve_data_dir(data_dir)  # fail fast, with the how-to-get-data message
    run = Run.for_profile(profile, run_dir)
    os.environ.update(KERNEL_ENV)
    os.environ.setdefault("IDC_BOOK_ROOT", str(root))
    params = {"profile": profile, "data_dir": str(data_path), **(overrides or {})}
    if run_dir is not None:
        params["run_dir"] = str(run.dir)
    timings = run.read_json(run.dir / "book.json").get("chapters", {})
    executed = []
    for nb_path in chapter_notebooks(root):
        name = nb_path.stem
        out = run.dir / "notebooks" / nb_path.name
        if only and not any(name.startswith(o) for o in only):
            if out.exists():
                executed.append(out)
            continue
        wanted = _declared_parameters(nb_path)
        chapter_params = {k: v for k, v in params.items() if k in wanted}
        log(f"[book] {name}: running with {chapter_params}")
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(
                str(nb_path),
                str(out),
                parameters=chapter_params,
                kernel_name="python3",
                cwd=str(root / "notebooks"),
                progress_bar=False,
                log_output=False,
                # C-level logs (TensorFlow's startup lines) go to this process's stderr, not
                # into the chapter's outputs
                extra_arguments=["--IPKernelApp.capture_fd_output=False"],
            )
        except pm.PapermillExecutionError as exc:
            raise ChapterError(
                f"chapter {name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}\n"
                f"the executed notebook with the full traceback is {out}"
            ) from None
        seconds = time.perf_counter() - t0
        problems = error_outputs(nbformat.read(out, as_version=4))
        if problems:
            raise ChapterError(f"chapter {name} has error output: " + "; ".join(problems) + f" ({out})")
        timings[name] = {"seconds": round(seconds, 1), "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        log(f"[book] {name}: done in {seconds:.0f} s")
        executed.append(out)
    (run.dir / "book.json").write_text(
        json.dumps({"profile": profile, "data_dir": str(data_path), "chapters": timings}, indent=2)
    )
    return executed


def _declared_parameters(nb_path: Path) -> set[str]:
    """Names assigned in the notebook's ``parameters`` cell."""
    import ast

    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse(cell.source)
            return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                    if isinstance(t, ast.Name)}
    raise ValueError(f"{nb_path} has no cell tagged 'parameters'")


def stage_book(profile: str, root: Path | None = None, run_dir=None, out: Path | None = None) -> Path:
    """Copy the book sources and the executed chapters into ``<out>/_build/src``."""
    root = root or project_root()
    run = Run.for_profile(profile, run_dir)
    src = (out or root) / "_build" / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    for f in BOOK_FILES:
        shutil.copy2(root / f, src / f)
    for d in BOOK_DIRS:
        shutil.copytree(root / d, src / d)
    (src / "notebooks").mkdir()
    missing = []
    for nb_path in chapter_notebooks(root):
        done = run.dir / "notebooks" / nb_path.name
        if not done.exists():
            missing.append(nb_path.name)
            continue
        shutil.copy2(done, src / "notebooks" / nb_path.name)
    if missing:
        raise ChapterError(
            f"chapters not executed for profile {profile!r}: {missing}; run "
            f"`python -m idc_utils book --profile {profile}` without --build-only"
        )
    return src


def build_html(profile: str, root: Path | None = None, run_dir=None, out: Path | None = None,
               log=print) -> Path:
    """Render the staged book with warnings as errors into ``<out>/_build/html`` (``out``
    defaults to the project root); returns its ``index.html``."""
    root = root or project_root()
    out = Path(out) if out else root
    src = stage_book(profile, root, run_dir, out)
    html = out / "_build" / "html"
    if html.exists():
        shutil.rmtree(html)
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [
        str(exe) if exe.exists() else "jupyter-book", "build", str(src),
        "--path-output", str(out), "--warningiserror", "--keep-going", "--all", "-q",
    ]
    log("[book] " + " ".join(cmd[1:]))
    res = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if res.returncode != 0:
        sys.stderr.write(res.stdout[-6000:] + res.stderr[-6000:])
        raise ChapterError("jupyter-book build failed (warnings count as errors); see above")
    index = html / "index.html"
    if not index.exists():
        raise ChapterError(f"jupyter-book finished but {index} is missing")
    log(f"[book] built {index}")
    return index
