"""A saved model loaded once, with its card: probabilities in batches (with the card's test-time
augmentation), slide context when the card has it, and what the threshold means in words a
pathologist reads. The app and the DICOMweb path score through it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from idc_utils.core.constants import PATCH_SIZE


@dataclass
class Predictor:
    """A loaded model with its card: probabilities in batches, slide context, its threshold in
    words."""

    model: object
    card: dict
    batch_size: int = 128

    @classmethod
    def load(cls, model_path: str | Path) -> Predictor:
        """The model at ``model_path`` with its card, its forward pass traced once, at start-up."""
        from idc_utils.models.cards import load_model

        model, card = load_model(model_path)
        p = cls(model, card)
        p.infer(np.zeros((1, PATCH_SIZE, PATCH_SIZE, 3), np.uint8))
        return p

    @property
    def infer(self):
        """The model's compiled forward pass, with test-time augmentation when its card says so
        (:func:`idc_utils.models.inference.make_infer`, kept on the model)."""
        from idc_utils.models.inference import make_infer

        return make_infer(self.model, bool(self.card.get("tta", False)))

    @property
    def threshold(self) -> float:
        return float(self.card["threshold"])

    @property
    def has_context(self) -> bool:
        return bool(self.card.get("context"))

    def with_context(self, coords: pd.DataFrame, probs: np.ndarray, use: bool):
        """``(probabilities, threshold, words)`` with slide context when asked and available
        (neighbouring tiles' scores, :mod:`idc_utils.evaluation.slide_context`), else the plain
        ones."""
        if not (use and self.has_context):
            return probs, self.threshold, "each tile scored alone"
        from idc_utils.evaluation.slide_context import ContextModel, smooth

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
        """P(IDC+) of each patch, in batches (``progress(fraction)`` after each)."""
        out = np.empty(len(patches))
        infer = self.infer
        for s in range(0, len(patches), self.batch_size):
            out[s : s + self.batch_size] = infer(patches[s : s + self.batch_size])
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
