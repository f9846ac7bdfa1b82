"""The package's own code, shown in a chapter where it is taught: :func:`show_source` displays the
source of a function or class as the package holds it (never a copy that could drift), with the
file and lines it comes from, so a reader can open it."""

from __future__ import annotations

import inspect
import re
import textwrap
from pathlib import Path


def source_block(*objects, title: str | None = None) -> str:
    """Markdown: each object's source in a fenced Python block, under the file and lines it is
    in (relative to the project, e.g. ``idc_utils/models/classifier.py``, lines 40-72)."""
    parts = [f"**{title}**\n"] if title else []
    for obj in objects:
        lines, first = inspect.getsourcelines(obj)
        path = Path(inspect.getsourcefile(obj)).resolve()
        shown = _relative(path)
        last = first + len(lines) - 1
        name = getattr(obj, "__qualname__", getattr(obj, "__name__", ""))
        parts.append(f"`{name}`, from `{shown}`, lines {first}–{last}:\n")
        code = textwrap.dedent("".join(lines)).rstrip()
        runs = [len(r) for r in re.findall(r"`+", code)]
        fence = "`" * max(3, 1 + max(runs, default=0))  # longer than any run in the code
        parts.append(f"{fence}python\n{code}\n{fence}\n")
    return "\n".join(parts)


def _relative(path: Path) -> str:
    """``idc_utils/...`` when the file is in the package, else its name."""
    parts = path.parts
    if "idc_utils" in parts:
        k = len(parts) - 1 - parts[::-1].index("idc_utils")
        return Path(*parts[k:]).as_posix()
    return path.name


def show_source(*objects, title: str | None = None):
    """Display :func:`source_block` in a notebook (rendered as highlighted code in the book) and
    return it, so a cell ending with it shows it once."""
    from IPython.display import Markdown

    return Markdown(source_block(*objects, title=title))
