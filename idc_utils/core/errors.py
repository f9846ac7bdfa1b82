"""Errors that cross layers: bad or missing data, an unusable DICOM object, missing ImageNet
weights. Each message names the file or object and says what to do."""

from __future__ import annotations


class DataError(Exception):
    """Bad or missing input data. The message names the file(s) and the fix."""


class DataNotFoundError(DataError):
    """The dataset folder is not set or does not exist."""


class PatchDecodeError(DataError):
    """One file could not be turned into a patch."""


class DicomError(ValueError):
    """A DICOM object, series or server the project cannot use; the message names it and says
    what to do."""


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights cannot be found or downloaded; the message says how to get them."""
