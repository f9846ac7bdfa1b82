"""Find, parse, validate and load IDC patches; cache the decoded patches.

The Kaggle "Breast Histopathology Images" set (Janowczyk & Madabhushi 2016; Mooney 2018)
stores one PNG per 50x50 patch as ``<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png``.
This module turns such a folder (or a zip of it) into

* a **manifest**: one row per usable patch (``path, patient_id, x, y, label, width, height,
  note, i``), where ``i`` indexes the decoded-image array;
* a **problems** table: every file that was not used, with the reason and the fix, so that
  nothing is dropped silently;
* an ``images`` array of uint8 RGB patches, shape ``(N, 50, 50, 3)``, decoded once and kept in a
  memory-mapped cache so that a second run does not decode 277k PNGs again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import time
import zipfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

PATCH_SIZE = 50
#: image files that ``predict`` and the app read as patches (decoded by PIL)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".dcm")
#: the two classes of the dataset, by label
CLASS_NAMES = {0: "IDC-", 1: "IDC+"}
#: value used to pad edge patches (white, like the glass around the tissue)
PAD_VALUE = 255
#: bump when decoding rules change, so old caches are not reused
CACHE_VERSION = 1
#: refuse to decode anything larger than this many pixels (decompression bombs)
MAX_PIXELS = 50_000_000

KAGGLE_DATASET = "paultimothymooney/breast-histopathology-images"

HOW_TO_GET_DATA = f"""\
How to get the data:
  * the 8,035-patch teaching sample next to this project:   export IDC_DATA_DIR=../shared/idc-sample
  * the full Kaggle set (277,524 patches, needs a Kaggle account and network):
        make data            # downloads {KAGGLE_DATASET} with kagglehub
        export IDC_DATA_DIR=<the folder it prints>
  * or pass it directly: make book DATA_DIR=/path/to/IDC_regular_ps50_idx5
    (papermill: -p data_dir /path/to/folder; a .zip of the Kaggle download works too)"""

PATCH_NAME_RE = re.compile(
    r"^(?P<patient>\d+)_idx5_x(?P<x>\d+)_y(?P<y>\d+)_class(?P<label>[01])\.png$",
    re.IGNORECASE,
)

MANIFEST_COLUMNS = ["path", "patient_id", "x", "y", "label", "width", "height", "note", "i"]
PROBLEM_COLUMNS = ["path", "problem", "fix"]


class DataError(Exception):
    """Bad or missing input data. The message names the file(s) and the fix."""


class DataNotFoundError(DataError):
    """The dataset folder is not set or does not exist."""


class PatchDecodeError(DataError):
    """One file could not be turned into a patch."""


# --------------------------------------------------------------------------- names


@dataclass(frozen=True)
class PatchName:
    patient_id: str
    x: int
    y: int
    label: int


def parse_patch_name(name: str) -> PatchName | None:
    """Parse ``10253_idx5_x1001_y1051_class0.png``; ``None`` when the name is not of that form."""
    m = PATCH_NAME_RE.match(PurePosixPath(name).name)
    if not m:
        return None
    return PatchName(m["patient"], int(m["x"]), int(m["y"]), int(m["label"]))


# --------------------------------------------------------------------------- sources


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The dataset location: ``data_dir`` if given, else ``$IDC_DATA_DIR``; checked to exist."""
    raw = data_dir if data_dir not in (None, "") else os.environ.get("IDC_DATA_DIR")
    if not raw:
        raise DataNotFoundError(
            "No dataset given: set IDC_DATA_DIR or pass data_dir.\n" + HOW_TO_GET_DATA
        )
    path = Path(raw).expanduser()
    if not path.exists():
        raise DataNotFoundError(f"Dataset not found: {path} does not exist.\n" + HOW_TO_GET_DATA)
    if path.is_file() and not zipfile.is_zipfile(path):
        raise DataNotFoundError(
            f"Dataset path {path} is a file but not a zip archive. Point it at the folder that "
            "holds the patient folders, or at the Kaggle .zip.\n" + HOW_TO_GET_DATA
        )
    return path.resolve()


