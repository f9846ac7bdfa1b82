"""Where patches are read from: a dataset folder or a zip of one, found from ``data_dir`` or
``$IDC_DATA_DIR``, with a message that says how to get the data when it is missing."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from idc_utils.core.errors import DataNotFoundError

KAGGLE_DATASET = "paultimothymooney/breast-histopathology-images"


HOW_TO_GET_DATA = f"""\
How to get the data:
  * the 8,035-patch teaching sample next to this project:   export IDC_DATA_DIR=../shared/idc-sample
  * the full Kaggle set (277,524 patches, needs a Kaggle account and network):
        make data            # downloads {KAGGLE_DATASET} with kagglehub
        export IDC_DATA_DIR=<the folder it prints>
  * or pass it directly: make book DATA_DIR=/path/to/IDC_regular_ps50_idx5
    (papermill: -p data_dir /path/to/folder; a .zip of the Kaggle download works too)"""


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


def source_from_spec(spec: tuple[str, str]) -> PatchSource:
    kind, root = spec
    return ZipSource(Path(root)) if kind == "zip" else DirSource(Path(root))
