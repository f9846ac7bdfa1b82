"""idc_utils: the package the chapters of idc-book share.

Research and teaching software for invasive ductal carcinoma (IDC) detection in H&E patches;
not a diagnostic device. Subpackages in the order data flows; each may import only those
listed before it (``make lint`` checks this with import-linter):

    core        constants, errors and small utilities; imports nothing of ours
    data        patch files, decoding, the dataset and its cache, the patient split, mosaics
    models      preprocessing layers, augmentation, networks, model cards, forward passes
    evaluation  metrics, bootstrap intervals, thresholds, calibration, slide context
    training    the fit loop, devices, reuse, the ensemble, the diffusion generator
    serving     predict, the Gradio app, DICOMweb and Orthanc (does not import training)
    studies     the chapters' experiments and the sentences they print
    chapters    what a notebook needs besides: parameters, the run folder, its figures
    book        run the chapters (re-running only what changed), render and publish the book
    cli         ``python -m idc_utils``

The map of the code, with where a new chapter's code goes: ``book/package.md``.
"""

import os as _os
import sys as _sys

__version__ = "0.1.0"

# The package's code is TensorFlow code, while Keras 3 runs on whatever backend
# ~/.keras/keras.json or $KERAS_BACKEND names (jax, torch): set it before anything imports Keras.
# TensorFlow's C++ start-up lines (absl, oneDNN) are noise in a chapter: quiet unless asked for.
_os.environ["KERAS_BACKEND"] = "tensorflow"
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if "keras" in _sys.modules and _sys.modules["keras"].backend.backend() != "tensorflow":
    raise ImportError(
        "Keras was imported with the backend "
        f"{_sys.modules['keras'].backend.backend()!r} before idc_utils; idc_utils needs "
        "TensorFlow: import idc_utils first, or set KERAS_BACKEND=tensorflow"
    )
if "ipykernel" in _sys.modules:  # a chapter in Jupyter or under papermill: no start-up lines
    from idc_utils.core.quiet_import import quiet_tensorflow_import

    quiet_tensorflow_import()