class PatchSource:
    """A place patches are read from: a folder or a zip archive."""

    root: Path

    def list_files(self) -> list[tuple[str, int, int]]:
        """``(relative posix path, size in bytes, change stamp)`` for every file."""
        raise NotImplementedError

    def read(self, relpath: str) -> bytes:
        raise NotImplementedError

    def spec(self) -> tuple[str, str]:
        """A picklable description so worker processes can reopen the source."""
        raise NotImplementedError


class DirSource(PatchSource):
    def __init__(self, root: Path):
        self.root = Path(root)

    def list_files(self) -> list[tuple[str, int, int]]:
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for fn in sorted(filenames):
                full = os.path.join(dirpath, fn)
                try:
                    st = os.stat(full)
                except OSError:
                    continue
                rel = os.path.relpath(full, self.root).replace(os.sep, "/")
                out.append((rel, st.st_size, st.st_mtime_ns))
        return out

    def read(self, relpath: str) -> bytes:
        return (self.root / relpath).read_bytes()

    def spec(self) -> tuple[str, str]:
        return ("dir", str(self.root))


class ZipSource(PatchSource):
    def __init__(self, root: Path):
        self.root = Path(root)
        self._zip: zipfile.ZipFile | None = None

    @property
    def zip(self) -> zipfile.ZipFile:
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.root)
        return self._zip

    def list_files(self) -> list[tuple[str, int, int]]:
        return [
            (info.filename, info.file_size, info.CRC)
            for info in self.zip.infolist()
            if not info.is_dir()
        ]

    def read(self, relpath: str) -> bytes:
        return self.zip.read(relpath)

    def spec(self) -> tuple[str, str]:
        return ("zip", str(self.root))

    def __getstate__(self):
        return {"root": self.root, "_zip": None}


def open_source(path: str | os.PathLike | PatchSource | None = None) -> PatchSource:
    """Open a dataset folder or zip (``None``: ``$IDC_DATA_DIR``)."""
    if isinstance(path, PatchSource):
        return path
    root = resolve_data_dir(path)
    return ZipSource(root) if root.is_file() else DirSource(root)


def find_dataset_root(path: str | os.PathLike) -> Path:
    """The patient-folder root inside a Kaggle download: its ``IDC_regular_ps50_idx5`` folder
    when there is one (the download also holds a second copy of every patient folder)."""
    path = Path(path)
    inner = path / "IDC_regular_ps50_idx5"
    return inner if inner.is_dir() else path


def _source_from_spec(spec: tuple[str, str]) -> PatchSource:
    kind, root = spec
    return ZipSource(Path(root)) if kind == "zip" else DirSource(Path(root))


# --------------------------------------------------------------------------- scanning

FIX_NAME = (
    "Kaggle patch names look like 10253_idx5_x1001_y1051_class0.png; rename the file "
    "or move it out of the dataset folder"
)
FIX_LABEL = (
    "the folder (0 = IDC-, 1 = IDC+) and the _class<C> in the name must agree: check which "
    "is right and move or rename the file"
)
FIX_PATIENT = "move the file into the folder of the patient its name gives"
FIX_DUPLICATE = (
    "nothing to do if the copies are the same patch (the Kaggle zip holds two copies); first copy"
)
FIX_NOT_PNG = "only .png patches are read; remove the file or ignore this line"


@dataclass
class ScanResult:
    """What a dataset folder holds, before any pixel is decoded."""

    root: Path
    patches: pd.DataFrame  # path, patient_id, x, y, label, bytes
    problems: pd.DataFrame  # path, problem, fix
    files_seen: int
    cache_key: str

    @property
    def fingerprint(self) -> str:
        return manifest_fingerprint(self.patches)


