"""The models' probabilities on the validation and test patients, computed once and kept in the
run folder: chapter 7 writes ``val_predictions.csv`` and ``test_predictions.csv`` (one column
``prob_<model>`` per model, beside each patch's path, patient, coordinates and label) and
``predictions.json`` (which model file made each column); chapter 8 reads them back, and
computes them again with the same package code when they are missing or were made by other
models (a chapter opened on its own, or models retrained since). Plumbing, not teaching."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

#: the columns of a predictions file besides ``prob_<model>``
ROW_COLUMNS = ["path", "patient_id", "x", "y", "label"]


def _made_by(cards: dict) -> dict:
    """What identifies each model's probabilities: its file's digest and its TTA setting."""
    return {
        name: {"model_sha256": c.get("model_sha256", ""), "tta": bool(c.get("tta"))}
        for name, c in cards.items()
    }


def save(run_dir: Path, parts: dict, probs: dict, cards: dict) -> list[Path]:
    """Write ``<part>_predictions.csv`` for each part (name -> rows) and ``predictions.json``.
    ``probs``: model -> part -> probabilities (as
    :func:`idc_utils.models.inference.models_probabilities` returns them); ``cards``: model ->
    its card."""
    run_dir = Path(run_dir)
    written = []
    for part, rows in parts.items():
        table = rows[ROW_COLUMNS].copy()
        for name in probs:
            table[f"prob_{name}"] = probs[name][part]
        path = run_dir / f"{part}_predictions.csv"
        table.to_csv(path, index=False)
        written.append(path)
    meta = {"models": _made_by(cards), "parts": {p: len(r) for p, r in parts.items()}}
    (run_dir / "predictions.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return written


def load(run_dir: Path, parts: dict, cards: dict) -> dict | None:
    """The probabilities :func:`save` wrote, as ``{model: {part: probs}}``, when they were made
    by these models (same files, same TTA) for these rows; None otherwise."""
    run_dir = Path(run_dir)
    meta_path = run_dir / "predictions.json"
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("models") != _made_by(cards):
        return None
    out: dict = {name: {} for name in cards}
    for part, rows in parts.items():
        path = run_dir / f"{part}_predictions.csv"
        if not path.exists():
            return None
        table = pd.read_csv(path, dtype={"patient_id": str})
        if len(table) != len(rows) or not np.array_equal(
            table["path"].to_numpy(), rows["path"].to_numpy()
        ):
            return None
        for name in cards:
            out[name][part] = table[f"prob_{name}"].to_numpy(np.float64)
    return out


def load_or_predict(run_dir: Path, loaded: dict, images, parts: dict) -> tuple[dict, str]:
    """``({model: {part: probs}}, where they came from)``: read from the run folder when chapter
    7 wrote them for these models and rows, else computed with
    :func:`idc_utils.models.inference.models_probabilities` (and not written: chapter 7 owns
    the files)."""
    from idc_utils.models import inference

    cards = {name: card for name, (_, card) in loaded.items()}
    probs = load(run_dir, parts, cards)
    if probs is not None:
        return probs, "read from the predictions chapter 7 wrote"
    return inference.models_probabilities(loaded, images, parts), "computed here"
