"""Does another machine give the published generator's numbers? Comparisons of a repeat with the
record of ``tools/generator_study.py`` (``book/data/generator_study.json``), made by
``tools/reproduce_generator.py``: the training curve step by step, a judgement, and the KID of
blurred real tissue (the embedder and the data alone, no generator).

A seed fixes every draw, so a repeat on the same kind of processor gives the same numbers to
every digit; on another kind, floating-point sums run in another order and the numbers differ in
their last digits, a difference that training can grow. These functions measure how far."""

from __future__ import annotations

import math

import pandas as pd

#: The numbers of a judgement compared (the shares called IDC+ depend on the run's EfficientNet
#: as well, which each machine trains for itself: they are compared, and told apart).
KID_KEYS = ("kid_neg_x1000", "kid_pos_x1000")
SHARE_KEYS = ("called_pos_neg", "called_pos_pos")


def relative_difference(a: float, b: float) -> float:
    """``|a - b|`` relative to the larger magnitude (0 when both are 0)."""
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


def compare_histories(recorded: list[dict], repeated: list[dict]) -> pd.DataFrame:
    """The training losses of a repeat beside the recorded ones, at every logged step both
    have (``[{"step", "loss"}, ...]``): one row per step with both losses and their relative
    difference. Raises when they share no step."""
    old = {int(r["step"]): float(r["loss"]) for r in recorded}
    rows = [
        {
            "step": int(r["step"]),
            "recorded": old[int(r["step"])],
            "repeated": float(r["loss"]),
            "relative difference": relative_difference(old[int(r["step"])], float(r["loss"])),
        }
        for r in repeated
        if int(r["step"]) in old
    ]
    if not rows:
        raise ValueError(
            "the repeat logged no step that the record has: train at least to the record's "
            f"first logged step ({min(old) if old else 'none recorded'})"
        )
    return pd.DataFrame(rows).set_index("step")


def compare_judgements(recorded: dict, repeated: dict) -> pd.DataFrame:
    """A judgement repeated beside the recorded one: each KID and share called IDC+ with both
    values, their difference, and what it depends on."""
    rows = []
    for key in (*KID_KEYS, *SHARE_KEYS):
        if key not in recorded or key not in repeated:
            continue
        a, b = float(recorded[key]), float(repeated[key])
        rows.append(
            {
                "number": key,
                "recorded": a,
                "repeated": b,
                "difference": b - a,
                "relative difference": relative_difference(a, b),
                "depends on": (
                    "generator, embedder" if key in KID_KEYS else "generator, run's EfficientNet"
                ),
            }
        )
    if not rows:
        raise ValueError(
            f"the two judgements share no number to compare: {sorted(recorded)} against "
            f"{sorted(repeated)}"
        )
    return pd.DataFrame(rows).set_index("number")


def compare_blurred_tissue(recorded: list[dict], repeated: list[dict]) -> pd.DataFrame:
    """The yardstick of blurred real tissue (``generator_study.blurred_tissue_kid``) repeated
    beside the recorded one, per class and size."""
    key = ("class", "size")
    old = {tuple(r[k] for k in key): float(r["kid_x1000"]) for r in recorded}
    rows = [
        {
            "class": r["class"],
            "size": r["size"],
            "recorded": old[(r["class"], r["size"])],
            "repeated": float(r["kid_x1000"]),
            "relative difference": relative_difference(
                old[(r["class"], r["size"])], float(r["kid_x1000"])
            ),
        }
        for r in repeated
        if (r["class"], r["size"]) in old
    ]
    return pd.DataFrame(rows).set_index(list(key))


def summary(table: pd.DataFrame) -> dict:
    """The largest relative difference of a comparison and where the first non-zero one is
    (``None``: identical to every digit)."""
    rel = table["relative difference"]
    nonzero = rel[rel > 0]
    largest = float(rel.max()) if len(rel) else math.nan
    return {
        "rows": int(len(rel)),
        "identical": int((rel == 0).sum()),
        "largest_relative_difference": largest,
        "first_difference_at": None if nonzero.empty else _plain(nonzero.index[0]),
    }


def _plain(index_value):
    """An index value as JSON holds it (tuples as lists, numpy numbers as Python's)."""
    if isinstance(index_value, tuple):
        return [_plain(v) for v in index_value]
    return index_value.item() if hasattr(index_value, "item") else index_value
