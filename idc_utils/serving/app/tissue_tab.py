"""The Tissue tab: a larger H&E image tiled, its tissue scored and mapped, the IDC+ area reported;
or a zip of a Kaggle patient folder rebuilt as a mosaic and compared with its annotation."""

from __future__ import annotations

import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from idc_utils.core.constants import PATCH_SIZE
from idc_utils.core.errors import PatchDecodeError
from idc_utils.data.decode import decode_image
from idc_utils.serving.app.inputs import MAX_TISSUE_PIXELS, TISSUE_TYPES, InputError, shown_in_page
from idc_utils.serving.app.pictures import downscale, heat_overlay, outline_cells, with_colour_bar
from idc_utils.serving.predictor import Predictor
from idc_utils.serving.tissue import score_image


@dataclass
class TissueResult:
    overlay: np.ndarray
    summary: str
    stats: dict
    per_tile: np.ndarray | None = None  # the map shown, per 50x50 tile (NaN: background)


def analyze_tissue_file(
    pred: Predictor, path, progress=None, min_tissue: float = 0.25, use_context: bool = True
) -> TissueResult:
    """The Tissue tab's work on an image file or a Kaggle-layout zip."""
    if path is None:
        raise InputError(
            "Upload an H&E image (PNG, JPEG, TIFF) or a zip of a patient folder first."
        )
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TISSUE_TYPES:
        raise InputError(
            f"{path.name}: {suffix or 'no extension'} is not supported; upload a PNG, JPEG or TIFF "
            "image, or a .zip of a Kaggle patient folder."
        )
    if suffix == ".zip":
        return _analyze_patient_zip(pred, path, progress, use_context)
    try:
        image, notes = decode_image(path.read_bytes(), max_pixels=MAX_TISSUE_PIXELS)
    except PatchDecodeError as exc:
        raise InputError(
            f"{path.name}: {exc}. The Tissue tab accepts images up to "
            f"{MAX_TISSUE_PIXELS / 1e6:.0f} million pixels; crop the region of interest."
        ) from None
    h, w = image.shape[:2]
    if h < PATCH_SIZE or w < PATCH_SIZE:
        raise InputError(
            f"{path.name} is {w}x{h}, smaller than one {PATCH_SIZE}x{PATCH_SIZE} tile; use the "
            "Patch tab."
        )
    return tissue_map(pred, image, progress, min_tissue, notes, use_context)


def tissue_map(
    pred: Predictor,
    image: np.ndarray,
    progress=None,
    min_tissue: float = 0.25,
    notes=(),
    use_context: bool = True,
) -> TissueResult:
    from idc_utils.data.mosaic import MosaicGrid, value_map

    t0 = time.perf_counter()
    scores = score_image(pred.probabilities, image, min_tissue, progress)
    table = scores.table
    keep = table["is_tissue"].to_numpy()
    if not keep.any():
        raise InputError(
            "No tissue found: every 50x50 tile looks like background (white or unstained). "
            "Is this an H&E image at the dataset's magnification?"
        )
    coords = table.loc[keep, ["x", "y"]].assign(patient_id="upload")
    probs, threshold, how = pred.with_context(
        coords, table.loc[keep, "prob"].to_numpy(), use_context
    )
    per_tile = np.full(len(table), np.nan)  # background tiles stay NaN: not scored
    per_tile[keep] = probs
    grid = value_map(MosaicGrid.from_coords(table["x"], table["y"]), per_tile)
    heat = downscale(heat_overlay(image[..., :3], grid, PATCH_SIZE))
    over = with_colour_bar(heat, threshold)
    n_t, n_pos = int(keep.sum()), int((probs >= threshold).sum())
    stats = {
        "tiles": int(len(table)),
        "tissue_tiles": n_t,
        "idc_tiles": n_pos,
        "idc_area_fraction": n_pos / n_t,
        "tiles_per_second": n_t / max(scores.seconds, 1e-9),
        "seconds": time.perf_counter() - t0,
        "threshold": threshold,
        "context": how,
        "map_size": heat.shape[:2],
    }
    summary = (
        f"**IDC+ area: {100 * stats['idc_area_fraction']:.1f}% of the tissue** ({n_pos} of {n_t} "
        "tissue tiles "
        f"at P(IDC+) ≥ {threshold:.3f}, {how}); {stats['tiles'] - n_t} background tiles skipped. "
        f"{n_t} tiles scored in {scores.seconds:.1f} s "
        f"({stats['tiles_per_second']:.0f} tiles/s).  \n"
        f"Colour: probability of IDC+ per 50x50 tile (scale below the map); uncoloured: "
        "background. "
        f"The tiles must show tissue at the dataset's magnification (about 2.5x) for this to mean "
        "anything."
        + (f"  \nInput: {'; '.join(notes)}." if notes else "")
        + f"  \n{pred.describe()}."
    )
    return TissueResult(over, summary, stats, grid)


