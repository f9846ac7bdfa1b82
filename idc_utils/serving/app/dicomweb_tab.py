"""The DICOMweb tab: slides listed by a QIDO search, the chosen one streamed and mapped like the
Tissue tab, and the map stored back on the server as a DICOM Segmentation."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from idc_utils.core.errors import DicomError
from idc_utils.serving.app.inputs import MAX_TISSUE_PIXELS, InputError, shown_in_page
from idc_utils.serving.app.tissue_tab import TissueResult, tissue_map
from idc_utils.serving.predictor import Predictor


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
    from idc_utils.serving import dicomweb

    try:
        client = dicomweb.connect(url)
        found = dicomweb.find_series(client, modality="SM")
    except DicomError as exc:
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
    from idc_utils.serving import dicomweb

    if not choice or "|" not in str(choice):
        raise InputError("Search the server and choose a slide first.")
    study, series = str(choice).split("|", 1)
    try:
        client = dicomweb.connect(url)
        lv = dicomweb.read_slide_level(client, study, series, progress)
    except DicomError as exc:
        raise InputError(str(exc)) from None
    h, w = lv.image.shape[:2]
    if h * w > MAX_TISSUE_PIXELS:
        raise InputError(
            f"the slide's level at {1000 * lv.spacing_mm:g} um per pixel is {w}x{h} pixels, "
            f"above the tab's {MAX_TISSUE_PIXELS / 1e6:.0f}-million-pixel limit; use "
            "idc_utils.serving.slide_analysis in a notebook for whole slides"
        )
    res = tissue_map(pred, lv.image, None, use_context=use_context)
    res.summary = (
        f"Read level {lv.level} ({1000 * lv.spacing_mm:g} um per pixel, {w}x{h}) over DICOMweb "
        f"in {lv.read_seconds:.1f} s.  \n" + res.summary
    )
    return res, DicomwebResult(url, study, series, lv.source, res.per_tile)


def store_dicomweb_result(pred: Predictor, state: DicomwebResult | None) -> str:
    """Store the map shown as a FRACTIONAL Segmentation of the slide (STOW-RS)."""
    from idc_utils.serving import dicomweb, segmentation

    if state is None:
        raise InputError("Map a slide first; then its result can be stored.")
    try:
        seg = segmentation.probability_segmentation(
            state.source, state.per_tile, model_name=str(pred.card.get("name", "idc-book"))
        )
        client = dicomweb.connect(state.url)
        dicomweb.store(client, [seg])
    except DicomError as exc:
        raise InputError(str(exc)) from None
    return (
        f"Stored on {state.url}: a DICOM Segmentation (FRACTIONAL, {seg.NumberOfFrames} frames) "
        f"in study …{state.study_uid[-8:]}, series {seg.SeriesInstanceUID}, on the slide's frame "
        "of reference. Slide viewers that read DICOM SEG can overlay it. Research output, not a "
        "diagnosis."
    )


def build_tab(pred: Predictor) -> None:
    """Search a DICOMweb server, map a slide, store the map back (endpoints ``search_slides``,
    ``map_slide``, ``store_result``)."""
    import gradio as gr

    @shown_in_page("DICOMweb")
    def search_slides(url):
        choices = dicomweb_slides(url)
        return gr.Dropdown(choices=choices, value=choices[0][1])

    @shown_in_page("DICOMweb")
    def map_slide(url, choice, progress=gr.Progress()):  # noqa: B008 - Gradio's way
        res, state = analyze_dicomweb(
            pred, url, choice, lambda f: progress(f, desc="streaming tiles")
        )
        return res.overlay, res.summary, state

    @shown_in_page("DICOMweb")
    def store_result(state):
        return store_dicomweb_result(pred, state)

    gr.Markdown(
        "A slide stored in a PACS, found by a QIDO search, streamed tile by tile (WADO), "
        "mapped, and the map stored back as a DICOM Segmentation (STOW). Start a local "
        "server with `python -m idc_utils dicom serve`."
    )
    url_in = gr.Textbox(value=default_dicomweb_url(), label="DICOMweb address")
    search = gr.Button("Search slides")
    slide_in = gr.Dropdown(choices=[], label="Slide", interactive=True)
    run = gr.Button("Map IDC", variant="primary")
    summary = gr.Markdown(elem_id="dicomweb-summary")
    heat = gr.Image(label="P(IDC+) per 50x50 tile", type="numpy", interactive=False, format="jpeg")
    store = gr.Button("Store result on the server")
    stored = gr.Markdown(elem_id="dicomweb-stored")
    state = gr.State(None)
    search.click(search_slides, url_in, slide_in, api_name="search_slides")
    run.click(map_slide, [url_in, slide_in], [heat, summary, state], api_name="map_slide")
    store.click(store_result, state, stored, api_name="store_result")
