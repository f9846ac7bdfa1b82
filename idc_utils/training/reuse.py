"""A finished training is **reused**: when ``<name>.keras`` and its card exist and the card's
training configuration, data fingerprint and training rows equal the new ones (and
:data:`idc_utils.training.config.RECIPE_VERSION` is unchanged), and the ``.keras`` file still
has the hash its card recorded, the fit loop loads the model instead of training again."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from idc_utils.core.digests import file_sha256
from idc_utils.data.split import training_rows_digest
from idc_utils.models.cards import load_model
from idc_utils.training.config import RECIPE_VERSION, TrainConfig


@dataclass
class TrainResult:
    """A finished (or reused) training: the model, its history, its card and where both are."""

    model: object
    history: pd.DataFrame
    card: dict
    model_path: Path
    card_path: Path


def reuse_key(cfg: TrainConfig, split_df: pd.DataFrame, data_fingerprint: str) -> dict:
    """What a saved model must have been trained with to be reused instead of retrained."""
    return {
        "recipe": RECIPE_VERSION,
        "config": cfg.as_dict(),
        "data": data_fingerprint,
        "split": training_rows_digest(split_df),
    }


def reusable_result(out_dir: Path, name: str, key: dict) -> TrainResult | None:
    """The saved model and card of an earlier, identical training; ``None`` if there is none."""
    model_path, card_path = out_dir / f"{name}.keras", out_dir / f"{name}.json"
    if not (model_path.exists() and card_path.exists()):
        return None
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError):
        return None
    if json.loads(json.dumps(key)) != card.get("reuse_key"):
        return None
    if card.get("model_sha256") not in (None, file_sha256(model_path)):
        return None  # the .keras file was replaced after its card was written: train again
    model, card = load_model(model_path)
    history_csv = out_dir / f"{name}.history.csv"
    history = pd.read_csv(history_csv) if history_csv.exists() else pd.DataFrame()
    return TrainResult(model, history, card, model_path, card_path)
