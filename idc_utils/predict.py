"""Score patches with a saved model: the stable interface other tools use.

    python -m idc_utils predict --model runs/<profile>/models/<name>.keras \
        --input PATH... --out preds.csv

PATH may be a Kaggle-layout folder, any folder of images (searched recursively), or files.
One output row per file: ``path, patient_id, x, y, label, prob, pred, error, note``.
``patient_id/x/y/label`` are filled when the file name carries them (Kaggle names). ``pred`` uses
the threshold saved in the model card unless ``--threshold`` is given. A file that cannot be used
(corrupt, truncated, empty, not an image, too large) keeps its row with an ``error`` and empty
``prob``/``pred``; conversions the file needed (grayscale, RGBA, 16-bit, padding of a patch
smaller than 50x50) are stated in ``note``, exactly as the training data was handled.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .data import IMAGE_SUFFIXES, PATCH_SIZE, PatchDecodeError, decode_patch, parse_patch_name
from .infer import make_infer

COLUMNS = ["path", "patient_id", "x", "y", "label", "prob", "pred", "error", "note"]


@dataclass
class Inputs:
    files: list[Path]
    missing: list[str]
    skipped: int  # non-image files inside folders, not scored


def collect_inputs(paths) -> Inputs:
    """Expand folders (recursively, image files only) and keep explicit files as given."""
    files, missing, skipped = [], [], 0
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames.sort()
                for fn in sorted(filenames):
                    f = Path(dirpath) / fn
                    if f.suffix.lower() in IMAGE_SUFFIXES and not fn.startswith("."):
                        files.append(f)
                    else:
                        skipped += 1
        else:  # a missing file keeps its row, with the error
            files.append(p)
            if not p.exists():
                missing.append(str(raw))
    return Inputs(files, missing, skipped)


def load_patch_file(path: Path) -> tuple[np.ndarray | None, str, str]:
    """``(patch uint8 50x50x3 or None, error, note)`` for one file, as training handled patches."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, "file not found", ""
    except OSError as exc:
        return None, f"cannot read file: {exc.strerror or exc}", ""
    try:
        patch, _, _, note = decode_patch(
            data, PATCH_SIZE
        )  # the rules the training data went through
    except PatchDecodeError as exc:
        msg = str(exc)
        if "larger than" in msg:
            msg += " (predict scores 50x50 patches; use the app's tissue tab for larger images)"
        return None, msg, ""
    return patch, "", note


def _name_fields(path: Path) -> dict:
    parsed = parse_patch_name(path.name)
    if parsed is None:
        return {"patient_id": "", "x": "", "y": "", "label": ""}
    return {"patient_id": parsed.patient_id, "x": parsed.x, "y": parsed.y, "label": parsed.label}


