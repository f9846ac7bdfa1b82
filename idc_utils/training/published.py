"""A generator published with the book (the diffusion generator in ``book/data/generator``, the
GAN in ``book/data/gan``) is loaded only by a run it fits: the same configuration, the same step
count and the same training patches, by name and label. One check serves both kinds."""

from __future__ import annotations

from pathlib import Path

from idc_utils.data.split import training_patches_digest


def check_fits(
    what: str, folder: Path, state: dict, saved: dict, wanted: dict, steps: int, rows, remedy: str
) -> None:
    """Raise a ``ValueError`` naming every difference between the published ``what`` in
    ``folder`` (its state file ``state``, its configuration ``saved`` as a dict) and what the
    run asks for (``wanted``, ``steps`` steps, trained on the patches of ``rows``), ending with
    ``remedy``; return quietly when there is none."""
    differs = [f"{k} {saved.get(k)!r} != {v!r}" for k, v in wanted.items() if saved.get(k) != v]
    if state["steps"] != steps:
        differs.append(f"steps {state['steps']} != {steps}")
    if state.get("training_patches_digest") != training_patches_digest(rows):
        differs.append("it was trained on other patches (another split or dataset)")
    if differs:
        raise ValueError(
            f"the {what} in {folder} does not fit this run: {'; '.join(differs)}. {remedy}"
        )
