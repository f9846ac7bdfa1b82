"""Publishing: push a built book to a ``gh-pages`` branch (GitHub Pages serves it from there)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from idc_utils.book.notebooks import ChapterError
from idc_utils.core.paths import display_path, project_root


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
