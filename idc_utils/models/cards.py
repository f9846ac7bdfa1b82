"""Model cards: a saved classifier (``<name>.keras``) and its card (``<name>.json``) side by side.

The card is what every user of a model needs besides its weights: the backbone and input size,
the operating threshold chosen on validation patients and how it was chosen, whether scores use
test-time augmentation, validation metrics, the training configuration, the data fingerprint,
versions and the disclaimer. It is built in one place, :func:`build_card`, for trained models
(:func:`idc_utils.training.loop.fit`) and ensembles (:mod:`idc_utils.training.ensemble`) alike;
``predict``, the app and the evaluation read it through :func:`load_model`, without importing any
training code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from idc_utils.core import host
from idc_utils.core.constants import DISCLAIMER

#: what ``predict`` and the app cannot do without
REQUIRED = ("name", "backbone", "image_size", "threshold", "target_recall")


class CardError(ValueError):
    """A model card is missing or lacks what is needed to use the model."""


def card_path(model_path: str | Path) -> Path:
    """The card of a model: ``<name>.json`` beside ``<name>.keras``."""
    return Path(model_path).with_suffix(".json")


def read_card(model_path: str | Path) -> dict:
    """The card beside a ``.keras`` file, checked for the fields that using a model needs."""
    path = card_path(model_path)
    if not path.exists():
        raise FileNotFoundError(
            f"model card {path} is missing; training writes it next to the .keras file"
        )
    try:
        card = json.loads(path.read_text())
    except ValueError as exc:
        raise CardError(
            f"model card {path} is not valid JSON ({exc}); retrain, or restore the file"
        ) from None
    missing = [k for k in REQUIRED if k not in card]
    if missing:
        raise CardError(
            f"model card {path} lacks {missing}; it was not written by idc_utils training"
        )
    card.setdefault("tta", False)  # cards written before test-time augmentation existed
    return card


class ModelFileError(ValueError):
    """A saved ``.keras`` file cannot be loaded; the message says why and what to do."""


def load_model(path: str | Path):
    """Load a saved classifier and its card: ``(model, card)``. Clear errors for missing files
    and for models this version of the package or of Keras cannot read."""
    import keras

    from idc_utils.models.augment import register_layers

    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(
            f"{path} is a folder; give the .keras file (e.g. {path}/efficientnet.keras)"
        )
    if not path.exists():
        raise FileNotFoundError(
            f"model {path} not found: train one with `make book` (chapters 05/06) or pass --model "
            "runs/<profile>/models/<name>.keras"
        )
    card = read_card(path)
    register_layers()  # a model that holds one of the package's layers needs it registered
    try:
        model = keras.models.load_model(path, compile=False)
    except (TypeError, ValueError, KeyError, OSError, AttributeError) as exc:
        saved = card.get("versions", {})
        made = ", ".join(f"{k} {v}" for k, v in saved.items()) or "unknown versions"
        raise ModelFileError(
            f"{path} cannot be loaded with Keras {keras.__version__} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). It was saved with {made}. Retrain "
            "it with this installation (`make book FORCE=1`, or `python -m idc_utils train "
            "--force`), or load it where those versions are installed."
        ) from None
    return model, card


INPUT = {
    "shape": [50, 50, 3],
    "dtype": "uint8 RGB in [0, 255]",
    "smaller_patches": "padded with white",
}


def versions() -> dict:
    """The versions a card records: this package, TensorFlow, Keras, Python."""
    import platform

    import keras
    import tensorflow as tf

    from idc_utils import __version__

    return {
        "idc_utils": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


def save_card(card: dict, model_path: str | Path) -> Path:
    """Write ``card`` beside the model at ``model_path``."""
    path = card_path(model_path)
    path.write_text(json.dumps(card, indent=2))
    return path


def build_card(
    name: str,
    *,
    backbone: str,
    backbone_note: str,
    image_size: int,
    preprocessing: dict,
    last_conv_layer: str | None,
    tta: bool,
    operating_point: dict,
    train: pd.DataFrame,
    val: pd.DataFrame,
    training: dict,
    epochs_run: int,
    seconds: dict,
    seed: int,
    data_fingerprint: str,
    device: str,
    **extra,
) -> dict:
    """The model card of a saved model: what it is, how its input is prepared, its operating
    threshold (``operating_point``: :meth:`idc_utils.evaluation.thresholds.OperatingPoint.as_dict`,
    chosen on the validation rows ``val``), how it was trained (on the rows ``train``), on which
    data, and with which versions. ``extra`` adds fields (an ensemble's members, say)."""
    import time

    return {
        "name": name,
        "format": "idc-book model card v1",
        "disclaimer": DISCLAIMER,
        "backbone": backbone,
        "backbone_note": backbone_note,
        "input": dict(INPUT),
        "image_size": image_size,
        "preprocessing": preprocessing,
        "last_conv_layer": last_conv_layer,
        "tta": bool(tta),
        **operating_point,
        "threshold_chosen_on": f"validation patients ({val['patient_id'].nunique()})",
        "training": training,
        "epochs_run": int(epochs_run),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "seed": int(seed),
        "data": {
            "fingerprint": data_fingerprint,
            "train_patches": int(len(train)),
            "train_patients": int(train["patient_id"].nunique()),
            "train_idc_positive_share": float(train["label"].mean()),
            "val_patches": int(len(val)),
            "val_patients": int(val["patient_id"].nunique()),
        },
        "device": device,
        "trained_on": host.float_path(),
        **extra,
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def trained_on(card: dict) -> str:
    """Where a model was trained, as one line: the processor, the TensorFlow version and the
    oneDNN setting (two models from one recipe and seed differ when these do); for an ensemble,
    where each member was."""
    if card.get("members"):
        return "; ".join(
            f"{m['name']}: {m.get('trained_on', host.describe_float_path(None))}"
            for m in card["members"]
        )
    facts = card.get("trained_on")
    if facts is None:
        return host.describe_float_path(None)
    tf_version = card.get("versions", {}).get("tensorflow")
    return host.describe_float_path({**facts, **({"tensorflow": tf_version} if tf_version else {})})


def summary(card: dict) -> pd.Series:
    """The model card's main facts, as a table for the book."""
    v = card["val_metrics"]
    t = card["training"]
    phases = ", ".join(
        f"{p['name']} {p['epochs']} ep @ {p['learning_rate']:g} (unfreeze {p['unfreeze_blocks']})"
        for p in t["phases"]
    )
    return pd.Series(
        {
            "model": card["name"],
            "backbone": card["backbone_note"],
            "input": f"50x50 RGB -> {card['image_size']} px ({card['preprocessing']['scaling']} "
            "scaling, "
            "inside the model)",
            "phases": phases,
            "epochs run": card["epochs_run"],
            "training time": ", ".join(f"{k} {v / 60:.1f} min" for k, v in card["seconds"].items()),
            "device": card["device"],
            # two short rows, so that a rendered table shows them whole
            "trained on (processor)": (card.get("trained_on") or {}).get(
                "processor", host.describe_float_path(None)
            ),
            f"{host.ONEDNN_VARIABLE} when trained": (card.get("trained_on") or {}).get(
                host.ONEDNN_VARIABLE, host.describe_float_path(None)
            ),
            "test-time augmentation": "8 flips and quarter turns" if card.get("tta") else "none",
            "validation AUC": round(v["auc"], 4),
            "threshold (chosen on validation)": round(card["threshold"], 4),
            f"validation recall at threshold (target {card['target_recall']})": round(
                v["recall"], 4
            ),
            "validation precision at threshold": round(v["precision"], 4),
            "data fingerprint": card["data"]["fingerprint"],
            "seed": card["seed"],
        },
        name="value",
    )


def find_models(models_dir) -> list[Path]:
    """Every model of a run folder's ``models/``: CNN first, then EfficientNet, then the others
    by name."""
    found = sorted(Path(models_dir).glob("*.keras"))
    order = {"cnn": 0, "efficientnet": 1}
    return sorted(found, key=lambda p: (order.get(p.stem, 2), p.stem))


def best_by_validation(cards: dict):
    """Of one run's model cards (key -> card), the key of the highest validation AUC: the model
    the app serves when it is not given one."""
    return max(cards, key=lambda k: cards[k].get("val_metrics", {}).get("auc", 0))


def compare(cards: dict) -> pd.DataFrame:
    """Validation facts of several model cards side by side (name -> card)."""
    rows = {
        name: {
            "validation AUC": c["val_metrics"]["auc"],
            "threshold": c["threshold"],
            "recall at threshold": c["val_metrics"]["recall"],
            "precision at threshold": c["val_metrics"]["precision"],
            "specificity at threshold": c["val_metrics"]["specificity"],
            "image size": c["image_size"],
            "training minutes": sum(c["seconds"].values()) / 60,
        }
        for name, c in cards.items()
    }
    return pd.DataFrame(rows).T
