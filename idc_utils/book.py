"""Run the chapters with papermill under a profile, reusing what has not changed; render the book.

``python -m idc_utils book --profile sample`` (what ``make book`` calls):

1. checks that the data can be found (else says how to get it) before anything slow starts;
2. works out, for every notebook of ``_toc.yml``, what its outputs depend on: its code cells, its
   resolved parameters, the ``idc_utils`` modules it imports (and what they import), the data
   fingerprint, and the chapters it reads from (``needs`` in the notebook's metadata);
3. **reuses** the executed notebook of the last build when none of that changed (a chapter whose
   prose alone changed gets the new prose without running), and **runs** it with papermill
   otherwise; ``--force`` runs everything. The log says, per chapter, "reused" or "ran" and why;
4. fails when a cell raised or printed a traceback;
5. stages the book (``_config.yml``, ``_toc.yml``, ``book/`` and the executed chapters) in
   ``_build/src``, rewriting only files whose content changed, and runs ``jupyter-book build``
   with warnings as errors into ``_build/html``; Sphinx then re-renders only changed pages.

``runs/<profile>/book.json`` records each chapter's dependency hashes, duration, peak memory,
the machine it ran on and the files it wrote. Trained models are reused separately, by their
model card (:func:`idc_utils.train.fit`), so a chapter that re-runs for another reason does not
retrain unless its training configuration or data changed.

The source notebooks in git carry no outputs; the book shows the executed copies.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .data import resolve_data_dir, scan
from .runs import PROFILE_FILE, Run, display_path, profile_params, project_root

BOOK_FILES = ("_config.yml", "_toc.yml")
BOOK_DIRS = ("book",)
PACKAGE = "idc_utils"
KERNEL_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "PYTHONWARNINGS": "ignore::DeprecationWarning,ignore::FutureWarning",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "TQDM_DISABLE": "1",
}
#: the markdown cell of a chapter that the runner fills with how long the chapter ran, and where
RUN_TIME_TAG = "run-time"
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
#: files of the run folder that several chapters write; not counted as one chapter's outputs
SHARED_RUN_FILES = ("book.json", "params.json", "metrics.json")


class ChapterError(RuntimeError):
    """A chapter failed to execute, or executed with error output."""


# ----------------------------------------------------------------------------- the chapters


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
                    last = text.strip().splitlines()[-1]
                    problems.append(f"cell {k}: traceback on stderr: {last}")
    return problems


def declared_parameters(nb) -> list[str]:
    """Names assigned in the notebook's ``parameters`` cell, in order."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse(cell.source)
            return [
                t.id
                for node in tree.body
                if isinstance(node, ast.Assign)
                for t in node.targets
                if isinstance(t, ast.Name)
            ]
    raise ValueError("the notebook has no cell tagged 'parameters'")


def chapter_needs(nb) -> list[str]:
    """The chapters whose artefacts this one reads (``metadata.idc_book.needs``)."""
    return list(nb.metadata.get("idc_book", {}).get("needs", []))


# ------------------------------------------------------------------- what a chapter depends on


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _code_lines(source: str) -> str:
    """Cell source without IPython magics and shell escapes, so that ``ast`` can read it."""
    return "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines())


