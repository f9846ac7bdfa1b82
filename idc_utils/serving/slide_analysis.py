"""A whole slide analysed: read the level that matches the training patches (folder or DICOMweb),
tile it and score its tissue with the same rule as the app's Tissue tab."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from idc_utils.serving.dicomweb import read_slide_level


@dataclass
class SlideAnalysis:
    """A slide level read and scored: its pixels, which level, the tile scores and the DICOM
    attributes of the instance the result refers to."""

    image: np.ndarray
    level: int
    spacing_mm: float
    scores: object  # idc_utils.serving.tissue.ImageScores
    source: object  # pydicom Dataset of the level (no pixels)
    read_seconds: float

    @property
    def per_tile(self) -> np.ndarray:
        return self.scores.per_tile


def analyze_slide(
    probabilities,
    source,
    study_uid: str | None = None,
    series_uid: str | None = None,
    *,
    min_tissue: float = 0.25,
    progress=None,
) -> SlideAnalysis:
    """Read the slide's matching level (:func:`~idc_utils.serving.dicomweb.read_slide_level`), tile
    it on the 50-pixel grid and score the tissue (:func:`idc_utils.serving.tissue.score_image`, the
    Tissue tab's tiling). ``progress(stage, fraction)`` reports reading and scoring."""
    from idc_utils.serving.tissue import score_image

    lv = read_slide_level(
        source, study_uid, series_uid, (lambda f: progress("read", f)) if progress else None
    )
    scores = score_image(
        probabilities, lv.image, min_tissue, (lambda f: progress("score", f)) if progress else None
    )
    return SlideAnalysis(lv.image, lv.level, lv.spacing_mm, scores, lv.source, lv.read_seconds)
