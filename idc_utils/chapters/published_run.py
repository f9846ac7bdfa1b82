"""A run folder published next to the book, and fetched from it: start from any chapter.

Chapters 7 to 11 read what chapters 1, 5 and 6 wrote: the split and the trained models. Training
them takes about half an hour on a slow laptop. The Pages workflow therefore publishes, beside
the HTML, the sample run's

    split.csv, metrics.json, params.json     the split, the numbers, what each chapter ran with
    models/<name>.keras, .json, .history.csv the models, their cards and training curves
    run.json                                 which profile and data produced them
    glued.json                               the numbers each chapter put in its text (when
                                             published with them: ``run compare`` reads it)
    SHA256SUMS                               one line per file: its SHA-256 and its path

(:func:`publish_run`), and ``python -m idc_utils run fetch --from URL`` downloads them into a run
folder, checking every hash (:func:`fetch_run`). A file whose hash differs is refused and not
kept; a file already in the run folder with other contents is not overwritten unless asked
(``glued.json`` excepted: the published numbers always replace a fetched copy).

Later chapters then run without training; ``make book`` reuses the fetched models too, since
their cards match the training that would run (same data, split and configuration).
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from idc_utils.core.digests import file_sha256
from idc_utils.core.paths import display_path

#: the checksum file of a published run
SUMS = "SHA256SUMS"

#: what a published run holds, relative to the run folder (models/ whole: cards and curves too)
PUBLISHED = ("split.csv", "metrics.json", "params.json", "models")

#: files every chapter adds a section to: a local copy keeps its sections and gains the
#: published ones it lacks, instead of being a clash
MERGED = ("metrics.json", "params.json")

#: the numbers of the run's chapters (written by ``run publish``, read by ``run compare``): a
#: fetch always replaces a local copy, since every build measures chapter 2's speed anew
GLUED_FILE = "glued.json"
REPLACED = (GLUED_FILE,)

#: what is never published: a training's resume state, half-written files
SKIPPED = (".work", ".tmp", ".part")


class PublishedRunError(RuntimeError):
    """A published run could not be fetched or checked: the message names the file and the fix."""


def publish_run(run_dir: Path, out: Path, extra: dict[str, str] | None = None) -> list[str]:
    """Copy the run's split, models, cards and metrics into ``out`` with a ``SHA256SUMS`` file;
    returns the published paths. ``run.json`` says which profile and data (the digest of its
    files, from the book's record) produced them; ``extra`` adds text files (name: contents)."""
    run_dir, out = Path(run_dir), Path(out)
    if not (run_dir / "split.csv").exists() or not list((run_dir / "models").glob("*.keras")):
        raise PublishedRunError(
            f"{display_path(run_dir)} holds no split and models to publish: build the book first "
            "(make book)"
        )
    files = []
    for name in PUBLISHED:
        src = run_dir / name
        found = sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src]
        files += [
            p
            for p in found
            if p.exists()
            and not any(part.endswith(SKIPPED) for part in p.relative_to(run_dir).parts)
        ]
    if out.exists():  # only what this run holds: nothing left from an earlier publication
        shutil.rmtree(out)
    out.mkdir(parents=True)
    book = run_dir / "book.json"
    record = json.loads(book.read_text()) if book.exists() else {}
    data = {e.get("depends_on", {}).get("data") for e in record.get("chapters", {}).values()}
    about = {"profile": record.get("profile"), "data_files_digest": sorted(data - {None})}
    (out / "run.json").write_text(json.dumps(about, indent=2) + "\n")
    lines = [f"{file_sha256(out / 'run.json')}  run.json"]
    for name, text in (extra or {}).items():
        (out / name).write_text(text, encoding="utf-8")
        lines.append(f"{file_sha256(out / name)}  {name}")
    for src in files:
        rel = src.relative_to(run_dir).as_posix()
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out / rel)
        lines.append(f"{file_sha256(src)}  {rel}")
    (out / SUMS).write_text("\n".join(lines) + "\n")
    return [line.split("  ", 1)[1] for line in lines]


