"""The demo: a Gradio app that classifies patches and maps tissue images, with its limits stated.

    python -m idc_utils app [--model runs/<profile>/models/<name>.keras] \
        [--host 127.0.0.1] [--port 7860]

Two tabs, two API endpoints (named after their functions, as Gradio 6 does):

* ``classify_patches``: one or many 50x50 patches (PNG/JPEG/TIFF) -> IDC+/IDC- at the model's
  saved threshold, the probability, a Grad-CAM overlay, and any conversion or error per file;
* ``analyze_tissue``: a larger H&E image, or a zip of a Kaggle patient folder -> tiles of 50x50,
  background skipped, every tissue tile scored in batches, a probability heatmap and the IDC+
  area fraction (with the annotation's agreement when the zip carries labels).

The model is loaded once; requests queue; tiles are scored in batches. Bad input gets a message
in the page, never a traceback. Nothing leaves the machine: it binds 127.0.0.1 by default,
``share`` is off unless asked, analytics are off.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from . import DISCLAIMER, cards
from .data import IMAGE_SUFFIXES, PATCH_SIZE, PatchDecodeError, decode_image
from .predict import Predictor, score_image

#: the tissue tab refuses larger images (a slide region of 5000 x 5000 px is 10,000 tiles)
MAX_TISSUE_PIXELS = 25_000_000
MAX_PATCH_FILES = 256
MAX_OVERLAY_SIDE = 2048
PATCH_TYPES = list(IMAGE_SUFFIXES)  # the same files as `predict` reads
TISSUE_TYPES = PATCH_TYPES + [".zip"]

NOTICE = f"""\
**{DISCLAIMER}** This demo shows what a model trained on a small public teaching dataset does with
an image. Its output is a research estimate with wide uncertainty, not a diagnosis, and it has not
been validated on slides from any other laboratory, scanner or stain.
"""


class InputError(ValueError):
    """Input the app cannot use; the message is shown to the user as is."""


def find_default_model(root: str | Path | None = None) -> Path:
    """The best model (highest validation AUC) of the most recent run under ``runs/``."""
    from .runs import project_root

    runs_dir = Path(root) if root else project_root() / "runs"
    found = []  # (created, run folder, card path, card)
    for card_path in runs_dir.glob("*/models/*.json"):
        if not card_path.with_suffix(".keras").exists():
            continue
        try:
            card = json.loads(card_path.read_text())
        except (OSError, ValueError):
            continue
        found.append((card.get("created", ""), card_path.parent.parent, card_path, card))
    if not found:
        raise FileNotFoundError(
            f"no trained model found under {runs_dir}: run `make book` first (it trains "
            "runs/sample/models/efficientnet.keras), or pass --model path/to/model.keras"
        )
    latest_run = max(found, key=lambda f: (f[0], str(f[1])))[1]
    in_run = {path: card for _, run, path, card in found if run == latest_run}
    return cards.best_by_validation(in_run).with_suffix(".keras")


# ----------------------------------------------------------------------------- patches


def classify_patch_files(pred: Predictor, paths) -> tuple[str, list, pd.DataFrame]:
    """The Patch tab's work: ``(summary markdown, gallery items, table)``."""
    from .explain import gradcam, overlay
    from .predict import load_patch_file

    paths = [Path(p) for p in (paths or [])]
    if not paths:
        raise InputError("Upload one or more patches first (PNG, JPEG or TIFF, 50x50 pixels).")
    if len(paths) > MAX_PATCH_FILES:
        raise InputError(
            f"{len(paths)} files: the demo takes at most {MAX_PATCH_FILES} patches at a time; "
            "use `python -m idc_utils predict` for more."
        )
    rows, good, patches = [], [], []
    for path in paths:
        name = path.name
        if path.suffix.lower() not in PATCH_TYPES:
            rows.append(
                {
                    "file": name,
                    "class": "",
                    "P(IDC+)": None,
                    "note": "",
                    "error": f"{path.suffix or 'no extension'} is not an image type the demo "
                    "reads ({', '.join(PATCH_TYPES)})",
                }
            )
            continue
        patch, err, note = load_patch_file(path)
        if patch is None:
            if "larger than" in err:
                err = err.split(";")[0] + "; the Tissue tab tiles larger images"
            rows.append({"file": name, "class": "", "P(IDC+)": None, "note": note, "error": err})
            continue
        rows.append({"file": name, "class": None, "P(IDC+)": None, "note": note, "error": ""})
        good.append(len(rows) - 1)
        patches.append(patch)
    gallery = []
    if patches:
        batch = np.stack(patches)
        # an ensemble averages networks: no single layer to explain, so no Grad-CAM overlay
        cams = gradcam(pred.model, batch)[0] if pred.card.get("last_conv_layer") else None
        probs = pred.probabilities(batch)  # as predict scores them (with the card's TTA)
        for j, r in enumerate(good):
            p = float(probs[j])
            label = "IDC+" if p >= pred.threshold else "IDC-"
            rows[r]["class"], rows[r]["P(IDC+)"] = label, round(p, 4)
            explained = overlay(batch[j], cams[j]) if cams is not None else None
            tile = result_tile(batch[j], explained, label, p, rows[r]["file"])
            gallery.append((tile, f"{label}  P(IDC+) = {p:.3f}  {rows[r]['file']}"))
    table = pd.DataFrame(rows, columns=["file", "class", "P(IDC+)", "note", "error"])
    n_ok = len(good)
    n_pos = int((table["class"] == "IDC+").sum())
    summary = (
        f"**{n_ok} of {len(paths)} patches classified**: {n_pos} IDC+, {n_ok - n_pos} IDC-"
        + (f"; {len(paths) - n_ok} could not be used (see the table)" if n_ok < len(paths) else "")
        + f".  \n{pred.describe()}.  \n"
        "Left: the patch; right: Grad-CAM, where the IDC+ evidence was strongest (red)."
    )
    return summary, gallery, table


