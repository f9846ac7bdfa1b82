"""The dataset's facts every layer shares: patch size, class names, the files read as patches, the
pixel size of the training patches, and the disclaimer."""

from __future__ import annotations

PATCH_SIZE = 50


#: image files that ``predict`` and the app read as patches (PIL decodes them; pydicom the .dcm)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".dcm")


#: the two classes of the dataset, by label
CLASS_NAMES = {0: "IDC-", 1: "IDC+"}


#: value used to pad edge patches (white, like the glass around the tissue)
PAD_VALUE = 255


DISCLAIMER = (
    "Research and teaching software. Not a medical device: not for diagnosis, "
    "treatment or any clinical decision."
)


# The Kaggle patches were cut from slides scanned at 40x and downsampled to 2.5x, about 4 um per
# pixel (Janowczyk & Madabhushi 2016). A slide is read at the level closest to that.
TRAINING_PIXEL_SPACING_MM = 0.004
