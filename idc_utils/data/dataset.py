"""Load a dataset: scanned, decoded once, cached; the manifest that describes it.

The Kaggle "Breast Histopathology Images" set (Janowczyk & Madabhushi 2016; Mooney 2018)
stores one PNG per 50x50 patch as ``<patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png``.
:func:`load_dataset` turns such a folder (or a zip of it) into

* a **manifest**: one row per usable patch (``path, patient_id, x, y, label, width, height,
  note, i``), where ``i`` indexes the decoded-image array;
* a **problems** table: every file that was not used, with the reason and the fix, so that
  nothing is dropped silently;
* an ``images`` array of uint8 RGB patches, shape ``(N, 50, 50, 3)``, decoded once and kept in a
  memory-mapped cache so that a second run does not decode 277k PNGs again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import zipfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from idc_utils.core.constants import PATCH_SIZE
from idc_utils.core.errors import DataError, PatchDecodeError
from idc_utils.core.paths import default_cache_dir
from idc_utils.core.progress import progress_bar
from idc_utils.data.decode import decode_patch
from idc_utils.data.scan import ScanResult, scan, table_digest
from idc_utils.data.sources import HOW_TO_GET_DATA, open_source, source_from_spec

MANIFEST_COLUMNS = ["path", "patient_id", "x", "y", "label", "width", "height", "note", "i"]
#: bump when decoding rules change, so old caches are not reused
CACHE_VERSION = 1


def _decode_chunk(spec: tuple[str, str], paths: Sequence[str]):
    src = source_from_spec(spec)
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
        """The data's fingerprint: a short digest of the decoded patches' names, labels and sizes.
        Model cards record it; a saved model is reused only on data with the same one."""
        return table_digest(self.manifest)

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
    target = cache_root / f"patches-{cache_key(src, scanned.listing)[:20]}"
    if use_cache and (target / "meta.json").exists():
        try:
            return _read_cache(target, scanned, time.perf_counter() - t0)
        except (OSError, ValueError, KeyError):
            shutil.rmtree(target, ignore_errors=True)  # damaged cache: decode again
    images, meta = decode_all(src, scanned.files["path"].tolist(), workers, progress)
    manifest, images, problems = _keep_decoded(scanned, images, meta)
    ds = Dataset(
        scanned.root, manifest, images, problems, scanned.files_seen, None, time.perf_counter() - t0
    )
    if use_cache:
        try:
            ds.images = _write_cache(target, ds)
            ds.cache_dir = target
        except OSError as exc:  # a read-only home should not stop the book
            ds.extra["cache_error"] = f"could not write the cache in {target}: {exc}"
    return ds


def cache_key(src, listing: list) -> str:
    """Where a dataset's decoded patches are cached: a digest of the decoding rules' version, the
    source and every file with its size and change stamp (any change decodes again)."""
    import hashlib

    files = "\n".join(f"{r}\t{s}\t{t}" for r, s, t in listing)
    return hashlib.sha256(f"v{CACHE_VERSION}\n{src.spec()}\n{files}".encode()).hexdigest()


def decode_all(src, paths: list[str], workers: int | None = None, progress: bool = False):
    """Decode every file of ``paths`` into one uint8 array, in chunks of 2,000 (in worker
    processes for large sets). Returns ``(images, meta)``; ``meta`` holds ``(width, height,
    note, error)`` per file, an unreadable file keeping its row with the error."""
    n = len(paths)
    images = np.zeros((n, PATCH_SIZE, PATCH_SIZE, 3), np.uint8)
    meta: list[tuple] = []
    chunk = 2000
    chunks = [paths[k : k + chunk] for k in range(0, n, chunk)]
    if workers is None:
        workers = min(os.cpu_count() or 1, 8) if n > 20000 else 1
    bar = progress_bar(total=n, desc="decoding patches", enabled=progress)
    specs = [src.spec()] * len(chunks)
    with contextlib.ExitStack() as stack:
        if workers > 1:
            import multiprocessing as mp

            pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
            parts = stack.enter_context(pool).map(_decode_chunk, specs, chunks)
        else:
            parts = map(_decode_chunk, specs, chunks)
        for k, (arr, m) in enumerate(parts):
            images[k * chunk : k * chunk + len(m)] = arr
            meta.extend(m)
            bar.update(len(m))
    bar.close()
    return images, meta


def _keep_decoded(scanned: ScanResult, images: np.ndarray, meta: list[tuple]):
    """The manifest of the patches that decoded, their images, and the problems table with one
    row added per file that did not."""
    manifest = scanned.files.copy()
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
        images = images[np.flatnonzero(~bad)]
    manifest = manifest[~bad].reset_index(drop=True)
    manifest["i"] = np.arange(len(manifest))
    manifest = manifest[MANIFEST_COLUMNS + ["bytes"]]
    if manifest.empty:
        raise DataError(
            f"None of the {len(meta)} patch files in {scanned.root} could be decoded "
            f"(first error: {errors[0]}). Re-download the data.\n" + HOW_TO_GET_DATA
        )
    return manifest, images, problems


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