def scan(source: str | os.PathLike | PatchSource | None = None) -> ScanResult:
    """List and check every file of a dataset: names, label folders, duplicates.

    Raises :class:`DataError` when nothing usable is found (empty folder, wrong folder).
    """
    src = open_source(source)
    files = sorted(src.list_files())  # one order for every source and file system
    rows, problems = [], []
    seen: dict[str, str] = {}
    for rel, size, _stamp in files:
        name = PurePosixPath(rel).name
        parts = PurePosixPath(rel).parts
        if name.startswith(".") or "__MACOSX" in parts:
            problems.append((rel, "hidden or system file, ignored", FIX_NOT_PNG))
            continue
        if not name.lower().endswith(".png"):
            problems.append((rel, "not a PNG, ignored", FIX_NOT_PNG))
            continue
        parsed = parse_patch_name(name)
        if parsed is None:
            problems.append((rel, "file name does not match the Kaggle pattern", FIX_NAME))
            continue
        if len(parts) >= 2 and parts[-2] in ("0", "1") and int(parts[-2]) != parsed.label:
            problems.append(
                (
                    rel,
                    f"label folder {parts[-2]} disagrees with name class{parsed.label}",
                    FIX_LABEL,
                )
            )
            continue
        if (
            len(parts) >= 3
            and parts[-2] in ("0", "1")
            and parts[-3].isdigit()
            and parts[-3] != parsed.patient_id
        ):
            problems.append(
                (
                    rel,
                    f"patient folder {parts[-3]} disagrees with name patient {parsed.patient_id}",
                    FIX_PATIENT,
                )
            )
            continue
        if name in seen:
            problems.append(
                (rel, "duplicate patch name, first copy used", f"{FIX_DUPLICATE}: {seen[name]}")
            )
            continue
        seen[name] = rel
        rows.append((rel, parsed.patient_id, parsed.x, parsed.y, parsed.label, size))

    patches = pd.DataFrame(rows, columns=["path", "patient_id", "x", "y", "label", "bytes"])
    patches = patches.astype({"patient_id": str, "x": int, "y": int, "label": int, "bytes": int})
    probs = pd.DataFrame(problems, columns=PROBLEM_COLUMNS)
    if patches.empty:
        where = src.root
        if not files:
            raise DataError(f"Dataset folder {where} is empty.\n" + HOW_TO_GET_DATA)
        examples = ", ".join(p for p, *_ in problems[:3])
        raise DataError(
            f"No Kaggle-style patches found in {where} ({len(files)} files, e.g. {examples}). "
            "Expected <patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png. Is this the "
            "IDC_regular_ps50_idx5 folder?\n" + HOW_TO_GET_DATA
        )
    key_src = "\n".join(f"{r}\t{s}\t{t}" for r, s, t in files)
    cache_key = hashlib.sha256(f"v{CACHE_VERSION}\n{src.spec()}\n{key_src}".encode()).hexdigest()
    return ScanResult(src.root, patches, probs, len(files), cache_key)


def manifest_fingerprint(df: pd.DataFrame) -> str:
    """A short content fingerprint of a patch list (names, labels, sizes): same data, same id."""
    cols = [c for c in ("path", "label", "bytes", "width", "height") if c in df.columns]
    h = hashlib.sha256()
    for row in df[cols].astype(str).itertuples(index=False):
        h.update(("\t".join(row) + "\n").encode())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- decoding


def _to_uint8_rgb(img: Image.Image) -> tuple[np.ndarray, list[str]]:
    notes = []
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        notes.append(f"converted from {mode} (16-bit) grayscale")
        return np.repeat(arr[..., None], 3, axis=2), notes
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        arr = np.asarray(rgba, dtype=np.float32)
        alpha = arr[..., 3:4] / 255.0
        if alpha.min() < 1.0:
            notes.append(f"converted from {mode}: transparency composited on white")
        else:
            notes.append(f"converted from {mode}")
        rgb = arr[..., :3] * alpha + 255.0 * (1 - alpha)
        return np.clip(rgb + 0.5, 0, 255).astype(np.uint8), notes
    if mode == "RGB":  # the common case: no conversion, no copy
        return np.asarray(img, dtype=np.uint8), notes
    notes.append("converted from grayscale" if mode in ("L", "1") else f"converted from {mode}")
    return np.asarray(img.convert("RGB"), dtype=np.uint8), notes


