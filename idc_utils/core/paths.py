"""Where things are: the checkout (``project_root``), paths as a reader writes them
(``display_path``), and the cache of decoded patches and embeddings."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The idc-book checkout: ``$IDC_BOOK_ROOT``, else the nearest parent of the working
    directory holding ``_toc.yml`` and ``idc_utils/``, else the folder above this package."""
    env = os.environ.get("IDC_BOOK_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "_toc.yml").exists() and (d / "idc_utils").is_dir():
            return d
    return Path(__file__).resolve().parents[2]


def display_path(path) -> str:
    """A path relative to the repository when it lies inside it, else as given."""
    if path is None:
        return "None"
    try:
        return Path(path).resolve().relative_to(project_root().resolve()).as_posix()
    except ValueError:
        return str(path)


def default_cache_dir() -> Path:
    """``$IDC_CACHE_DIR``, else ``$XDG_CACHE_HOME/idc-book`` (``~/.cache/idc-book``)."""
    if os.environ.get("IDC_CACHE_DIR"):
        return Path(os.environ["IDC_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "idc-book"
