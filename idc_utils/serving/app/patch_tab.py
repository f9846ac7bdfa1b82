"""The Patch tab: one or many 50x50 patches classified at the model's threshold, each with its
probability, its Grad-CAM and any conversion or error; real patches of the dataset as examples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from idc_utils.serving.app.inputs import MAX_PATCH_FILES, PATCH_TYPES, InputError, shown_in_page
from idc_utils.serving.app.pictures import result_tile
from idc_utils.serving.predictor import Predictor


def classify_patch_files(pred: Predictor, paths) -> tuple[str, list, pd.DataFrame]:
    """The Patch tab's work: ``(summary markdown, gallery items, table)``."""
    from idc_utils.models.gradcam import gradcam, overlay
    from idc_utils.serving.predict import load_patch_file

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


def example_patches(data_dir=None, n: int = 4) -> list[str]:
    """A few real patches (half IDC+) from the dataset folder, for the Patch tab's examples."""
    from idc_utils.data.scan import scan
    from idc_utils.data.sources import resolve_data_dir

    try:
        root = resolve_data_dir(data_dir)
    except Exception:
        return []
    if root.is_file():
        return []
    patches = scan(root).files
    full = patches[patches["bytes"] > 2000]
    picked = []
    for label in (1, 0):
        part = full[full["label"] == label]
        picked += list(part.sample(min(n // 2, len(part)), random_state=0)["path"])
    return [str(root / p) for p in picked]


def build_tab(pred: Predictor, data_dir) -> list[str]:
    """Patches in; class, probability and Grad-CAM out (endpoint ``classify_patches``)."""
    import gradio as gr

    @shown_in_page("Cannot use this input")
    def classify_patches(files):
        return classify_patch_files(pred, files)

    files = gr.File(
        file_count="multiple",
        file_types=PATCH_TYPES,
        label="Patches (50x50 px; PNG, JPEG, TIFF, ...)",
    )
    run = gr.Button("Classify", variant="primary")
    summary = gr.Markdown(elem_id="patch-summary")
    gallery = gr.Gallery(
        label="Patch | Grad-CAM",
        columns=3,
        height="auto",
        fit_columns=False,
        object_fit="contain",
        format="png",
        elem_id="patch-gallery",
    )
    table = gr.Dataframe(label="Per file", interactive=False, wrap=True, elem_id="patch-table")
    run.click(classify_patches, files, [summary, gallery, table], api_name="classify_patches")
    examples = example_patches(data_dir)
    if examples:
        # clicking an example only fills the upload box: a page event, not part of the API
        gr.Examples(
            [[[e]] for e in examples],
            inputs=[files],
            label="Real patches from the dataset",
            api_visibility="private",
        )
    return examples