def score_files(
    model,
    files: list[Path],
    *,
    threshold: float,
    tta: bool = False,
    batch_size: int = 128,
    progress: bool = False,
    infer=None,
) -> pd.DataFrame:
    """Score files in batches; decoding of the next batch overlaps the model's work."""
    infer = infer or make_infer(model, tta)
    rows: list[dict] = []
    probs = np.full(len(files), np.nan)
    q: queue.Queue = queue.Queue(maxsize=3)

    def producer():
        try:
            for start in range(0, len(files), batch_size):
                chunk = files[start : start + batch_size]
                q.put((start, [load_patch_file(f) for f in chunk]))
        except BaseException as exc:
            q.put(exc)
        finally:
            q.put(None)

    threading.Thread(target=producer, daemon=True).start()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files), desc="scoring", unit="patch", file=sys.stderr, mininterval=0.5)
    errors, notes = [""] * len(files), [""] * len(files)
    while (item := q.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        start, loaded = item
        good = [k for k, (patch, _, _) in enumerate(loaded) if patch is not None]
        for k, (_, err, note) in enumerate(loaded):
            errors[start + k], notes[start + k] = err, note
        if good:
            batch = np.stack([loaded[k][0] for k in good])
            p = infer(batch)
            probs[[start + k for k in good]] = p
        if bar:
            bar.update(len(loaded))
    if bar:
        bar.close()
    for k, f in enumerate(files):
        ok = not np.isnan(probs[k])
        rows.append(
            {
                "path": str(f),
                **_name_fields(f),
                "prob": round(float(probs[k]), 6) if ok else "",
                "pred": int(probs[k] >= threshold) if ok else "",
                "error": errors[k],
                "note": notes[k],
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def apply_context(df: pd.DataFrame, ctx: dict, threshold: float) -> pd.DataFrame:
    """Rescore the rows whose names carry a patient and a position with slide context
    (:mod:`idc_utils.context`, the parameters from the model card); ``pred`` at ``threshold``.
    The ``note`` column says how many neighbours each patch had."""
    from . import context

    df = df.copy()
    ok = (df["error"] == "") & (df["patient_id"].astype(str) != "")
    model = context.ContextModel.from_dict(ctx)
    sub = df[ok]
    if len(sub):
        coords = sub[["patient_id", "x", "y"]].astype({"x": int, "y": int})
        pairs = context.neighbours(coords, model.radius, model.step)
        new = context.smooth(coords, sub["prob"].astype(float), model, pairs)
        count = np.bincount(pairs[0], minlength=len(sub))
        df.loc[ok, "prob"] = np.round(new, 6)
        df.loc[ok, "pred"] = (new >= threshold).astype(int)
        notes = [
            f"context: {c} neighbours" if c else "context: no neighbour, scored alone"
            for c in count
        ]
        df.loc[ok, "note"] = [f"{n}; {c}" if n else c for n, c in zip(sub["note"], notes)]
    scored = (df["error"] == "") & ~ok
    df.loc[scored, "pred"] = (df.loc[scored, "prob"].astype(float) >= threshold).astype(int)
    df.loc[scored, "note"] = [
        f"{n}; context: no position in the name, scored alone"
        if n
        else "context: no position in the name, scored alone"
        for n in df.loc[scored, "note"]
    ]
    return df


def predict_to_csv(
    model_path,
    inputs,
    out,
    *,
    threshold=None,
    batch_size=128,
    strict=False,
    progress=True,
    err=None,
    use_context=False,
) -> int:
    """Score ``inputs`` with the model at ``model_path`` into the CSV ``out`` (what ``python -m
    idc_utils predict`` does); returns the exit status."""
    from .cards import load_model

    err = err or sys.stderr
    found = collect_inputs(inputs)
    if not found.files:
        print(
            "error: no image files to score"
            + (f" ({found.skipped} non-image files skipped)" if found.skipped else ""),
            file=err,
        )
        return 2
    model, card = load_model(model_path)
    if use_context and not card.get("context"):
        print(
            f"error: {model_path} has no slide-context scoring in its card; drop --context or "
            "retrain (chapters 04/05 fit it)",
            file=err,
        )
        return 2
    card_t = card["context"]["threshold"] if use_context else card["threshold"]
    t = float(card_t) if threshold is None else float(threshold)
    df = score_files(
        model,
        found.files,
        threshold=t,
        tta=bool(card.get("tta", False)),
        batch_size=batch_size,
        progress=progress,
    )
    if use_context:
        df = apply_context(df, card["context"], t)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    n_err = int((df["error"] != "").sum())
    n_ok = len(df) - n_err
    n_note = int((df["note"] != "").sum())
    print(
        f"scored {n_ok} of {len(df)} files with {card['name']} ({card['backbone']}, "
        f"{card['image_size']} px) "
        f"at threshold {t:.4f} ({'given' if threshold is not None else 'from the model card'}); "
        f"{int((df['pred'] == 1).sum())} predicted IDC+ -> {out}",
        file=err,
    )
    if use_context:
        alone = int(df["note"].str.contains("scored alone", regex=False).sum())
        print(
            f"slide context: {n_ok - alone} patches scored with their neighbours, {alone} alone "
            "(no position in the name, or no neighbouring patch of the same patient "
            "among the inputs)",
            file=err,
        )
    elif n_note:
        print(f"{n_note} files were converted or padded (see the note column)", file=err)
    if found.skipped:
        print(f"{found.skipped} non-image files in the folders were not scored", file=err)
    if n_err:
        print(f"{n_err} files could not be scored (see the error column):", file=err)
        for reason, grp in df[df["error"] != ""].groupby("error"):
            print(f"  {len(grp):>5}  {reason}  (e.g. {grp['path'].iloc[0]})", file=err)
    if n_ok == 0:
        return 1
    if strict and n_err:
        return 1
    return 0


# ------------------------------------------------------------------------ a loaded model


@dataclass
class Predictor:
    """A loaded model with its card; scoring, Grad-CAM and tiling in batches."""

    model: object
    card: dict
    batch_size: int = 128

    @classmethod
    def load(cls, model_path: str | Path) -> Predictor:
        from .cards import load_model
        from .infer import make_infer

        model, card = load_model(model_path)
        p = cls(model, card)
        p._infer = make_infer(model, bool(card.get("tta", False)))
        p._infer(np.zeros((1, PATCH_SIZE, PATCH_SIZE, 3), np.uint8))  # trace once, at start-up
        return p

    @property
    def threshold(self) -> float:
        return float(self.card["threshold"])

    @property
    def has_context(self) -> bool:
        return bool(self.card.get("context"))

    def with_context(self, coords: pd.DataFrame, probs: np.ndarray, use: bool):
        """``(probabilities, threshold, words)`` with slide context when asked and available
        (neighbouring tiles' scores, :mod:`idc_utils.context`), else the plain ones."""
        if not (use and self.has_context):
            return probs, self.threshold, "each tile scored alone"
        from .context import ContextModel, smooth

        ctx = self.card["context"]
        model = ContextModel.from_dict(ctx)
        words = (
            f"with slide context (neighbouring tiles within {model.radius} steps, "
            f"sigma {model.sigma:g}, strength {model.strength:g}, chosen on validation patients)"
            if model.strength > 0
            else "slide context did not help on validation patients, so each tile is scored alone"
        )
        return smooth(coords, probs, model), float(ctx["threshold"]), words

    def probabilities(self, patches: np.ndarray, progress=None) -> np.ndarray:
        out = np.empty(len(patches))
        for s in range(0, len(patches), self.batch_size):
            out[s : s + self.batch_size] = self._infer(patches[s : s + self.batch_size])
            if progress is not None:
                progress(min(1.0, (s + self.batch_size) / max(1, len(patches))))
        return out

    def describe(self) -> str:
        """What the model is and what its threshold means, in words a pathologist reads."""
        c = self.card
        v = c.get("val_metrics", {})
        tta = ", averaged over the 8 flips and quarter turns of a patch" if c.get("tta") else ""
        target = round(100 * float(c["target_recall"]))
        text = (
            f"Model **{c['name']}** ({c['backbone']}, {c['image_size']} px{tta}). "
            f"A patch is called **IDC+ when P(IDC+) ≥ {self.threshold:.3f}**. "
            "That cut-off was set on "
            f"{c.get('threshold_chosen_on', 'validation patients')} so that about **{target} of "
            f"every 100 IDC+ patches are flagged**"
        )
        rec, prec = c.get("expected_recall"), c.get("expected_precision")
        if rec:
            text += (
                f"; on a new set of patients like those, expect {100 * rec[1]:.0f} to "
                f"{100 * rec[2]:.0f} of 100 (95% range)"
            )
        if prec:
            text += (
                f". Of the patches it flags, about {100 * prec[0]:.0f} in 100 are IDC+ "
                f"({100 * prec[1]:.0f} to {100 * prec[2]:.0f})"
            )
        elif "precision" in v:
            text += f". Of the patches it flagged, {100 * v['precision']:.0f} in 100 were IDC+"
        return text + (
            f". Validation AUC {v.get('auc', float('nan')):.3f}. The low cut-off is deliberate: "
            "a missed tumour costs more than a second look"
        )


@dataclass
class ImageScores:
    """An image tiled on the 50-pixel grid and its tissue tiles scored: one row per tile
    (``x, y, tissue, is_tissue, prob``; background tiles have no ``prob``), and the same values
    as a grid (rows x cols, NaN = not scored)."""

    table: pd.DataFrame
    per_tile: np.ndarray
    seconds: float = 0.0
    notes: list = field(default_factory=list)

    @property
    def tissue(self) -> pd.DataFrame:
        return self.table[self.table["is_tissue"]]


def score_image(
    probabilities, image: np.ndarray, min_tissue: float = 0.25, progress=None
) -> ImageScores:
    """Tile an RGB image (the Tissue tab's upload, a slide level read over DICOMweb) on the
    50-pixel grid, skip the background and score the tissue tiles with ``probabilities``
    (e.g. :meth:`Predictor.probabilities`). One tiling rule for every way in."""
    import time

    from .slides import SlideGrid, tile_image, value_map

    t0 = time.perf_counter()
    tiles, table = tile_image(image, PATCH_SIZE, min_tissue)
    keep = table["is_tissue"].to_numpy()
    prob = np.full(len(table), np.nan)
    if keep.any():
        prob[keep] = (
            probabilities(tiles[keep], progress) if progress else probabilities(tiles[keep])
        )
    table = table.assign(prob=prob)
    per_tile = value_map(SlideGrid.from_coords(table["x"], table["y"]), prob)
    return ImageScores(table, per_tile, time.perf_counter() - t0)
