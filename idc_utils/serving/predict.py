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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from idc_utils.core.constants import IMAGE_SUFFIXES, PATCH_SIZE
from idc_utils.core.errors import PatchDecodeError
from idc_utils.data.decode import decode_patch
from idc_utils.data.names import parse_patch_name
from idc_utils.models.inference import make_infer

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
    (:mod:`idc_utils.evaluation.slide_context`, the parameters from the model card); ``pred`` at
    ``threshold``. The ``note`` column says how many neighbours each patch had."""
    from idc_utils.evaluation import slide_context

    df = df.copy()
    ok = (df["error"] == "") & (df["patient_id"].astype(str) != "")
    model = slide_context.ContextModel.from_dict(ctx)
    sub = df[ok]
    if len(sub):
        coords = sub[["patient_id", "x", "y"]].astype({"x": int, "y": int})
        pairs = slide_context.neighbours(coords, model.radius, model.step)
        new = slide_context.smooth(coords, sub["prob"].astype(float), model, pairs)
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
    from idc_utils.models.cards import load_model

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
