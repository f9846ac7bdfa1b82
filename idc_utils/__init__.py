"""idc_utils: the package every chapter of idc-book shares.

Research and teaching software for invasive ductal carcinoma (IDC) detection in H&E
patches. It is not a diagnostic device.

Modules (one concern each):
    data        find, parse, validate and load patches; the decoded-patch cache
    split       patient-level train/val/test split and leakage checks
    runs        profiles, chapter parameters, the run folder
    eda         dataset summaries and figures for the EDA chapter
    plots       small plotting helpers shared by chapters
    slides      mosaics and heatmaps rebuilt from patch coordinates
    book        run the chapters with papermill and build the Jupyter Book
"""

__version__ = "0.1.0"

DISCLAIMER = (
    "Research and teaching software. Not a medical device: not for diagnosis, "
    "treatment or any clinical decision."
)