def _imported_modules(tree: ast.AST, package: str, current: str | None = None) -> set[str]:
    """Modules of ``package`` that a module or notebook imports (inside functions too)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == package:
                    found.add(parts[1] if len(parts) > 1 else "__init__")
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.split(".")[0] == package:
                parts = node.module.split(".")
                if len(parts) > 1:
                    found.add(parts[1])
                else:  # from idc_utils import a, b
                    found.update(a.name for a in node.names)
                    found.add("__init__")
            elif node.level == 1 and current is not None:
                if node.module:  # from .x import y
                    found.add(node.module.split(".")[0])
                else:  # from . import x, y
                    found.update(a.name for a in node.names)
    return found


def module_closure(code: str, package_dir: Path) -> dict[str, str]:
    """``{module file: content hash}`` for every package module the code needs, transitively."""
    package = package_dir.name
    todo = _imported_modules(ast.parse(_code_lines(code)), package)
    if todo:
        todo.add("__init__")
    seen: dict[str, str] = {}
    while todo:
        name = todo.pop()
        path = package_dir / f"{name}.py"
        if name in seen or not path.exists():
            continue  # a name imported from __init__ (e.g. DISCLAIMER) is not a module
        text = path.read_bytes()
        seen[name] = _digest(text)
        todo |= _imported_modules(ast.parse(text), package, current=name) - set(seen)
    return {f"{k}.py": v for k, v in sorted(seen.items())}


STORED_RESULTS = Path("book") / "data"  # studies too long for a build, read by chapters


def stored_results(code: str, root: Path) -> dict[str, str]:
    """Hashes of the files in ``book/data`` whose names a chapter's code mentions (results of
    ``tools/recipe_study.py`` and ``tools/learning_curve.py``): a new study re-runs the chapter."""
    folder = root / STORED_RESULTS
    if not folder.is_dir():
        return {}
    return {
        f.name: hashlib.sha256(f.read_bytes()).hexdigest()[:16]
        for f in sorted(folder.iterdir())
        if f.is_file() and f.name in code
    }


@dataclass
class Dependencies:
    """Everything a chapter's outputs depend on, each part hashed, so that a change can be named."""

    code: str
    params: dict
    modules: dict
    data: str
    upstream: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)  # stored study results the code reads (book/data)

    def key(self) -> str:
        parts = (self.code, self.params, self.modules, self.data, self.upstream)
        return _digest(*parts, self.files) if self.files else _digest(*parts)

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "params": self.params,
            "modules": self.modules,
            "data": self.data,
            "upstream": self.upstream,
            "files": self.files,
        }

    def changes_since(self, old: dict) -> list[str]:
        """Why the chapter must run again, in words (empty: nothing changed)."""
        why = []
        if old.get("code") != self.code:
            why.append("its code cells changed")
        before = old.get("params", {})
        changed = [
            k for k in sorted(set(before) | set(self.params)) if before.get(k) != self.params.get(k)
        ]
        if changed:
            shown = ", ".join(
                f"{k} {before.get(k)!r} -> {self.params.get(k)!r}" for k in changed[:4]
            )
            why.append("parameters changed: " + shown + (" ..." if len(changed) > 4 else ""))
        mods = old.get("modules", {})
        touched = sorted(
            k for k in set(mods) | set(self.modules) if mods.get(k) != self.modules.get(k)
        )
        if touched:
            why.append(f"{PACKAGE} changed: " + ", ".join(touched))
        if old.get("data") != self.data:
            why.append("the data changed")
        files = old.get("files", {})
        redone = sorted(
            k for k in set(files) | set(self.files) if files.get(k) != self.files.get(k)
        )
        if redone:
            why.append("stored results it reads changed: " + ", ".join(redone))
        ups = old.get("upstream", {})
        moved = [k for k in self.upstream if ups.get(k) != self.upstream[k]]
        if moved:
            why.append("it reads chapters that changed: " + ", ".join(moved))
        return why


def resolve_chapter_params(nb, profile: str, overrides: dict, root: Path | None = None) -> dict:
    """The values a chapter will run with: overrides win, the profile fills the rest (what
    :func:`idc_utils.runs.chapter_params` does inside the kernel)."""
    prof = profile_params(profile, (root or project_root()) / PROFILE_FILE)
    out = {}
    for k in declared_parameters(nb):
        if k in ("data_dir", "run_dir"):
            continue  # the data enters by its fingerprint; the run folder is where book.json lives
        out[k] = profile if k == "profile" else overrides.get(k, prof.get(k))
    return out


def code_source(nb) -> str:
    return "\n# ---- cell\n".join(c.source for c in nb.cells if c.cell_type == "code")


# ----------------------------------------------------------------------------- reuse


