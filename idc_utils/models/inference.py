"""Forward passes: IDC+ probabilities from a trained classifier, with or without test-time
augmentation (TTA). Training (for the validation threshold), evaluation, ``predict`` and the app
all score patches through this module, so they cannot disagree.

TTA here averages the probabilities over the **8 symmetries of the square** (identity, three
quarter turns, and the same four after a flip). Tissue has no "up", so each view is an equally
valid picture of the same patch; these transforms move pixels exactly (no interpolation), and
averaging them removes the part of a prediction that depends on orientation. It costs 8 forward
passes per patch. Whether a model uses it is stored in its card (``tta``).
"""

from __future__ import annotations

import numpy as np

from idc_utils.core.constants import PATCH_SIZE

#: the 8 symmetries of the square as (quarter turns, flip first)
DIHEDRAL = [(k, flip) for flip in (False, True) for k in range(4)]


def dihedral_view(x: np.ndarray, turns: int, flip: bool) -> np.ndarray:
    """One symmetry of a batch ``(n, h, w, c)`` (NumPy; the reference for the graph version)."""
    if flip:
        x = x[:, :, ::-1]
    return np.rot90(x, turns, axes=(1, 2))


def _views(x):
    """The 8 views of a batch, stacked along the batch axis: ``(8 n, h, w, c)`` (TensorFlow)."""
    import tensorflow as tf

    out = []
    for turns, flip in DIHEDRAL:
        v = tf.reverse(x, axis=[2]) if flip else x
        out.append(tf.image.rot90(v, k=turns))
    return tf.concat(out, axis=0)


def make_infer(model, tta: bool = False):
    """A compiled forward pass for uint8 batches ``(n, 50, 50, 3)`` -> probabilities ``(n,)``
    (one trace for any batch size). With ``tta`` the mean over the 8 views. Made once per model
    and setting, and kept on the model: scoring validation, then test patients, then a figure's
    patches does not trace the network three times."""
    kept = f"_idc_infer_{'tta' if tta else 'plain'}"
    if getattr(model, kept, None) is None:
        setattr(model, kept, _compiled_infer(model, tta))
    return getattr(model, kept)


def _compiled_infer(model, tta: bool):
    import tensorflow as tf

    @tf.function(
        input_signature=[tf.TensorSpec([None, PATCH_SIZE, PATCH_SIZE, 3], tf.uint8)],
        reduce_retracing=True,
    )
    def infer(x):
        x = tf.cast(x, tf.float32)
        if not tta:
            return tf.reshape(tf.cast(model(x, training=False), tf.float32), [-1])
        n = tf.shape(x)[0]
        p = tf.reshape(tf.cast(model(_views(x), training=False), tf.float32), [8, n])
        return tf.reduce_mean(p, axis=0)

    return lambda batch: infer(np.asarray(batch, np.uint8)).numpy().astype(np.float64)


def predict_proba(
    model, images: np.ndarray, index, *, tta: bool = False, batch_size: int = 256
) -> np.ndarray:
    """IDC+ probabilities for ``images[index]``, batched (``images`` may be a memory map)."""
    index = np.asarray(index, dtype=np.int64)
    infer = make_infer(model, tta)
    step = max(1, batch_size // 8) if tta else batch_size
    out = np.empty(len(index), np.float64)
    order = np.argsort(index, kind="stable")  # sorted reads are kinder to a memory map
    for s in range(0, len(index), step):
        rows = order[s : s + step]
        out[rows] = infer(images[index[rows]])
    return out


def models_probabilities(loaded: dict, images: np.ndarray, parts: dict) -> dict:
    """P(IDC+) of every model in ``loaded`` (name -> ``(model, card)``) on every part (name ->
    rows with column ``i``), each with its card's TTA setting: ``{model: {part: probs}}``.

    An ensemble (card ``backbone`` "ensemble") whose members are all in ``loaded`` with the same
    TTA setting is not run again: its output *is* the mean of theirs (the mean over the 8 views
    and the mean over members commute), so running it would only pay for both networks twice."""
    out: dict = {}
    ensembles = {n for n, (_, c) in loaded.items() if c.get("backbone") == "ensemble"}
    for name, (model, card) in loaded.items():
        if name not in ensembles:
            out[name] = {
                s: predict_proba(model, images, rows["i"], tta=bool(card.get("tta")))
                for s, rows in parts.items()
            }
    for name in ensembles:
        model, card = loaded[name]
        members = card.get("training", {}).get("members", [])
        same = all(
            m in out and bool(loaded[m][1].get("tta")) == bool(card.get("tta")) for m in members
        )
        if members and same:
            out[name] = {s: np.mean([out[m][s] for m in members], axis=0) for s in parts}
        else:
            out[name] = {
                s: predict_proba(model, images, rows["i"], tta=bool(card.get("tta")))
                for s, rows in parts.items()
            }
    return {n: out[n] for n in loaded}
