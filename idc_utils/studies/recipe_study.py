"""The training-recipe study: which changes to the EfficientNet's recipe help, read on validation.

``tools/recipe_study.py`` trains each *variant* (the study's reference recipe with some parameters
changed) on a run's training patients and stores, per variant, validation and test AUC and the
paired patient-bootstrap difference to the reference. This module holds what the tool and
chapter 8 share: how a variant's parameters are made, which row a variant is compared with, which
row is the recipe the book trains, and the table and sentences the chapter shows. Research and
teaching software, not a medical device.
"""

from __future__ import annotations

import json

import pandas as pd


def variant_params(base: dict, overrides: dict) -> dict:
    """``base`` parameters with ``overrides``; ``augment`` is merged key by key."""
    p = dict(base)
    for k, v in overrides.items():
        p[k] = {**p[k], **v} if k == "augment" else v
    return p


def book_variant(study: dict, training: dict) -> str | None:
    """The study's variant whose recipe is the one a model was trained with (``training``: its
    card's ``training``), the seed aside; None when no variant matches (another recipe)."""

    def key(recipe: dict) -> str:
        return json.dumps({k: v for k, v in recipe.items() if k != "seed"}, sort_keys=True)

    want = key(training)
    for name, v in study["variants"].items():
        if "recipe" in v and key(v["recipe"]) == want:
            return name
    return None


def is_seed_repeat(name: str) -> bool:
    """``<variant>_seed_2``: a variant trained again with the seed of ``seed_2``."""
    return name.endswith("_seed_2") and name != "seed_2"


def compared_with(name: str) -> str:
    """The row a variant's paired differences are taken against: ``seed_2`` for a seed-2
    repeat (the reference trained with the same seed), else the reference."""
    return "seed_2" if is_seed_repeat(name) else "reference"


def table(study: dict, book_variant: str | None = None) -> pd.DataFrame:
    """One row per variant, validation AUC
    and its paired difference to the reference (what chooses), test AUC with its interval and
    its paired difference (what confirms), all with test-time augmentation, and training time.
    The row of the recipe the book trains (``book_variant``) is marked."""

    def paired(d, name):
        return "" if d is None or name == "reference" else f"{d[0]:+.4f} [{d[1]:+.3f}, {d[2]:+.3f}]"

    rows = []
    for name, v in study["variants"].items():
        t = v["tta"]
        auc = t["test"]["auc"]
        label = f"{name} (the book's recipe)" if name == book_variant else name
        rows.append(
            {
                "variant": label,
                "what it changes": v["what"],
                "train min": round(v["train_minutes"], 1),
                "val AUC": round(t["val_auc"], 4),
                "val: vs reference": paired(t.get("val_auc_vs_reference"), name),
                "test AUC [95% CI]": f"{auc[0]:.4f} [{auc[1]:.3f}, {auc[2]:.3f}]",
                "test: vs reference": paired(t.get("test_auc_vs_reference"), name),
            }
        )
    return pd.DataFrame(rows).set_index("variant")


def verdict(study: dict, book_variant: str | None = None) -> str:
    """What the recipe study says, in sentences computed from it (validation chooses). A variant
    that only changes the seed (``seed_*``) is the yardstick of chance, not a candidate; a
    ``<variant>_seed_2`` row repeats a variant with that seed and is compared with ``seed_2``.
    ``book_variant``: the row whose recipe the book trains (:func:`book_variant`)."""
    better, worse, chance, repeats = [], [], [], []
    for name, v in study["variants"].items():
        d = v["tta"].get("val_auc_vs_reference")
        if name == "reference" or d is None:
            continue
        t = v["tta"].get("test_auc_vs_reference")
        if name.startswith("seed_"):
            chance.append((name, d, t))
        elif is_seed_repeat(name):
            repeats.append((name, d, t))
        elif d[1] > 0:
            better.append(name)
        elif d[2] < 0:
            worse.append(name)
    text = (
        f"On the validation patients, {', '.join(f'**{b}**' for b in better)} beat the reference "
        "(paired interval above zero)"
        if better
        else "On the validation patients no variant beat the reference: every paired interval "
        "contains zero or lies below it"
    )
    if worse:
        text += f"; {', '.join(f'**{w}**' for w in worse)} did worse"
    text += "."
    for name, d, t in repeats:
        text += (
            f" Trained again with seed 2, **{name.removesuffix('_seed_2')}** moved validation AUC "
            f"by {d[0]:+.4f} [{d[1]:+.3f}, {d[2]:+.3f}] against the reference with the same seed"
            + (f" (test {t[0]:+.4f} [{t[1]:+.3f}, {t[2]:+.3f}])" if t else "")
            + "."
        )
    for name, d, t in chance:
        moved = f"validation AUC by {d[0]:+.4f}" + (f" and test AUC by {t[0]:+.4f}" if t else "")
        text += (
            f" Training the reference again with another seed (**{name}**) moved {moved}: "
            "differences of that size between two variants are chance."
        )
    if book_variant in study["variants"]:
        minutes = study["variants"][book_variant]["train_minutes"]
        if book_variant in better:
            why = "it beat the reference on validation"
        elif book_variant == "reference" and not better:
            why = "no variant beat it on validation"
        else:
            why = "not what validation chose in this study"
        text += (
            f" The book trains **{book_variant}** ({why}), {minutes:.1f} min of training on the "
            "machine of the study"
        )
        t = study["variants"][book_variant]["tta"].get("test_auc_vs_reference")
        if book_variant != "reference" and t:
            text += (
                f"; on test, read only as confirmation, it moved AUC by {t[0]:+.4f} "
                f"[{t[1]:+.3f}, {t[2]:+.3f}]."
            )
        else:
            text += "; a test difference that validation did not show is not a reason to change it."
    else:
        text += " This run trains a recipe that is not a row of the study."
    return text