#: the Patch tab's gallery grows with its rows instead of scrolling inside a fixed box
APP_CSS = "#patch-gallery .grid-wrap { max-height: none !important; height: auto !important; }"
#: side of the square picture the Patch tab shows per patch (square: galleries crop other shapes)
TILE_SIDE = 432
CLASS_COLOURS = {"IDC+": (196, 78, 82), "IDC-": (76, 114, 176)}


def result_tile(
    patch: np.ndarray, cam_overlay: np.ndarray | None, label: str, prob: float, name: str
) -> np.ndarray:
    """One patch's answer as a square picture: the class and probability written on top, the
    patch and its Grad-CAM side by side (each 4x, nearest neighbour, so pixels stay visible;
    the patch alone when the model has no Grad-CAM, as an ensemble). Square, so that no gallery
    layout crops it; the words are in the picture, so that they are read even where a caption is
    not shown."""
    from PIL import Image, ImageDraw, ImageFont

    side, scale, gap = TILE_SIDE, 4, 16
    img = Image.new("RGB", (side, side), "white")
    draw = ImageDraw.Draw(img)
    big = ImageFont.load_default(size=28)
    small = ImageFont.load_default(size=15)
    w = PATCH_SIZE * scale
    panels = [(patch, "patch")]
    if cam_overlay is not None:
        panels.append((cam_overlay, "Grad-CAM (red: IDC+ evidence)"))
    width = len(panels) * w + (len(panels) - 1) * gap
    left, top = (side - width) // 2, (side - w) // 2 + 8  # centred; the title above
    draw.text(
        (side // 2, top - 36),
        f"{label}   P(IDC+) = {prob:.3f}",
        fill=CLASS_COLOURS[label],
        font=big,
        anchor="mm",
    )
    for k, (part, caption) in enumerate(panels):
        panel = Image.fromarray(np.kron(part, np.ones((scale, scale, 1), np.uint8)))
        x = left + k * (w + gap)
        img.paste(panel, (x, top))
        draw.text((x + w // 2, top + w + 16), caption, fill=(60, 60, 60), font=small, anchor="mm")
    return np.asarray(img)  # the file name is the gallery's caption


# ----------------------------------------------------------------------------- tissue


@dataclass
class TissueResult:
    overlay: np.ndarray
    summary: str
    stats: dict
    per_tile: np.ndarray | None = None  # the map shown, per 50x50 tile (NaN: background)


def _heat_overlay(base: np.ndarray, grid_values: np.ndarray, step: int) -> np.ndarray:
    """Blend (50/50) a per-tile probability map (NaN = not scored) over an RGB image. The colour
    map is applied per tile and repeated to pixels, in integer arithmetic (megapixel images)."""
    import matplotlib

    h, w = base.shape[:2]
    scored_cells = ~np.isnan(grid_values)
    colours = (
        matplotlib.colormaps["magma"](np.clip(np.nan_to_num(grid_values), 0, 1))[..., :3] * 255
    ).astype(np.uint16)
    heat = np.repeat(np.repeat(colours, step, axis=0), step, axis=1)[:h, :w]
    scored = np.repeat(np.repeat(scored_cells, step, axis=0), step, axis=1)[:h, :w]
    blended = ((base.astype(np.uint16) + heat) >> 1).astype(np.uint8)
    return np.where(scored[..., None], blended, base)


def _outline(
    img: np.ndarray, mask: np.ndarray, step: int, colour=(0, 255, 255), width: int = 3
) -> np.ndarray:
    """Draw the border of the cells where ``mask`` is true (e.g. the annotated IDC region)."""
    h, w = img.shape[:2]
    m = np.kron(mask.astype(np.uint8), np.ones((step, step), np.uint8))[:h, :w].astype(bool)
    inner = m.copy()
    for axis in (0, 1):
        for shift in (width, -width):
            inner &= np.roll(m, shift, axis=axis)
    out = img.copy()
    out[m & ~inner] = colour
    return out


def with_colour_bar(img: np.ndarray, threshold: float, note: str = "") -> np.ndarray:
    """The map with its legend below: the colour scale of P(IDC+) from 0 to 1, the operating
    threshold marked, and an optional note (e.g. what the outline means)."""
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    h, w = img.shape[:2]
    width = max(w, 480)
    u = max(1.0, width / 700)  # scale the legend with the picture, so it reads at the same size
    bar_h, pad, fs = int(18 * u), int(12 * u), int(14 * u)
    legend = Image.new("RGB", (width, int(86 * u)), "white")
    x0, x1 = pad, width - pad
    top = int(8 * u)
    ramp = matplotlib.colormaps["magma"](np.linspace(0, 1, x1 - x0))[:, :3]
    ramp = (np.repeat(ramp[None], bar_h, axis=0) * 255).astype(np.uint8)
    legend.paste(Image.fromarray(ramp), (x0, top))
    draw = ImageDraw.Draw(legend)
    font = ImageFont.load_default(size=fs)
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = x0 + v * (x1 - x0 - 1)
        draw.line([(x, top + bar_h), (x, top + bar_h + 4 * u)], fill="black", width=max(1, int(u)))
        draw.text((x, top + bar_h + 6 * u), f"{v:g}", fill="black", font=font, anchor="ma")
    xt = x0 + threshold * (x1 - x0 - 1)
    draw.line([(xt, top - 4 * u), (xt, top + bar_h + 4 * u)], fill=(0, 160, 0), width=int(3 * u))
    label_y = top + bar_h + 22 * u
    draw.text(
        (min(max(xt, x0 + 60 * u), x1 - 60 * u), label_y),
        f"threshold {threshold:.3f}",
        fill=(0, 120, 0),
        font=font,
        anchor="ma",
    )
    caption = "colour: P(IDC+) of each 50x50 tile" + (f"; {note}" if note else "")
    draw.text((x0, label_y + 20 * u), caption, fill="black", font=font, anchor="la")
    canvas = Image.new("RGB", (width, h + legend.height), "white")
    canvas.paste(Image.fromarray(img), (0, 0))
    canvas.paste(legend, (0, h))
    return np.asarray(canvas)


def _downscale(img: np.ndarray, max_side: int = MAX_OVERLAY_SIDE) -> np.ndarray:
    h, w = img.shape[:2]
    if max(h, w) <= max_side:
        return img
    from PIL import Image

    f = max_side / max(h, w)
    return np.asarray(Image.fromarray(img).resize((int(w * f), int(h * f)), Image.BILINEAR))


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
    from .slides import SlideGrid, value_map

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
    grid = value_map(SlideGrid.from_coords(table["x"], table["y"]), per_tile)
    heat = _downscale(_heat_overlay(image[..., :3], grid, PATCH_SIZE))
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
    from .data import DataError, load_dataset
    from .slides import mosaic, slide_metrics, value_map

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
    heat = _outline(_heat_overlay(canvas, value_map(grid, probs), grid.step), truth, grid.step)
    sm = slide_metrics(rows, probs, threshold)
    heat = _downscale(heat)
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


# ----------------------------------------------------------------------------- the app


def example_patches(data_dir=None, n: int = 4) -> list[str]:
    """A few real patches (half IDC+) from the dataset folder, for the Patch tab's examples."""
    from .data import resolve_data_dir, scan

    try:
        root = resolve_data_dir(data_dir)
    except Exception:
        return []
    if root.is_file():
        return []
    patches = scan(root).patches
    full = patches[patches["bytes"] > 2000]
    picked = []
    for label in (1, 0):
        part = full[full["label"] == label]
        picked += list(part.sample(min(n // 2, len(part)), random_state=0)["path"])
    return [str(root / p) for p in picked]


# ----------------------------------------------------------------------------- DICOMweb


@dataclass
class DicomwebResult:
    """What the DICOMweb tab keeps between "Map IDC" and "Store result"."""

    url: str
    study_uid: str
    series_uid: str
    source: object  # the slide level's DICOM attributes
    per_tile: np.ndarray


def default_dicomweb_url() -> str:
    return os.environ.get("IDC_DICOMWEB_URL", "http://127.0.0.1:8042/dicom-web")


def dicomweb_slides(url: str) -> list[tuple[str, str]]:
    """The slides on a DICOMweb server as ``(label, "study|series")`` choices (QIDO-RS)."""
    from . import dicom

    try:
        client = dicom.connect(url)
        found = dicom.find_series(client, modality="SM")
    except dicom.DicomError as exc:
        raise InputError(str(exc)) from None
    if not found:
        raise InputError(f"no slide (modality SM) on {url}; upload one first")
    return [
        (
            f"patient {r['patient_id']} · {r['description'] or 'slide'} · "
            f"{r['instances']} level(s) · series …{r['series_uid'][-8:]}",
            f"{r['study_uid']}|{r['series_uid']}",
        )
        for r in found
    ]


def analyze_dicomweb(
    pred: Predictor, url: str, choice: str, progress=None, use_context: bool = True
) -> tuple[TissueResult, DicomwebResult]:
    """Stream the chosen slide's matching level and map it like the Tissue tab does."""
    from . import dicom

    if not choice or "|" not in str(choice):
        raise InputError("Search the server and choose a slide first.")
    study, series = str(choice).split("|", 1)
    try:
        client = dicom.connect(url)
        lv = dicom.read_slide_level(client, study, series, progress)
    except dicom.DicomError as exc:
        raise InputError(str(exc)) from None
    h, w = lv.image.shape[:2]
    if h * w > MAX_TISSUE_PIXELS:
        raise InputError(
            f"the slide's level at {1000 * lv.spacing_mm:g} um per pixel is {w}x{h} pixels, "
            f"above the tab's {MAX_TISSUE_PIXELS / 1e6:.0f}-million-pixel limit; use "
            "idc_utils.dicom in a notebook for whole slides"
        )
    res = tissue_map(pred, lv.image, None, use_context=use_context)
    res.summary = (
        f"Read level {lv.level} ({1000 * lv.spacing_mm:g} um per pixel, {w}x{h}) over DICOMweb "
        f"in {lv.read_seconds:.1f} s.  \n" + res.summary
    )
    return res, DicomwebResult(url, study, series, lv.source, res.per_tile)


def store_dicomweb_result(pred: Predictor, state: DicomwebResult | None) -> str:
    """Store the map shown as a FRACTIONAL Segmentation of the slide (STOW-RS)."""
    from . import dicom

    if state is None:
        raise InputError("Map a slide first; then its result can be stored.")
    try:
        seg = dicom.probability_segmentation(
            state.source, state.per_tile, model_name=str(pred.card.get("name", "idc-book"))
        )
        client = dicom.connect(state.url)
        dicom.store(client, [seg])
    except dicom.DicomError as exc:
        raise InputError(str(exc)) from None
    return (
        f"Stored on {state.url}: a DICOM Segmentation (FRACTIONAL, {seg.NumberOfFrames} frames) "
        f"in study …{state.study_uid[-8:]}, series {seg.SeriesInstanceUID}, on the slide's frame "
        "of reference. Slide viewers that read DICOM SEG can overlay it. Research output, not a "
        "diagnosis."
    )


def build_app(model_path: str | Path | None = None, data_dir=None):
    import gradio as gr

    model_path = Path(model_path) if model_path else find_default_model()
    pred = Predictor.load(model_path)

    def classify_patches(files):
        try:
            summary, gallery, table = classify_patch_files(pred, files)
        except InputError as exc:
            raise gr.Error(str(exc), title="Cannot use this input", print_exception=False) from None
        return summary, gallery, table

    def analyze_tissue(file, use_context=True, progress=gr.Progress()):  # noqa: B008 - Gradio's way
        try:
            res = analyze_tissue_file(
                pred, file, lambda f: progress(f, desc="scoring tiles"), use_context=use_context
            )
        except InputError as exc:
            raise gr.Error(str(exc), title="Cannot use this input", print_exception=False) from None
        return res.overlay, res.summary

    def search_slides(url):
        try:
            choices = dicomweb_slides(url)
        except InputError as exc:
            raise gr.Error(str(exc), title="DICOMweb", print_exception=False) from None
        return gr.Dropdown(choices=choices, value=choices[0][1])

    def map_slide(url, choice, progress=gr.Progress()):  # noqa: B008 - Gradio's way
        try:
            res, state = analyze_dicomweb(
                pred, url, choice, lambda f: progress(f, desc="streaming tiles")
            )
        except InputError as exc:
            raise gr.Error(str(exc), title="DICOMweb", print_exception=False) from None
        return res.overlay, res.summary, state

    def store_result(state):
        try:
            return store_dicomweb_result(pred, state)
        except InputError as exc:
            raise gr.Error(str(exc), title="DICOMweb", print_exception=False) from None

    with gr.Blocks(title="IDC patch classifier — research demo", analytics_enabled=False) as demo:
        gr.Markdown("# Invasive ductal carcinoma in H&E patches — research and teaching demo")
        gr.Markdown(NOTICE, elem_id="notice")
        gr.Markdown(pred.describe() + f"  \nModel file: `{model_path}`")
        with gr.Tab("Patch"):
            files = gr.File(
                file_count="multiple",
                file_types=PATCH_TYPES,
                label="Patches (50x50 px; PNG, JPEG, TIFF, ...)",
            )
            run_p = gr.Button("Classify", variant="primary")
            summary_p = gr.Markdown(elem_id="patch-summary")
            gallery = gr.Gallery(
                label="Patch | Grad-CAM",
                columns=3,
                height="auto",
                fit_columns=False,
                object_fit="contain",
                format="png",
                elem_id="patch-gallery",
            )
            table = gr.Dataframe(
                label="Per file", interactive=False, wrap=True, elem_id="patch-table"
            )
            run_p.click(classify_patches, files, [summary_p, gallery, table])
            examples = example_patches(data_dir)
            if examples:
                gr.Examples(
                    [[[e]] for e in examples], inputs=[files], label="Real patches from the dataset"
                )
        with gr.Tab("Tissue"):
            tissue_in = gr.File(
                file_count="single",
                file_types=TISSUE_TYPES,
                label="H&E image at the dataset's magnification, "
                "or a .zip of a Kaggle patient folder",
            )
            context_box = gr.Checkbox(
                value=pred.has_context,
                interactive=pred.has_context,
                label="Use neighbouring tiles (slide context, chosen on validation patients)"
                if pred.has_context
                else "Slide context: not available for this model",
            )
            run_t = gr.Button("Map IDC", variant="primary")
            summary_t = gr.Markdown(elem_id="tissue-summary")
            heat = gr.Image(
                label="P(IDC+) per 50x50 tile", type="numpy", interactive=False, format="jpeg"
            )
            run_t.click(analyze_tissue, [tissue_in, context_box], [heat, summary_t])
        with gr.Tab("DICOMweb"):
            gr.Markdown(
                "A slide stored in a PACS, found by a QIDO search, streamed tile by tile (WADO), "
                "mapped, and the map stored back as a DICOM Segmentation (STOW). Start a local "
                "server with `python -m idc_utils dicom serve`."
            )
            url_in = gr.Textbox(value=default_dicomweb_url(), label="DICOMweb address")
            search_b = gr.Button("Search slides")
            slide_in = gr.Dropdown(choices=[], label="Slide", interactive=True)
            map_b = gr.Button("Map IDC", variant="primary")
            summary_d = gr.Markdown(elem_id="dicomweb-summary")
            heat_d = gr.Image(
                label="P(IDC+) per 50x50 tile", type="numpy", interactive=False, format="jpeg"
            )
            store_b = gr.Button("Store result on the server")
            stored_d = gr.Markdown(elem_id="dicomweb-stored")
            state_d = gr.State(None)
            search_b.click(search_slides, url_in, slide_in)
            map_b.click(map_slide, [url_in, slide_in], [heat_d, summary_d, state_d])
            store_b.click(store_result, state_d, stored_d)
    demo.queue(default_concurrency_limit=1, max_size=32)
    demo.predictor = pred
    demo.example_files = examples
    return demo


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def launch(
    model_path=None,
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    block: bool = True,
    data_dir=None,
    quiet: bool = False,
):
    demo = build_app(model_path, data_dir)
    allowed = sorted({str(Path(f).parent) for f in demo.example_files})
    demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        prevent_thread_lock=not block,
        inline=False,
        quiet=quiet,
        max_file_size="64mb",
        show_error=False,
        footer_links=["api"],
        css=APP_CSS,
        allowed_paths=allowed,
    )
    return demo
