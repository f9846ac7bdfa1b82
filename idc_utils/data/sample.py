"""The book's teaching sample: 8,035 patches of the Kaggle set, listed in a manifest that ships
with the package (each file's path, patient, label, size and SHA-256), and copied out of anyone's
Kaggle download, a folder at any of its levels or its .zip, with every file's bytes checked."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import re
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from idc_utils.core.errors import DataError
from idc_utils.core.wording import many
from idc_utils.data.names import parse_patch_name

#: the manifest's file, beside this module (package data)
MANIFEST_NAME = "sample_manifest.csv.gz"
#: the manifest's columns, in order
COLUMNS = ["relpath", "patient_id", "label", "bytes", "sha256"]
#: the folder of patient folders in the Kaggle download
KAGGLE_FOLDER = "IDC_regular_ps50_idx5"
#: problems an error message names before it counts the rest
SHOWN = 5
#: how deep below ``--from`` the patient folders are looked for
MAX_DEPTH = 8
REDOWNLOAD = (
    "The download is incomplete or damaged: re-download the Kaggle set (make data, or "
    "python -m idc_utils data download) and run this again."
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class SampleFile:
    """One file of the sample: its path ``<patient>/<0|1>/<name>`` (the Kaggle layout), its
    patient and label, its size in bytes and the SHA-256 of its bytes (hex)."""

    relpath: str
    patient_id: str
    label: int
    size: int
    sha256: str


@dataclass(frozen=True)
class SampleReport:
    """What :func:`make_sample` did: the sample's folder, the files it copied there, the files
    already there whose bytes were right, and the source it read (``None``: none was needed)."""

    out: Path
    copied: int
    kept: int
    source: str | None

    def summary(self) -> str:
        total = self.copied + self.kept
        if not self.copied:
            return (
                f"{self.out} already holds the {total:,} files of the teaching sample, each "
                "checked against its SHA-256; nothing copied"
            )
        kept = f"; {self.kept:,} were already there" if self.kept else ""
        return (
            f"copied {self.copied:,} files from {self.source} into {self.out}{kept}; all "
            f"{total:,} files of the teaching sample checked against their SHA-256"
        )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _layout_problem(relpath: str) -> str | None:
    """Why ``relpath`` is not ``<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png`` with the
    folders agreeing with the name; ``None`` when it is."""
    parts = relpath.split("/")
    parsed = parse_patch_name(parts[-1])
    if len(parts) != 3 or parsed is None:
        return "not <patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png"
    if parts[0] != parsed.patient_id or parts[1] != str(parsed.label):
        return "its folders disagree with its name (patient or label)"
    return None


def _entry(relpath: str, data: bytes) -> SampleFile:
    parsed = parse_patch_name(relpath)
    return SampleFile(relpath, parsed.patient_id, parsed.label, len(data), sha256(data))


def _fail(head: str, problems: list[str], tail: str) -> DataError:
    shown = "\n".join(f"  {p}" for p in problems[:SHOWN])
    more = f"\n  ... and {len(problems) - SHOWN:,} more" if len(problems) > SHOWN else ""
    return DataError(f"{head}\n{shown}{more}\n{tail}")


def _row_problem(row: dict) -> str | None:
    if None in row or None in row.values():
        return f"not {len(COLUMNS)} fields"
    why = _layout_problem(row["relpath"])
    if why:
        return why
    parsed = parse_patch_name(row["relpath"])
    if row["patient_id"] != parsed.patient_id or row["label"] != str(parsed.label):
        return "patient_id or label disagrees with the name"
    if not row["bytes"].isdigit() or not _SHA256.match(row["sha256"]):
        return "bytes is not a whole number or sha256 is not 64 hex digits"
    return None


def read_manifest(path: str | os.PathLike | None = None) -> list[SampleFile]:
    """The sample's files, from ``path`` (default: the manifest shipped with the package), each
    row checked: its name parses, its folders, patient and label agree, its hash is well formed."""
    fix = "Regenerate it from the sample with: python tools/sample_manifest.py FOLDER"
    if path:
        where, raw = Path(path), Path(path).read_bytes()
    else:
        where = Path("idc_utils/data") / MANIFEST_NAME
        raw = (resources.files(__package__) / MANIFEST_NAME).read_bytes()
    try:
        text = gzip.decompress(raw).decode()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{where} is not a gzipped CSV ({exc}). {fix}") from exc
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames != COLUMNS:
        raise DataError(f"{where} has the columns {reader.fieldnames}, not {COLUMNS}. {fix}")
    entries, problems = [], []
    for line, row in enumerate(reader, start=2):
        why = _row_problem(row)
        if why:
            problems.append(f"line {line}: {row['relpath']}: {why}")
            continue
        label, size = int(row["label"]), int(row["bytes"])
        entries.append(SampleFile(row["relpath"], row["patient_id"], label, size, row["sha256"]))
    if problems:
        raise _fail(f"{where} has {many(len(problems), 'bad row')}:", problems, fix)
    return entries


def _files_under(folder: Path) -> list[str]:
    """Every file under ``folder`` as a relative posix path, sorted; hidden and macOS system
    files are left out (the dataset scan ignores them too)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
        rel = Path(dirpath).relative_to(folder).as_posix()
        for fn in filenames:
            if not fn.startswith("."):
                out.append(fn if rel == "." else f"{rel}/{fn}")
    return sorted(out)


