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

__version__ = "0.1.0"
