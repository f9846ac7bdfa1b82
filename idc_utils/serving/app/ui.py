"""The demo: a Gradio app that classifies patches and maps tissue images, with its limits stated.

    python -m idc_utils app [--model runs/<profile>/models/<name>.keras] [--port 7860]

Three tabs, five API endpoints and no other (their names are given explicitly; chapter 9, the
benchmarks and the tests call them; the Patch tab's examples are a private page event):

* Patch, ``classify_patches``: one or many 50x50 patches (PNG/JPEG/TIFF/DICOM) -> IDC+/IDC- at
  the model's saved threshold, the probability, a Grad-CAM overlay, and any conversion or error
  per file (:mod:`idc_utils.serving.app.patch_tab`);
* Tissue, ``analyze_tissue``: a larger H&E image, or a zip of a Kaggle patient folder -> tiles of
  50x50, background skipped, every tissue tile scored in batches, a probability heatmap and the
  IDC+ area fraction (with the annotation's agreement when the zip carries labels)
  (:mod:`idc_utils.serving.app.tissue_tab`);
* DICOMweb, ``search_slides``, ``map_slide``, ``store_result``: a slide on a DICOMweb server found,
  streamed, mapped, and the map stored back as a Segmentation
  (:mod:`idc_utils.serving.app.dicomweb_tab`).

The model is loaded once; requests queue; tiles are scored in batches. Bad input gets a message
in the page, never a traceback. Nothing leaves the machine: it binds 127.0.0.1 by default,
``share`` is off unless asked, analytics are off.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from idc_utils.core.constants import DISCLAIMER
from idc_utils.models import cards
from idc_utils.serving.app import dicomweb_tab, patch_tab, tissue_tab
from idc_utils.serving.predictor import Predictor

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

NOTICE = f"""\
**{DISCLAIMER}** This demo shows what a model trained on a small public teaching dataset does with
an image. Its output is a research estimate with wide uncertainty, not a diagnosis, and it has not
been validated on slides from any other laboratory, scanner or stain.
"""


def find_default_model(root: str | Path | None = None) -> Path:
    """The best model (highest validation AUC) of the most recent run under ``runs/``."""
    from idc_utils.core.paths import project_root

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


#: the Patch tab's gallery grows with its rows instead of scrolling inside a fixed box
APP_CSS = "#patch-gallery .grid-wrap { max-height: none !important; height: auto !important; }"


def build_app(model_path: str | Path | None = None, data_dir=None):
    """The demo's page for the model at ``model_path`` (default: the best of the latest run):
    the notice, what the model is, and the Patch, Tissue and DICOMweb tabs."""
    import gradio as gr

    model_path = Path(model_path) if model_path else find_default_model()
    pred = Predictor.load(model_path)
    with gr.Blocks(title="IDC patch classifier — research demo", analytics_enabled=False) as demo:
        gr.Markdown("# Invasive ductal carcinoma in H&E patches — research and teaching demo")
        gr.Markdown(NOTICE, elem_id="notice")
        gr.Markdown(pred.describe() + f"  \nModel file: `{model_path}`")
        with gr.Tab("Patch"):
            examples = patch_tab.build_tab(pred, data_dir)
        with gr.Tab("Tissue"):
            tissue_tab.build_tab(pred)
        with gr.Tab("DICOMweb"):
            dicomweb_tab.build_tab(pred)
    demo.queue(default_concurrency_limit=1, max_size=32)
    demo.predictor = pred
    demo.example_files = examples
    return demo


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