def _analyze_patient_zip(
    pred: Predictor, path: Path, progress=None, use_context=True
) -> TissueResult:
    from idc_utils.core.errors import DataError
    from idc_utils.data.dataset import load_dataset
    from idc_utils.data.mosaic import mosaic, value_map
    from idc_utils.evaluation.metrics import region_metrics

    if not zipfile.is_zipfile(path):
        raise InputError(f"{path.name} is not a valid zip archive.")
    try:
        ds = load_dataset(path, use_cache=False)
    except DataError as exc:
        raise InputError(f"{path.name}: {str(exc).splitlines()[0]}") from None
    m = ds.manifest
    counts = m["patient_id"].value_counts()
    pid = counts.index[0]
    rows = m[m["patient_id"] == pid]
    t1 = time.perf_counter()
    probs = pred.probabilities(ds.patches(rows), progress)
    t2 = time.perf_counter()
    probs, threshold, how = pred.with_context(rows, probs, use_context)
    canvas, grid = mosaic(ds.patches(rows), rows["x"], rows["y"])
    truth = value_map(grid, rows["label"], fill=0) > 0.5
    heat = outline_cells(heat_overlay(canvas, value_map(grid, probs), grid.step), truth, grid.step)
    sm = region_metrics(rows, probs, threshold)
    heat = downscale(heat)
    over = with_colour_bar(
        heat,
        threshold,
        f"cyan outline: IDC+ as annotated in the file names; Dice {sm['dice']:.3f}",
    )
    stats = {
        "patient": pid,
        "tissue_tiles": len(rows),
        "idc_tiles": int((probs >= threshold).sum()),
        "context": how,
        "idc_area_fraction": sm["predicted_idc_fraction"],
        "tiles_per_second": len(rows) / max(t2 - t1, 1e-9),
        "map_size": heat.shape[:2],
        **sm,
    }
    extra = (
        f" (the zip holds {len(counts)} patients; showing the largest)" if len(counts) > 1 else ""
    )
    skipped = f"; {len(ds.problems)} files in the zip were not usable" if len(ds.problems) else ""
    summary = (
        f"**Patient {pid}{extra}: predicted IDC+ area {100 * sm['predicted_idc_fraction']:.1f}%** "
        "of "
        f"{len(rows)} patches (annotated: {100 * sm['true_idc_fraction']:.1f}%){skipped}; "
        f"at P(IDC+) ≥ {threshold:.3f}, {how}. "
        f"Against the annotation in the file names: patch AUC {sm['patch_auc']:.3f}, Dice "
        f"{sm['dice']:.3f}.  \n"
        f"{pred.describe()}."
    )
    return TissueResult(over, summary, stats)


def build_tab(pred: Predictor) -> None:
    """An image or a patient's zip in; the IDC map out (endpoint ``analyze_tissue``)."""
    import gradio as gr

    @shown_in_page("Cannot use this input")
    def analyze_tissue(file, use_context=True, progress=gr.Progress()):  # noqa: B008 - Gradio's way
        res = analyze_tissue_file(
            pred, file, lambda f: progress(f, desc="scoring tiles"), use_context=use_context
        )
        return res.overlay, res.summary

    tissue_in = gr.File(
        file_count="single",
        file_types=TISSUE_TYPES,
        label="H&E image at the dataset's magnification, or a .zip of a Kaggle patient folder",
    )
    context_box = gr.Checkbox(
        value=pred.has_context,
        interactive=pred.has_context,
        label="Use neighbouring tiles (slide context, chosen on validation patients)"
        if pred.has_context
        else "Slide context: not available for this model",
    )
    run = gr.Button("Map IDC", variant="primary")
    summary = gr.Markdown(elem_id="tissue-summary")
    heat = gr.Image(label="P(IDC+) per 50x50 tile", type="numpy", interactive=False, format="jpeg")
    run.click(analyze_tissue, [tissue_in, context_box], [heat, summary], api_name="analyze_tissue")