def read_sums(text: str, where: str) -> dict[str, str]:
    """``{path: sha256}`` from a SHA256SUMS text; a malformed line or an unsafe path is an error."""
    sums = {}
    for k, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, _, rel = line.partition("  ")
        parts = PurePosixPath(rel).parts
        unsafe = rel.startswith("/") or ".." in parts or "\\" in rel or ":" in rel
        if len(digest) != 64 or not rel or unsafe:
            raise PublishedRunError(
                f"{where}, line {k}: not '<sha256>  <relative path>': {line[:80]!r}; "
                "is this the address of a published run?"
            )
        sums[rel] = digest.lower()
    if not sums:
        raise PublishedRunError(f"{where} lists no files; is this the address of a published run?")
    return sums


@dataclass
class FetchReport:
    """What :func:`fetch_run` did: files downloaded, files already there with the right hash."""

    run_dir: Path
    downloaded: list[str]
    kept: list[str]
    bytes: int


def fetch_run(
    url: str,
    run_dir: Path,
    overwrite: bool = False,
    timeout: float = 60,
    only: tuple[str, ...] | None = None,
) -> FetchReport:
    """Download the run published at ``url`` (a folder holding ``SHA256SUMS``, over http(s) or
    ``file:``) into ``run_dir``, checking every file's SHA-256; ``only``: the files whose paths
    start with one of these.

    A file already in ``run_dir`` with the right hash is kept; one with other contents (a model
    you trained) is an error unless ``overwrite``, except ``metrics.json`` and ``params.json``,
    which keep their sections and gain the published ones they lack. A download with the wrong
    hash is deleted and is an error naming the file, both hashes and what to do."""
    if "://" not in url:  # a folder on this machine
        url = Path(url).resolve().as_uri()
    base = url if url.endswith("/") else url + "/"
    run_dir = Path(run_dir)
    sums = read_sums(_get(base + SUMS, timeout).decode(errors="replace"), base + SUMS)
    if only:
        sums = {rel: d for rel, d in sums.items() if rel.startswith(only) or rel == "run.json"}
    differs = [
        rel
        for rel, digest in sums.items()
        if (run_dir / rel).exists() and file_sha256(run_dir / rel) != digest
    ]
    clash = [rel for rel in differs if rel not in MERGED + REPLACED]
    if clash and not overwrite:
        raise PublishedRunError(
            f"{display_path(run_dir)} already holds other versions of {', '.join(clash[:3])}"
            + (f" and {len(clash) - 3} more" if len(clash) > 3 else "")
            + ": fetch into another folder (--run-dir), or replace them with --overwrite"
        )
    downloaded, kept, size = [], [], 0
    for rel, digest in sums.items():
        dst = run_dir / rel
        if not dst.resolve().is_relative_to(run_dir.resolve()):
            raise PublishedRunError(f"{base + SUMS} names {rel!r}, outside the run folder")
        if dst.exists() and rel not in differs:
            kept.append(rel)
            continue
        data = _get(base + urllib.parse.quote(rel), timeout)
        part = dst.with_name(dst.name + ".part")
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(data)
        actual = file_sha256(part)
        if actual != digest:
            part.unlink()
            raise PublishedRunError(
                f"{base + rel}: SHA-256 {actual}, but {SUMS} says {digest}; the file was not "
                "kept. The download was damaged or the published run changed while fetching: "
                "fetch again"
            )
        if rel in MERGED and dst.exists() and not _merge_sections(part, dst):
            kept.append(rel)  # it held every published section already
            continue
        if part.exists():
            part.replace(dst)
        downloaded.append(rel)
        size += len(data)
    return FetchReport(run_dir, downloaded, kept, size)


def _merge_sections(published: Path, local: Path) -> bool:
    """Add to the local JSON file the published sections it lacks (its own sections win);
    whether it gained any."""
    mine, theirs = json.loads(local.read_text()), json.loads(published.read_text())
    published.unlink()
    merged = {**theirs, **mine}
    if merged == mine:
        return False
    tmp = local.with_name(local.name + ".tmp")
    tmp.write_text(json.dumps(merged, indent=2, sort_keys=True))
    tmp.replace(local)
    return True


def _get(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PublishedRunError(
            f"could not download {url}: {reason}; check the address (the folder that holds "
            f"{SUMS}, e.g. https://<you>.github.io/idc-book/run/) and your connection"
        ) from None