def refresh_prose(source_nb, executed_nb):
    """The executed notebook with the source's markdown cells (same code cells, same outputs).
    Returns ``None`` when the code cells do not line up (then the chapter must run)."""
    import copy

    executed = [
        c
        for c in executed_nb.cells
        if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])
    ]
    injected = [c for c in executed_nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    src_code = [c for c in source_nb.cells if c.cell_type == "code"]
    if [c.source for c in src_code] != [c.source for c in executed]:
        return None
    out = copy.deepcopy(executed_nb)
    run_time = [c for c in executed_nb.cells if RUN_TIME_TAG in c.metadata.get("tags", [])]
    cells, k = [], 0
    for cell in source_nb.cells:
        if cell.cell_type == "code":
            cells.append(executed[k])
            k += 1
            if "parameters" in cell.metadata.get("tags", []):
                cells.extend(injected)
        elif RUN_TIME_TAG in cell.metadata.get("tags", []) and run_time:
            cells.append(copy.deepcopy(run_time[0]))  # written by the run, not the source
        else:
            cells.append(copy.deepcopy(cell))
    out.cells = cells
    return out


def _run_files(run_dir: Path) -> dict[str, int]:
    """Files of the run folder with their modification times (outputs of chapters)."""
    out = {}
    for p in run_dir.rglob("*"):
        rel = p.relative_to(run_dir).as_posix()
        if (
            p.is_file()
            and not rel.startswith(("notebooks/", "logs/"))
            and rel not in SHARED_RUN_FILES
            and not rel.endswith((".tmp", ".work"))
            and ".work/" not in rel
        ):
            out[rel] = p.stat().st_mtime_ns
    return out


class PeakMemory:
    """Samples the resident memory of this process's children (the chapter's kernel) in a
    thread; ``peak_mb`` is the largest total seen."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def __enter__(self):
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        try:
            import psutil
        except ImportError:  # pragma: no cover - psutil comes with the book extra
            return
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):  # a child may end while we look
                    total += child.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2**20, 1)


def cpu_model() -> str:
    """The processor's name, e.g. 'AMD EPYC 7763 64-Core Processor'."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names() -> list[str]:
    """The NVIDIA GPUs of this machine (``nvidia-smi``), or an empty list."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def machine_description() -> str:
    gpus = gpu_names()
    where = f"{cpu_model()}, {os.cpu_count()} cores"
    return where + (f"; {', '.join(gpus)}" if gpus else "; no GPU")


def run_time_text(entry: dict, profile: str) -> str:
    """The chapter's run-time line, from what the runner recorded."""
    minutes = entry["seconds"] / 60
    took = f"{minutes:.1f} min" if minutes >= 1 else f"{entry['seconds']:.0f} s"
    return (
        f"**Run time.** This chapter ran in {took} on {entry['machine']} with the profile "
        f"`{profile}` ({entry['finished'][:10]}); the {{doc}}`status page <../book/status>` lists "
        "every chapter of this build."
    )


def fill_run_time(nb, text: str) -> bool:
    """Write ``text`` into the cell tagged ``run-time``; False when the chapter has none."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and RUN_TIME_TAG in cell.metadata.get("tags", []):
            cell.source = text
            return True
    return False


# ----------------------------------------------------------------------------- running


def _kernel_manager(env: dict, log_path: Path):
    """A kernel manager that starts the chapter's kernel with ``env`` added to this process's
    environment (which stays untouched) and its standard error in ``log_path``: TensorFlow's C++
    start-up lines land there instead of in the terminal, and stay there to read."""
    from jupyter_client.manager import KernelManager

    class ChapterKernelManager(KernelManager):
        def start_kernel(self, **kw):
            kw.setdefault("env", {**os.environ, **env})
            kw.setdefault("stderr", open(log_path, "ab"))  # noqa: SIM115 - lives as long as the kernel
            return super().start_kernel(**kw)

    return ChapterKernelManager


def run_chapters(
    profile: str = "sample",
    data_dir: str | None = None,
    overrides: dict | None = None,
    only: list[str] | None = None,
    root: Path | None = None,
    run_dir: str | Path | None = None,
    force: bool = False,
    log=print,
) -> list[Path]:
    """Execute (or reuse) the chapters; returns the executed notebooks in reading order."""
    import nbformat
    import papermill as pm

    root = root or project_root()
    overrides = dict(overrides or {})
    data_path = resolve_data_dir(data_dir)  # fail fast, with the how-to-get-data message
    data_fp = scan(data_path).fingerprint
    run = Run.for_profile(profile, run_dir or root / "runs" / profile)
    record_path = run.dir / "book.json"
    record = run.read_json(record_path)
    if record.get("profile") not in (None, profile):
        record = {}
    chapters = dict(record.get("chapters", {}))
    kernel_env = {**KERNEL_ENV, "IDC_DATA_DIR": str(data_path), "IDC_BOOK_ROOT": str(root)}
    if force:
        kernel_env["IDC_FORCE_TRAIN"] = "1"
    keys: dict[str, str] = {}
    ran: set[str] = set()
    executed = []
    for nb_path in chapter_notebooks(root):
        name = nb_path.stem
        out = run.dir / "notebooks" / nb_path.name
        source = nbformat.read(nb_path, as_version=4)
        deps = Dependencies(
            code=_digest(code_source(source)),
            params=resolve_chapter_params(source, profile, overrides, root),
            modules=module_closure(code_source(source), root / PACKAGE),
            data=data_fp,
            upstream={
                n: keys.get(n, chapters.get(n, {}).get("key", "")) for n in chapter_needs(source)
            },
            files=stored_results(code_source(source), root),
        )
        keys[name] = deps.key()
        if only and not any(name.startswith(o) for o in only):
            if out.exists():
                executed.append(out)
            continue
        old = chapters.get(name, {})
        if force:
            why = ["--force"]
        elif not old or not out.exists():
            why = ["no executed copy from an earlier build"]
        elif "depends_on" not in old:
            why = ["the earlier build did not record what it depended on"]
        else:
            why = deps.changes_since(old.get("depends_on", {}))
            why += [
                f"it reads {n}, which ran in this build" for n in chapter_needs(source) if n in ran
            ]
        missing = [f for f in old.get("outputs", []) if not (run.dir / f).exists()]
        if missing:
            why.append("its outputs are missing: " + ", ".join(missing[:3]))
        if not why:
            if _prose_refreshed(source, out, nbformat):
                log(
                    f"[book] {name}: reused (code, parameters, {PACKAGE} and data unchanged); "
                    "prose updated from the source"
                )
            else:
                log(f"[book] {name}: reused (code, parameters, {PACKAGE} and data unchanged)")
            executed.append(out)
            continue
        log(f"[book] {name}: running, because " + "; ".join(why))
        entry = _execute(
            pm, nbformat, nb_path, out, source, run, profile, overrides, run_dir, root, kernel_env
        )
        entry.update(key=keys[name], depends_on=deps.as_dict(), reason=why)
        done = nbformat.read(out, as_version=4)
        if fill_run_time(done, run_time_text(entry, profile)):
            nbformat.write(done, out)
        chapters[name] = entry
        ran.add(name)
        log(
            f"[book] {name}: ran in {entry['seconds']:.0f} s (peak memory "
            f"{entry['peak_rss_mb']:,.0f} MB)"
        )
        executed.append(out)
        _write_record(record_path, profile, chapters)
    _write_record(record_path, profile, chapters)
    return executed


def _prose_refreshed(source, out: Path, nbformat) -> bool:
    """Put the source's markdown into the executed copy if it differs; True when it did."""
    done = nbformat.read(out, as_version=4)

    def prose(nb):
        return [
            c.source
            for c in nb.cells
            if c.cell_type != "code" and RUN_TIME_TAG not in c.metadata.get("tags", [])
        ]

    src_md, old_md = prose(source), prose(done)
    if src_md == old_md:
        return False
    fresh = refresh_prose(source, done)
    if fresh is None:
        return False
    nbformat.write(fresh, out)
    return True


def _execute(
    pm,
    nbformat,
    nb_path: Path,
    out: Path,
    source,
    run: Run,
    profile,
    overrides,
    run_dir,
    root,
    env: dict,
) -> dict:
    wanted = set(declared_parameters(source))
    params = {"profile": profile, **overrides}
    if run_dir is not None:
        params["run_dir"] = str(run.dir)
    chapter_params = {k: v for k, v in params.items() if k in wanted}
    before = _run_files(run.dir)
    log_path = (run.dir / "logs" / f"{nb_path.stem}.log").resolve()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("")
    t0 = time.perf_counter()
    try:
        with PeakMemory() as mem:
            pm.execute_notebook(
                str(nb_path),
                str(out),
                parameters=chapter_params,
                kernel_name="python3",
                cwd=str(root / "notebooks"),
                progress_bar=False,
                log_output=False,
                kernel_manager_class=_kernel_manager(env, log_path),
                # C-level output (TensorFlow's start-up lines) goes to the log, not into the
                # chapter;
                # the kernel's own warnings (e.g. about its loopback transport) are not for readers
                extra_arguments=[
                    "--IPKernelApp.capture_fd_output=False",
                    "--IPKernelApp.log_level=ERROR",
                ],
            )
    except pm.PapermillExecutionError as exc:
        raise ChapterError(
            f"chapter {nb_path.stem} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}\n"
            f"the executed notebook with the full traceback is {out}; the kernel's log is "
            f"{log_path}"
        ) from None
    seconds = time.perf_counter() - t0
    done = nbformat.read(out, as_version=4)
    pm_meta = done.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):  # the reader's repository, not the build machine
        if pm_meta.get(key):
            pm_meta[key] = display_path(pm_meta[key])
    nbformat.write(done, out)
    problems = error_outputs(done)
    if problems:
        raise ChapterError(
            f"chapter {nb_path.stem} has error output: " + "; ".join(problems) + f" ({out})"
        )
    after = _run_files(run.dir)
    outputs = sorted(f for f, t in after.items() if before.get(f) != t)
    return {
        "seconds": round(seconds, 1),
        "peak_rss_mb": mem.peak_mb,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": machine_description(),
        "python": platform.python_version(),
        "outputs": outputs,
    }


