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
from idc_utils.chapters.profiles import PROFILE_FILE, profile_params
from idc_utils.chapters.run_folder import Run, experiment_dir, seed_experiment
from idc_utils.core.digests import file_sha256
from idc_utils.core.paths import display_path, project_root
from idc_utils.data.scan import scan
from idc_utils.data.sources import resolve_data_dir

KERNEL_ENV = {
    "KERAS_BACKEND": "tensorflow",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "PYTHONWARNINGS": "ignore::DeprecationWarning,ignore::FutureWarning",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "TQDM_DISABLE": "1",
}


#: files of the run folder that several chapters write; not counted as one chapter's outputs
SHARED_RUN_FILES = ("book.json", "params.json", "metrics.json")


def _output_hashes(run_dir: Path, files) -> dict[str, str]:
    """``{file: sha256}`` of a chapter's outputs, so that a later build notices a file changed or
    deleted behind its back."""
    return {f: file_sha256(run_dir / f) for f in sorted(files) if (run_dir / f).is_file()}


def _run_files(run_dir: Path) -> dict[str, int]:
    """Files of the run folder with their modification times (outputs of chapters)."""
    out = {}
    for p in run_dir.rglob("*"):
        rel = p.relative_to(run_dir).as_posix()
        if (
            p.is_file()
            and not rel.startswith(("notebooks/", "logs/", "experiments/"))
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
    from jupyter_client.manager import AsyncKernelManager

    # the asynchronous manager, as nbclient's default: with the blocking one, a cell's timeout
    # is never checked while the cell runs
    class ChapterKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            kw.setdefault("env", {**os.environ, **env})
            kw.setdefault("stderr", open(log_path, "ab"))  # noqa: SIM115 - lives as long as the kernel
            return await super().start_kernel(**kw)

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

    root = root or project_root()
    overrides = dict(overrides or {})
    # -p run_dir / -p data_dir: the folders themselves, not parameters of an experiment
    run_dir = run_dir or overrides.pop("run_dir", None)
    data_dir = data_dir or overrides.pop("data_dir", None)
    notebooks = chapter_notebooks(root)
    check_overrides(overrides, notebooks, only)  # an unknown key fails before anything slow
    data_path = resolve_data_dir(data_dir)  # fail fast, with the how-to-get-data message
    data_fp = scan(data_path).files_digest
    prof = profile_params(profile, root / PROFILE_FILE)
    if run_dir is None:
        run_dir = _experiment_folder(root / "runs" / profile, overrides, prof, log)
    run = Run.for_profile(profile, run_dir or root / "runs" / profile)
    timeout = prof.get("chapter_timeout_s")
    record_path = run.dir / "book.json"
    record = run.read_json(record_path)
    chapters = dict(record.get("chapters", {})) if record.get("profile") in (None, profile) else {}
    kernel_env = {**KERNEL_ENV, "IDC_DATA_DIR": str(data_path), "IDC_BOOK_ROOT": str(root)}
    if force:
        kernel_env["IDC_FORCE_TRAIN"] = "1"
    params = {"profile": profile, **overrides}  # what papermill passes (each chapter its own)
    if run_dir is not None:
        params["run_dir"] = str(run.dir)
    keys: dict[str, str] = {}
    ran: set[str] = set()
    executed = []
    for nb_path in notebooks:
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
        entry = _execute(nb_path, out, source, run, params, root, kernel_env, timeout)
        entry.update(key=keys[name], depends_on=deps.as_dict(), reason=why)
        _watch_outputs(name, entry["outputs"], chapters, run.dir)
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


def _experiment_folder(book_run: Path, overrides: dict, prof: dict, log) -> Path | None:
    """For ``-p`` values that differ from the profile, the experiment's own run folder (seeded
    with the book run's artefacts); ``None`` for the book's run itself."""
    changed = {k: v for k, v in overrides.items() if v != prof.get(k)}
    if not changed:
        return None
    exp = experiment_dir(book_run, "book", changed)
    seed_experiment(book_run, exp, changed)
    log(
        f"[book] experiment ({', '.join(f'{k}={v!r}' for k, v in changed.items())}): "
        f"writing to {display_path(exp)}; the book's run {display_path(book_run)} is "
        "read, never written"
    )
    return exp


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
    outputs = old.get("outputs", [])
    missing = [f for f in outputs if not (run.dir / f).exists()]
    if missing:
        why.append("its outputs are missing: " + ", ".join(missing[:3]))
    if isinstance(outputs, dict):  # builds before hashes were recorded kept a list of names
        present = [f for f in outputs if f not in missing]
        now = _output_hashes(run.dir, present)
        altered = [f for f in present if now.get(f) != outputs[f]]
        if altered:
            why.append(
                "its outputs were changed since it ran (not by the book): " + ", ".join(altered[:3])
            )
    return why


def _watch_outputs(name: str, outputs: dict, chapters: dict, run_dir: Path) -> None:
    """The files chapter ``name`` is answerable for, after it ran: what it wrote now, plus what
    it wrote in an earlier run and reused (a model loaded, not retrained), at its present hash;
    an earlier chapter's record of a file it rewrote takes the new hash."""
    earlier = chapters.get(name, {}).get("outputs", [])
    outputs.update(_output_hashes(run_dir, [f for f in earlier if f not in outputs]))
    _rewritten_by(name, outputs, chapters)


def _rewritten_by(name: str, outputs: dict, chapters: dict) -> None:
    """A file that chapter ``name`` rewrote and an earlier chapter also wrote: the earlier
    chapter's record takes the new hash, since the book itself changed the file."""
    for other, entry in chapters.items():
        theirs = entry.get("outputs")
        if other != name and isinstance(theirs, dict):
            for f in set(theirs) & set(outputs):
                theirs[f] = outputs[f]


def running_parameters(notebooks: list[Path], only=None) -> set[str]:
    """The parameters declared by the chapters that run (those whose names start with one of
    ``only``; all without it)."""
    import nbformat

    valid: set[str] = set()
    for nb_path in notebooks:
        if not only or any(nb_path.stem.startswith(o) for o in only):
            valid |= set(declared_parameters(nbformat.read(nb_path, as_version=4)))
    return valid


def check_overrides(overrides: dict, notebooks: list[Path], only=None) -> None:
    """Every ``-p`` key must be a parameter of a chapter that runs; else an error naming it and
    the valid keys, before any chapter starts."""
    valid = running_parameters(notebooks, only)
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ValueError(
            f"unknown parameter {', '.join(map(repr, unknown))}: no chapter that runs declares it; "
            f"the chapters' parameters are {', '.join(sorted(valid))}"
        )


def _execute(
    nb_path: Path,
    out: Path,
    source,
    run: Run,
    params: dict,
    root: Path,
    env: dict,
    timeout: float | None = None,
) -> dict:
    import nbformat
    import papermill as pm

    wanted = set(declared_parameters(source))
    chapter_params = {k: v for k, v in params.items() if k in wanted}
    before = _run_files(run.dir)
    log_path = (run.dir / "logs" / f"{nb_path.stem}.log").resolve()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("")
    t0 = time.perf_counter()
    with PeakMemory() as mem:
        _papermill(pm, nb_path, out, chapter_params, root, env, log_path, timeout)
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
    outputs = _output_hashes(run.dir, [f for f, t in after.items() if before.get(f) != t])
    return {
        "seconds": round(seconds, 1),
        "peak_rss_mb": mem.peak_mb,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": machine_description(),
        "python": platform.python_version(),
        "outputs": outputs,
    }


def _papermill(pm, nb_path, out, parameters, root, env, log_path, timeout) -> None:
    """Execute one chapter with papermill; a failed or timed-out cell is a ChapterError that
    says where the executed notebook and the kernel's log are."""
    from nbclient.exceptions import CellTimeoutError

    try:
        pm.execute_notebook(
            str(nb_path),
            str(out),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(root / "notebooks"),
            progress_bar=False,
            log_output=False,
            # a hung cell fails the chapter instead of hanging the build (the profile's
            # chapter_timeout_s, applied to each cell)
            execution_timeout=int(timeout) if timeout else None,
            kernel_manager_class=_kernel_manager(env, log_path),
            # C-level output (TensorFlow's start-up lines) goes to the log, not into the
            # chapter; the kernel's own warnings (its loopback transport) are not for readers
            extra_arguments=[
                "--IPKernelApp.capture_fd_output=False",
                "--IPKernelApp.log_level=ERROR",
            ],
        )
    except CellTimeoutError:
        raise ChapterError(
            f"chapter {nb_path.stem}: a cell ran longer than the profile's chapter_timeout_s "
            f"({timeout} s) and was stopped; the executed notebook is {out}, the kernel's log "
            f"{log_path}. If the machine is just slow, raise chapter_timeout_s in "
            "idc_utils/profiles.yml"
        ) from None
    except pm.PapermillExecutionError as exc:
        raise ChapterError(
            f"chapter {nb_path.stem} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}\n"
            f"the executed notebook with the full traceback is {out}; the kernel's log is "
            f"{log_path}"
        ) from None


def _write_record(path: Path, profile: str, chapters: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"profile": profile, "chapters": chapters}, indent=2))
    tmp.replace(path)