def decode_image(data: bytes, *, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, list[str]]:
    """Decode image bytes (PNG, JPEG, TIFF..., single-frame DICOM) to uint8 RGB ``(H, W, 3)``
    with notes on conversions.

    Raises :class:`PatchDecodeError` with a plain reason for empty, corrupt, truncated, non-image
    or oversized input.
    """
    if not data:
        raise PatchDecodeError("empty file (0 bytes)")
    if data[128:132] == b"DICM":  # a DICOM file: single-frame images decode like the others
        from .dicom import decode_dicom_image

        return decode_dicom_image(data, max_pixels)
    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
            if w * h > max_pixels:
                raise PatchDecodeError(
                    f"image is {w}x{h} = {w * h:,} pixels, above the {max_pixels:,} limit"
                )
            if w < 1 or h < 1:
                raise PatchDecodeError(f"image has no pixels ({w}x{h})")
            img.load()
            arr, notes = _to_uint8_rgb(img)
            if getattr(img, "is_animated", False):
                notes.append(f"first of {img.n_frames} frames used")
    except PatchDecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise PatchDecodeError(
            f"image too large to decode safely, above the {max_pixels:,}-pixel limit ({exc})"
        ) from None
    except UnidentifiedImageError:
        raise PatchDecodeError("not an image PIL can read (corrupt or another file type)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PatchDecodeError(f"unreadable image: {exc}") from None
    return arr, notes


def fit_patch(arr: np.ndarray, size: int = PATCH_SIZE, *, allow_larger: bool = False):
    """Pad a smaller-than-``size`` patch at its bottom/right with white (as the Kaggle edge
    patches were cropped there); larger patches are an error unless ``allow_larger`` (then
    they are resized, bilinear). Returns ``(patch, note or '')``."""
    h, w = arr.shape[:2]
    if h == size and w == size:
        return arr, ""
    if h <= size and w <= size:
        out = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
        out[:h, :w] = arr
        return out, f"padded from {w}x{h}"
    if not allow_larger:
        raise PatchDecodeError(
            f"image is {w}x{h}, larger than a {size}x{size} patch; tile large images first"
        )
    img = Image.fromarray(arr).resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8), f"resized from {w}x{h}"


def decode_patch(data: bytes, size: int = PATCH_SIZE, *, allow_larger: bool = False):
    """Bytes -> ``(patch uint8 (size, size, 3), width, height, note)``."""
    arr, notes = decode_image(data)
    h, w = arr.shape[:2]
    patch, fit_note = fit_patch(arr, size, allow_larger=allow_larger)
    if fit_note:
        notes.append(fit_note)
    return patch, w, h, "; ".join(notes)


def _decode_chunk(spec: tuple[str, str], paths: Sequence[str]):
    src = _source_from_spec(spec)
    out = np.zeros((len(paths), PATCH_SIZE, PATCH_SIZE, 3), np.uint8)
    meta = []
    for k, rel in enumerate(paths):
        try:
            patch, w, h, note = decode_patch(src.read(rel))
            out[k] = patch
            meta.append((w, h, note, ""))
        except (PatchDecodeError, OSError, KeyError) as exc:
            meta.append((0, 0, "", str(exc)))
    return out, meta


# --------------------------------------------------------------------------- the dataset


