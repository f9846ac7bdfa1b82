"""Chapter 11's figures: what the DICOMweb server holds, drawn as DICOM's hierarchy (patient,
study, series, instances); and the slide streamed over DICOMweb, the map computed from it and
the Segmentation read back from the server, drawn over the slide."""

from __future__ import annotations

import numpy as np

from idc_utils.chapters.style import OKABE_ITO, draw_outline
from idc_utils.data.mosaic import per_pixel


def plot_dicom_roundtrip(
    image: np.ndarray, truth: np.ndarray, per_tile: np.ndarray, stored: np.ndarray, step: int = 50
):
    """Three panels: the level streamed over DICOMweb with the annotated IDC outlined; the
    probability map computed from it; the Segmentation read back from the server, drawn over the
    slide as a viewer would."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 5.4))
    axes[0].imshow(image)
    draw_outline(axes[0], truth, step, label="annotated IDC")
    axes[0].set_title("streamed over DICOMweb, annotated IDC outlined")
    full = per_pixel(per_tile, step, image.shape[:2])
    axes[1].imshow(np.ma.masked_invalid(full), cmap="magma", vmin=0, vmax=1)
    draw_outline(axes[1], truth, step, color="cyan")
    axes[1].set_title("P(IDC+) per 50x50 tile (computed)")
    axes[2].imshow(image)
    im = axes[2].imshow(stored, cmap="magma", vmin=0, vmax=1, alpha=np.where(stored > 0, 0.6, 0))
    fig.colorbar(im, ax=axes[2], fraction=0.035, label="P(IDC+)")
    axes[2].set_title("stored Segmentation, read back, over the slide")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def _instance_words(row) -> str:
    """One instance of :func:`idc_utils.serving.dicomweb.server_contents` in words: its size
    (the whole level for a tiled image) and its frames."""
    import pandas as pd

    tile = f"{int(row['Columns'])}x{int(row['Rows'])}"
    size = tile
    if pd.notna(row["TotalPixelMatrixColumns"]):
        size = f"{int(row['TotalPixelMatrixColumns'])}x{int(row['TotalPixelMatrixRows'])}"
    frames = int(row["NumberOfFrames"])
    return f"instance {row['InstanceNumber']}: {size} px\n{frames} frame(s) of {tile}"


def plot_hierarchy(contents, patient_id: str | None = None):
    """DICOM's information model as the server holds it: the patient, their studies, each
    study's series (with its modality) and each series' instances (size and frames), as
    boxes joined left to right. ``contents`` is
    :func:`idc_utils.serving.dicomweb.server_contents`; ``patient_id`` keeps one patient."""
    import matplotlib.pyplot as plt

    if patient_id is not None:
        contents = contents[contents["PatientID"] == str(patient_id)]
    rows = contents.reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(13, 1.2 + 1.1 * len(rows)))
    colours = [OKABE_ITO[c] for c in ("blue", "orange", "bluish green", "reddish purple")]
    xs = [0.08, 0.33, 0.58, 0.85]
    heads = ["Patient", "Study", "Series", "Instances"]

    def box(x, y, text, level):
        ax.text(
            x,
            y,
            text,
            ha="center",
            va="center",
            fontsize=10,
            family="monospace",
            bbox={"boxstyle": "round,pad=0.5", "fc": "white", "ec": colours[level], "lw": 2},
        )

    def join(x0, y0, x1, y1):
        ax.plot([x0 + 0.1, x1 - 0.12], [y0, y1], color="#777777", lw=1, zorder=0)

    n = len(rows)
    y_of = {k: 1 - (k + 0.5) / n for k in range(n)}  # each instance its own row
    for x, head, c in zip(xs, heads, colours):
        ax.text(x, 1.04, head, ha="center", va="bottom", fontsize=12, color=c, weight="bold")
    for pid, by_patient in rows.groupby("PatientID", sort=False):
        yp = np.mean([y_of[k] for k in by_patient.index])
        box(xs[0], yp, f"PatientID\n{pid}", 0)
        for study, by_study in by_patient.groupby("StudyInstanceUID", sort=False):
            ys = np.mean([y_of[k] for k in by_study.index])
            box(xs[1], ys, f"StudyInstanceUID\n...{str(study)[-10:]}", 1)
            join(xs[0], yp, xs[1], ys)
            for series, by_series in by_study.groupby("SeriesInstanceUID", sort=False):
                yr = np.mean([y_of[k] for k in by_series.index])
                modality = by_series["Modality"].iloc[0]
                box(xs[2], yr, f"Modality {modality}\n...{str(series)[-10:]}", 2)
                join(xs[1], ys, xs[2], yr)
                finest_first = by_series["TotalPixelMatrixColumns"].rank(ascending=False)
                for k, row in by_series.iterrows():
                    words = _instance_words(row)
                    if modality == "SM":  # a slide: each instance one level of the pyramid
                        words = f"level {int(finest_first[k]) - 1}, " + words
                    box(xs[3], y_of[k], words, 3)
                    join(xs[2], yr, xs[3], y_of[k])
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.02, 1.1)
    ax.axis("off")
    return fig