def build_manifest(folder: str | os.PathLike) -> list[SampleFile]:
    """The manifest of a folder in the Kaggle layout: every file hashed, sorted by path. A file
    that is not a Kaggle patch in its patient and label folder is an error that names it."""
    folder = Path(folder)
    rels = _files_under(folder)
    problems = [f"{r}: {why}" for r in rels if (why := _layout_problem(r))]
    if problems:
        raise _fail(
            f"{folder} is not a sample in the Kaggle layout ({many(len(problems), 'file')} "
            "outside it):",
            problems,
            "Keep only <patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png files there.",
        )
    if not rels:
        raise DataError(f"{folder} holds no files: point it at the teaching sample's folder.")
    return [_entry(r, (folder / r).read_bytes()) for r in rels]


def write_manifest(entries: list[SampleFile], path: str | os.PathLike) -> Path:
    """Write ``entries`` as a gzipped CSV; the same entries give the same bytes (no timestamp),
    so a regenerated manifest shows no change in git."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for e in sorted(entries, key=lambda e: e.relpath):
        writer.writerow([e.relpath, e.patient_id, e.label, e.size, e.sha256])
    path = Path(path)
    path.write_bytes(gzip.compress(buf.getvalue().encode(), compresslevel=9, mtime=0))
    return path


class _FolderFiles:
    """Files of a Kaggle download read from its folder of patient folders (``root``)."""

    def __init__(self, root: Path):
        self.root = root
        self.where = str(root)

    def read(self, relpath: str) -> bytes | None:
        path = self.root / relpath
        return path.read_bytes() if path.is_file() else None


class _ZipFiles:
    """Files of a Kaggle download read from its .zip, found by ``<patient>/<0|1>/<name>`` at
    any depth; where a file is there twice, the copy under ``IDC_regular_ps50_idx5`` is read.
    Only the files asked for are decompressed."""

    def __init__(self, path: Path, wanted: set[str]):
        self.zip = zipfile.ZipFile(path)
        self.where = str(path)
        rank: dict[str, tuple] = {}
        self.members: dict[str, str] = {}
        for name in self.zip.namelist():
            parts = name.split("/")
            key = "/".join(parts[-3:])
            if key in wanted:
                r = (KAGGLE_FOLDER not in parts, len(parts))
                if key not in rank or r < rank[key]:
                    rank[key], self.members[key] = r, name

    def read(self, relpath: str) -> bytes | None:
        name = self.members.get(relpath)
        return None if name is None else self.zip.read(name)


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(Path(e.path) for e in os.scandir(folder) if e.is_dir())
    except OSError:
        return []


def find_patient_root(folder: str | os.PathLike, patients: set[str]) -> Path | None:
    """The folder of patient folders in a Kaggle download: the shallowest folder under
    ``folder`` that holds one of ``patients``'s folders (its ``IDC_regular_ps50_idx5`` when that
    holds them too, as ``sources.find_dataset_root`` prefers); ``None`` when there is none."""
    level = [Path(folder)]
    for _ in range(MAX_DEPTH):
        for d in level:
            if {p.name for p in _subfolders(d)} & patients:
                inner = d / KAGGLE_FOLDER
                held = {p.name for p in _subfolders(inner)} & patients
                return inner if held else d
        level = [s for d in level for s in _subfolders(d) if not s.name.startswith(".")]
    return None


def open_download(path: str | os.PathLike, entries: list[SampleFile]):
    """The reader of a Kaggle download (folder or .zip) for the files of ``entries``."""
    path = Path(path).expanduser()
    hint = (
        "--from takes the Kaggle download: the folder kagglehub printed (any level of it, e.g. "
        f"its {KAGGLE_FOLDER}) or the archive's .zip."
    )
    if not path.exists():
        raise DataError(f"Kaggle download not found: {path} does not exist. {hint}")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise DataError(f"{path} is a file but not a .zip archive. {hint}")
        return _ZipFiles(path, {e.relpath for e in entries})
    root = find_patient_root(path, {e.patient_id for e in entries})
    if root is None:
        raise DataError(
            f"{path} holds none of the sample's patient folders (e.g. {entries[0].patient_id}/) "
            f"within {MAX_DEPTH} levels. {hint}"
        )
    return _FolderFiles(root)


def to_copy(out: str | os.PathLike, entries: list[SampleFile]) -> list[SampleFile]:
    """The entries whose file in ``out`` is absent or has other bytes than the manifest says.
    ``out`` holding files that are not in the sample is an error that names them (the folder
    would not be the sample; nothing is deleted)."""
    out = Path(out)
    if not out.exists():
        return list(entries)
    if not out.is_dir():
        raise DataError(f"{out} is a file: --out takes a folder for the sample.")
    known = {e.relpath for e in entries}
    extra = [r for r in _files_under(out) if r not in known]
    if extra:
        raise _fail(
            f"{out} holds {many(len(extra), 'file')} not in the teaching sample:",
            extra,
            "Move them away, or give --out an empty or new folder; nothing was copied.",
        )
    todo = []
    for e in entries:
        path = out / e.relpath
        if not path.is_file() or sha256(path.read_bytes()) != e.sha256:
            todo.append(e)
    return todo


def _fetch(files, todo: list[SampleFile]) -> dict[str, bytes]:
    """The bytes of every file of ``todo`` read from ``files``, each checked; a missing or
    different file is an error that names the first few and counts them all."""
    got, problems = {}, []
    for e in todo:
        data = files.read(e.relpath)
        if data is None:
            problems.append(f"missing    {e.relpath}")
        elif sha256(data) != e.sha256:
            problems.append(
                f"different  {e.relpath} (SHA-256 {sha256(data)[:12]}…, {len(data):,} bytes; "
                f"the manifest says {e.sha256[:12]}…, {e.size:,} bytes)"
            )
        else:
            got[e.relpath] = data
    if problems:
        raise _fail(
            f"{files.where}: {len(problems):,} of the teaching sample's {len(todo):,} files "
            "are missing or different there:",
            problems,
            f"Nothing was copied. {REDOWNLOAD}",
        )
    return got


def make_sample(
    source: str | os.PathLike,
    out: str | os.PathLike,
    entries: list[SampleFile] | None = None,
) -> SampleReport:
    """Copy the teaching sample (``entries``, default: the shipped manifest) from a Kaggle
    download (``source``: folder or .zip) into ``out`` in the Kaggle layout. Every file is
    checked against its SHA-256 before anything is written; files already in ``out`` with the
    right bytes are kept, so a re-run into a complete folder reads no source and copies nothing."""
    entries = read_manifest() if entries is None else entries
    out = Path(out).expanduser().resolve()
    todo = to_copy(out, entries)
    if not todo:
        return SampleReport(out, copied=0, kept=len(entries), source=None)
    files = open_download(source, entries)
    for relpath, data in _fetch(files, todo).items():
        path = out / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part")  # hidden: never taken for a patch
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return SampleReport(out, copied=len(todo), kept=len(entries) - len(todo), source=files.where)