@dataclass
class Dataset:
    """Decoded patches plus the manifest that describes them (row ``i`` of ``images``)."""

    root: Path
    manifest: pd.DataFrame
    images: np.ndarray
    problems: pd.DataFrame
    files_seen: int
    cache_dir: Path | None = None
    decode_seconds: float = 0.0
    from_cache: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return manifest_fingerprint(self.manifest)

    def __len__(self) -> int:
        return len(self.manifest)

    def patches(self, rows: pd.DataFrame | None = None) -> np.ndarray:
        """The images of the manifest rows given (in their order); all when ``None``."""
        if rows is None:
            return np.asarray(self.images)
        return np.asarray(self.images[rows["i"].to_numpy()])

    def summary(self) -> dict:
        m = self.manifest
        return {
            "root": str(self.root),
            "files_seen": int(self.files_seen),
            "patches": int(len(m)),
            "patients": int(m["patient_id"].nunique()),
            "idc_positive": int(m["label"].sum()),
            "idc_positive_share": float(m["label"].mean()) if len(m) else float("nan"),
            "edge_patches_padded": int(m["note"].str.contains("padded", regex=False).sum()),
            "converted": int(m["note"].str.contains("converted", regex=False).sum()),
            "problems": int(len(self.problems)),
            "fingerprint": self.fingerprint,
        }

    def report(self, where: str | None = None) -> str:
        """A plain-text account of what was loaded and what was not (and why); ``where`` names
        the dataset folder (default: its path)."""
        s = self.summary()
        lines = [
            f"{s['patches']:,} patches from {s['patients']} patients in {where or s['root']}"
            f" ({s['idc_positive']:,} IDC+, {100 * s['idc_positive_share']:.1f}%)",
            f"{s['edge_patches_padded']} edge patches smaller than {PATCH_SIZE}x{PATCH_SIZE}"
            " padded with white at bottom/right",
        ]
        if s["converted"]:
            lines.append(f"{s['converted']} patches converted to RGB (grayscale/RGBA/16-bit)")
        if len(self.problems):
            lines.append(f"{len(self.problems)} files not used:")
            for problem, grp in self.problems.groupby("problem", sort=False):
                ex = ", ".join(grp["path"].head(3))
                lines.append(f"  {len(grp):>6}  {problem}  (e.g. {ex})")
        else:
            lines.append("every file was used")
        return "\n".join(lines)


