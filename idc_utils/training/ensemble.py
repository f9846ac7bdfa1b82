"""Several trained classifiers averaged into one model, saved as one ``.keras`` file with a card.

The CNN of chapter 5 and the EfficientNet of chapter 6 make different mistakes (one learned from
scratch at 50 px, the other transfers ImageNet features at 96 px), so the mean of their
probabilities ranks patches better than either, on validation patients and on new ones. Saved as
one model, the mean is what ``python -m idc_utils predict --model .../ensemble.keras`` and the app
run, with its own operating threshold chosen on the validation patients like every other model's.

Research and teaching software, not a medical device.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from idc_utils.evaluation.thresholds import validation_operating_point
from idc_utils.models import cards


def average(members: dict) -> object:
    """One Keras model: a raw ``(50, 50, 3)`` patch in, the mean of the members' P(IDC+) out.
    Each member keeps its own resizing and scaling inside itself."""
    import keras
    from keras import layers

    if len(members) < 2:
        raise ValueError("an ensemble needs at least two models")
    shapes = {tuple(m.input_shape[1:]) for m in members.values()}
    if len(shapes) != 1:
        raise ValueError(f"the members take different inputs {sorted(shapes)}; they must agree")
    inp = keras.Input(shapes.pop(), name="patch")
    for key, m in members.items():
        m.name = f"member_{key}"  # names must be unique inside one model (two CNNs, say)
    outs = [m(inp) for m in members.values()]
    out = layers.Average(name="mean_probability")(outs)
    return keras.Model(inp, out, name="idc_ensemble")


@dataclass
class EnsembleResult:
    """A saved ensemble: the model, its card, where both are, and its validation scores."""

    model: object
    card: dict
    model_path: Path
    card_path: Path
    prob_val: np.ndarray


def build_ensemble(
    member_paths: list,
    images: np.ndarray,
    split_df: pd.DataFrame,
    out_dir,
    name: str = "ensemble",
    *,
    data_fingerprint: str = "",
    log=print,
) -> EnsembleResult:
    """Average the saved models of ``member_paths``, choose the ensemble's threshold on the
    validation patients (the members' target recall and threshold method; test-time
    augmentation when every member uses it), fit its slide context there, and save
    ``<name>.keras`` and its card into ``out_dir``. Test patients are not read."""
    loaded = {Path(p).stem: cards.load_model(p) for p in member_paths}
    member_cards = {n: c for n, (_, c) in loaded.items()}
    targets = {c["target_recall"] for c in member_cards.values()}
    if len(targets) != 1:
        raise ValueError(f"the members were tuned for different recalls {sorted(targets)}")
    target = targets.pop()
    first = next(iter(member_cards.values()))
    method = first.get("threshold_method", "patient_bootstrap")
    seed = int(first.get("seed", 0))
    tta = all(c.get("tta") for c in member_cards.values())
    val = split_df[split_df["split"] == "val"]
    train = split_df[split_df["split"] == "train"]
    if val.empty:
        raise ValueError("no validation patients in the split: run chapter 01 first")
    t0 = time.perf_counter()
    model = average({n: m for n, (m, _) in loaded.items()})
    prob_val, op, ctx = validation_operating_point(
        model, images, val, target_recall=target, method=method, seed=seed, tta=tta
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / f"{name}.keras"
    model.save(model_path)
    seconds = {"combine": time.perf_counter() - t0}
    card = ensemble_card(
        name, member_cards, op.as_dict(), train, val, seconds, data_fingerprint, seed=seed, tta=tta
    )
    if ctx:
        card["context"] = ctx
    card_path = cards.save_card(card, model_path)
    log(
        f"[{name}] saved the mean of {', '.join(member_cards)}; threshold {op.threshold:.4f} for "
        f"recall >= {target} on val (val recall {op.val['recall']:.3f}, precision "
        f"{op.val['precision']:.3f}, AUC {op.val['auc']:.4f})"
    )
    return EnsembleResult(model, card, model_path, card_path, prob_val)


def ensemble_card(
    name,
    member_cards: dict,
    operating_point: dict,
    train,
    val,
    seconds,
    data_fingerprint,
    *,
    seed: int,
    tta: bool,
) -> dict:
    """The card of the mean of ``member_cards``' models (:func:`idc_utils.models.cards.build_card`
    with the members listed)."""
    notes = ", ".join(
        f"{n} ({c.get('backbone_note', c['backbone'])})" for n, c in member_cards.items()
    )
    members = [
        {
            "name": n,
            "backbone": c["backbone"],
            "image_size": c["image_size"],
            "val_auc": c["val_metrics"]["auc"],
            "created": c.get("created", ""),
            "trained_on": cards.trained_on(c),
        }
        for n, c in member_cards.items()
    ]
    return cards.build_card(
        name,
        backbone="ensemble",
        backbone_note=f"mean of the probabilities of {notes}",
        image_size=max(c["image_size"] for c in member_cards.values()),
        preprocessing={
            "inside_model": True,
            "resize": "each member resizes the patch to its own size",
            "scaling": "each member's own",
        },
        last_conv_layer=None,  # Grad-CAM explains one network; ask a member
        tta=tta,
        operating_point=operating_point,
        train=train,
        val=val,
        training={
            "phases": [],
            "combination": "mean of probabilities",
            "members": list(member_cards),
            "seed": seed,
        },
        epochs_run=0,
        seconds=seconds,
        seed=seed,
        data_fingerprint=data_fingerprint,
        device="the members'",
        members=members,
        trained_on=None,  # it trains nothing: its members say where they were trained
    )
