"""How the package words a count in its messages: "1 file", "2,048 files"."""

from __future__ import annotations


def many(n: int, thing: str) -> str:
    """``n`` and ``thing``, plural unless ``n`` is 1 (a plain "s": pass a noun that takes it)."""
    return f"{n:,} {thing}" + ("" if n == 1 else "s")