def default_cache_dir() -> Path:
    if os.environ.get("IDC_CACHE_DIR"):
        return Path(os.environ["IDC_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "idc-book"


def load_dataset(
    data_dir: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    progress: bool = False,
) -> Dataset:
    """Scan, check and decode a dataset; decoded patches are cached (memory-mapped ``.npy``).

    A second call on unchanged files reads the cache instead of decoding again. Files that can't
    be used are listed in ``Dataset.problems``; none is dropped silently.
    """
    src = open_source(data_dir)
    t0 = time.perf_counter()
    scanned = scan(src)
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache_root / f"patches-{scanned.cache_key[:20]}"
    if use_cache and (target / "meta.json").exists():
        try:
            return _read_cache(target, scanned, time.perf_counter() - t0)
        except (OSError, ValueError, KeyError):
            shutil.rmtree(target, ignore_errors=True)  # damaged cache: decode again

    paths = scanned.patches["path"].tolist()
    n = len(paths)
    images = np.zeros((n, PATCH_SIZE, PATCH_SIZE, 3), np.uint8)
    meta: list[tuple] = []
    chunk = 2000
    chunks = [paths[k : k + chunk] for k in range(0, n, chunk)]
    n_workers = (
        workers if workers is not None else (min(os.cpu_count() or 1, 8) if n > 20000 else 1)
    )
    bar = _progress(total=n, desc="decoding patches", enabled=progress)
    if n_workers > 1:
        import multiprocessing as mp

        with ProcessPoolExecutor(n_workers, mp_context=mp.get_context("spawn")) as pool:
            for k, (arr, m) in enumerate(
                pool.map(_decode_chunk, [src.spec()] * len(chunks), chunks)
            ):
                images[k * chunk : k * chunk + len(m)] = arr
                meta.extend(m)
                bar.update(len(m))
    else:
        for k, part in enumerate(chunks):
            arr, m = _decode_chunk(src.spec(), part)
            images[k * chunk : k * chunk + len(m)] = arr
            meta.extend(m)
            bar.update(len(m))
    bar.close()

    manifest = scanned.patches.copy()
    manifest["width"] = [m[0] for m in meta]
    manifest["height"] = [m[1] for m in meta]
    manifest["note"] = [m[2] for m in meta]
    errors = np.array([m[3] for m in meta], dtype=object)
    bad = errors != ""
    problems = scanned.problems
    if bad.any():
        extra = pd.DataFrame(
            {
                "path": manifest.loc[bad, "path"].to_numpy(),
                "problem": [f"unreadable patch: {e}" for e in errors[bad]],
                "fix": "re-download or remove the file",
            }
        )
        problems = pd.concat([problems, extra], ignore_index=True)
    keep = np.flatnonzero(~bad)
    images = images[keep] if bad.any() else images
    manifest = manifest.iloc[keep].reset_index(drop=True)
    manifest["i"] = np.arange(len(manifest))
    manifest = manifest[MANIFEST_COLUMNS + ["bytes"]]
    if manifest.empty:
        raise DataError(
            f"None of the {n} patch files in {scanned.root} could be decoded "
            f"(first error: {errors[0]}). Re-download the data.\n" + HOW_TO_GET_DATA
        )
    seconds = time.perf_counter() - t0
    ds = Dataset(scanned.root, manifest, images, problems, scanned.files_seen, None, seconds)
    if use_cache:
        try:
            ds.images = _write_cache(target, ds)
            ds.cache_dir = target
        except OSError as exc:  # a read-only home should not stop the book
            ds.extra["cache_error"] = f"could not write the cache in {target}: {exc}"
    return ds


def _write_cache(target: Path, ds: Dataset) -> np.ndarray:
    tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    arr = np.lib.format.open_memmap(tmp / "images.npy", "w+", np.uint8, ds.images.shape)
    arr[:] = ds.images
    arr.flush()
    del arr
    ds.manifest.to_csv(tmp / "manifest.csv", index=False)
    ds.problems.to_csv(tmp / "problems.csv", index=False)
    meta = {
        "version": CACHE_VERSION,
        "root": str(ds.root),
        "files_seen": ds.files_seen,
        "patches": len(ds.manifest),
        "decode_seconds": ds.decode_seconds,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)
    try:
        tmp.rename(target)
    except OSError:  # another process won the race: use theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return np.load(target / "images.npy", mmap_mode="r")


def _read_cache(target: Path, scanned: ScanResult, seconds: float) -> Dataset:
    meta = json.loads((target / "meta.json").read_text())
    if meta.get("version") != CACHE_VERSION:
        raise ValueError("old cache version")
    manifest = pd.read_csv(
        target / "manifest.csv", dtype={"patient_id": str}, keep_default_na=False
    )
    manifest["note"] = manifest["note"].astype(str)
    problems = pd.read_csv(target / "problems.csv", dtype=str, keep_default_na=False)
    images = np.load(target / "images.npy", mmap_mode="r")
    if images.shape[0] != len(manifest):
        raise ValueError("cache manifest and images disagree")
    return Dataset(
        scanned.root,
        manifest,
        images,
        problems,
        scanned.files_seen,
        target,
        seconds,
        True,
        {"decode_seconds_first_run": meta.get("decode_seconds")},
    )


def _progress(total: int, desc: str, enabled: bool):
    if enabled:
        try:
            from tqdm.auto import tqdm

            return tqdm(total=total, desc=desc, unit="patch", mininterval=1.0)
        except ImportError:  # pragma: no cover
            pass

    class _Null:
        def update(self, n):
            pass

        def close(self):
            pass

    return _Null()


def select_patients(manifest: pd.DataFrame, patients: Iterable[str]) -> pd.DataFrame:
    wanted = {str(p) for p in patients}
    return manifest[manifest["patient_id"].isin(wanted)]


def subsample_patients(
    manifest: pd.DataFrame, max_patients: int | None, seed: int, keep: Iterable[str] = ()
) -> pd.DataFrame:
    """Keep at most ``max_patients`` whole patients (seeded; ``keep`` always kept). Used by
    the quick profiles; never splits a patient."""
    if not max_patients:
        return manifest
    patients = sorted(manifest["patient_id"].unique())
    if len(patients) <= max_patients:
        return manifest
    keep = [p for p in keep if p in set(patients)]
    rest = [p for p in patients if p not in set(keep)]
    rng = np.random.default_rng(seed)
    chosen = list(keep) + list(
        rng.choice(rest, size=max(0, max_patients - len(keep)), replace=False)
    )
    return select_patients(manifest, chosen).reset_index(drop=True)


def write_zip(root: str | os.PathLike, relpaths: Iterable[str], path: str | os.PathLike) -> Path:
    """Pack dataset files (keeping their Kaggle-layout paths) into a zip, e.g. one patient's
    folder."""
    path = Path(path)
    with zipfile.ZipFile(path, "w") as zf:
        for rel in relpaths:
            zf.write(Path(root) / rel, rel)
    return path