def _write_record(path: Path, profile: str, chapters: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"profile": profile, "chapters": chapters}, indent=2))
    tmp.replace(path)


# ----------------------------------------------------------------------------- the HTML


def _sync_file(src: Path, dst: Path) -> bool:
    """Copy when the content differs (an unchanged file keeps its time, so Sphinx skips it)."""
    data = src.read_bytes()
    if dst.exists() and dst.read_bytes() == data:
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data)
    return True


EDITIONS = ("teacher", "student")
SOLUTION_START = "{solution-start}"
SOLUTION_END = "{solution-end}"


def without_solutions(nb: dict, name: str = "notebook") -> tuple[dict, int]:
    """A copy of an executed notebook without its gated solutions: every cell from the one that
    opens a ``solution-start`` block to the one that closes it, the code cells and their outputs
    between included. Returns the copy and how many solutions it removed; unbalanced markers are
    an error naming the notebook and the cell."""
    kept, removed, opened_at = [], 0, None
    for i, cell in enumerate(nb.get("cells", [])):
        text = "".join(cell.get("source", ""))
        if opened_at is None and SOLUTION_START in text:
            if cell.get("cell_type") != "markdown":
                raise ChapterError(f"{name}: cell {i} opens a solution but is not markdown")
            opened_at = i
        if opened_at is None:
            if SOLUTION_END in text:
                raise ChapterError(f"{name}: cell {i} closes a solution that was never opened")
            kept.append(cell)
            continue
        if i > opened_at and SOLUTION_START in text:
            raise ChapterError(
                f"{name}: cell {i} opens a solution inside the one opened at cell {opened_at}; "
                "close it with a ```{solution-end}``` cell first"
            )
        if SOLUTION_END in text:
            opened_at, removed = None, removed + 1
    if opened_at is not None:
        raise ChapterError(
            f"{name}: the solution opened at cell {opened_at} is never closed; add a markdown "
            "cell with ```{solution-end}```"
        )
    return {**nb, "cells": kept}, removed


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


def publish(
    html: Path,
    remote: str = "origin",
    branch: str = "gh-pages",
    root: Path | None = None,
    message: str | None = None,
    log=print,
) -> None:
    """Push a built book to the ``branch`` of ``remote`` (GitHub Pages serves it from there) with
    ghp-import: the branch holds the HTML alone, with ``.nojekyll`` so that ``_static/`` is
    served."""
    root = root or project_root()
    html = Path(html)
    if not (html / "index.html").exists():
        raise ChapterError(f"{html} holds no built book: run `make book` first")
    exe = Path(sys.executable).with_name("ghp-import")
    msg = message or f"book built {time.strftime('%Y-%m-%d %H:%M')}"
    cmd = [
        str(exe) if exe.exists() else "ghp-import",
        "--no-jekyll",
        "--push",
        "--force",
        "--remote",
        remote,
        "--branch",
        branch,
        "--message",
        msg,
        str(html),
    ]
    res = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if res.returncode != 0:
        raise ChapterError(f"ghp-import failed: {res.stderr.strip() or res.stdout.strip()}")
    log(f"[book] published {display_path(html)} to {remote} {branch}")
