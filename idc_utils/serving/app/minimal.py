"""The smallest useful demo: one patch in, the class probabilities and the call at the
model card's threshold out, in about fifteen lines of Gradio. Chapter 9 builds it before
it opens the full app (:mod:`idc_utils.serving.app.ui`), which adds tabs, tissue maps,
DICOMweb, limits on input and a stated purpose."""

from __future__ import annotations

from pathlib import Path

from idc_utils.core.constants import DISCLAIMER
from idc_utils.serving.predict import load_patch_file
from idc_utils.serving.predictor import Predictor


def minimal_demo(model_path: str | Path):
    """A ``gr.Interface`` around the model at ``model_path``: an uploaded patch is read as
    ``predict`` reads a file and scored as the full app scores it; its API endpoint is
    ``/classify``, answering ``(class probabilities, the call at the threshold)``."""
    import gradio as gr

    pred = Predictor.load(model_path)  # the model and its card, loaded once

    def classify(path: str) -> tuple[dict, str]:
        patch, error, _ = load_patch_file(Path(path))  # 50x50 uint8 RGB, or why not
        if patch is None:
            raise gr.Error(error)  # shown in the page, not a traceback
        p = float(pred.probabilities(patch[None])[0])  # the card's TTA, if any
        call = "IDC+" if p >= pred.threshold else "IDC-"
        return {"IDC+": p, "IDC-": 1 - p}, f"{call} (threshold {pred.threshold:.3f})"

    return gr.Interface(
        classify,
        inputs=gr.Image(type="filepath", image_mode=None, label="50x50 H&E patch"),
        outputs=[gr.Label(label="P(class)"), gr.Textbox(label="call at the threshold")],
        title="IDC patch classifier: research and teaching demo",
        description=DISCLAIMER,
        flagging_mode="never",  # nothing the user sends is kept
        analytics_enabled=False,
        api_name="classify",
    )
