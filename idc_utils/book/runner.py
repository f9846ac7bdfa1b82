"""Run the chapters with papermill under a profile, re-running only what changed.

``python -m idc_utils book --profile sample`` (what ``make book`` calls):

1. checks that the data can be found (else says how to get it) before anything slow starts;
2. works out, for every notebook of ``_toc.yml``, what its outputs depend on: its code cells, its
   resolved parameters, the ``idc_utils`` modules it imports (and what they import), the data
   fingerprint, and the chapters it reads from (``needs`` in the notebook's metadata);
3. **reuses** the executed notebook of the last build when none of that changed (a chapter whose
   prose alone changed gets the new prose without running), and **runs** it with papermill
   otherwise; ``--force`` runs everything. The log says, per chapter, "reused" or "ran" and why;
4. fails when a cell raised or printed a traceback;
5. and :mod:`idc_utils.book.site` renders the HTML.

``runs/<profile>/book.json`` records each chapter's dependency hashes, duration, peak memory,
the machine it ran on and the files it wrote. Trained models are reused separately, by their
model card (:mod:`idc_utils.training.reuse`), so a chapter that re-runs for another reason does not
retrain unless its training configuration or data changed.

The source notebooks in git carry no outputs; the book shows the executed copies.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from idc_utils.book.dependencies import PACKAGE, Dependencies, chapter_dependencies
from idc_utils.book.machine import PeakMemory, machine_description
from idc_utils.book.notebooks import (
    ChapterError,
    chapter_needs,
    chapter_notebooks,
    declared_parameters,
    error_outputs,
    fill_run_time,
    run_time_text,
    update_prose,
)
from idc_utils.chapters.run_folder import Run
from idc_utils.core.paths import display_path, project_root
from idc_utils.data.scan import scan
from idc_utils.data.sources import resolve_data_dir

KERNEL_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "PYTHONWARNINGS": "ignore::DeprecationWarning,ignore::FutureWarning",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "TQDM_DISABLE": "1",
}


#: files of the run folder that several chapters write; not counted as one chapter's outputs
SHARED_RUN_FILES = ("book.json", "params.json", "metrics.json")


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
    data_fp = scan(data_path).files_digest
    run = Run.for_profile(profile, run_dir or root / "runs" / profile)
    record_path = run.dir / "book.json"
    record = run.read_json(record_path)
    chapters = dict(record.get("chapters", {})) if record.get("profile") in (None, profile) else {}
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
        deps = chapter_dependencies(
            source, nb_path.name, profile, overrides, root, data_fp, keys, chapters
        )
        keys[name] = deps.key()
        if only and not any(name.startswith(o) for o in only):
            if out.exists():
                executed.append(out)
            continue
        why = _reasons_to_run(source, deps, chapters.get(name, {}), out, run, ran, force)
        if not why:
            refreshed = update_prose(source, out)
            log(
                f"[book] {name}: reused (code, parameters, {PACKAGE} and data unchanged)"
                + ("; prose updated from the source" if refreshed else "")
            )
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


def _reasons_to_run(source, deps: Dependencies, old: dict, out: Path, run, ran, force) -> list:
    """Why the chapter must run in this build, in words (empty: its executed copy is reused)."""
    if force:
        why = ["--force"]
    elif not old or not out.exists():
        why = ["no executed copy from an earlier build"]
    elif "depends_on" not in old:
        why = ["the earlier build did not record what it depended on"]
    else:
        why = deps.changes_since(old.get("depends_on", {}))
        why += [f"it reads {n}, which ran in this build" for n in chapter_needs(source) if n in ran]
    missing = [f for f in old.get("outputs", []) if not (run.dir / f).exists()]
    if missing:
        why.append("its outputs are missing: " + ", ".join(missing[:3]))
    return why


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
