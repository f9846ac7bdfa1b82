"""Test data in DICOM: a tissue-like RGB region, and single-frame DICOM files of any kind (the
tests of decoding, of predict and of DICOMweb share them)."""

from __future__ import annotations

import io

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


def tissue_like(h, w, seed=0):
    """An RGB image with white background and pink-purple 'tissue' blocks on the 50-px grid."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 255, np.uint8)
    for r in range(0, h, 50):
        for c in range(0, w, 50):
            if rng.random() < 0.6:
                base = rng.integers([120, 40, 110], [220, 120, 200])
                img[r : r + 50, c : c + 50] = np.clip(
                    base + rng.normal(0, 12, (min(50, h - r), min(50, w - c), 3)), 0, 255
                )
    return img


def single_frame(arr, photometric="RGB", syntax=ExplicitVRLittleEndian, pixels=True, bits=8):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = (
        meta.MediaStorageSOPClassUID,
        meta.MediaStorageSOPInstanceUID,
    )
    ds.PatientID, ds.Modality = "p1", "OT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Rows, ds.Columns = arr.shape[:2]
    ds.SamplesPerPixel = 3 if arr.ndim == 3 else 1
    ds.PhotometricInterpretation = photometric
    if arr.ndim == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if pixels and syntax == ExplicitVRLittleEndian:
        ds.PixelData = arr.tobytes()
    elif pixels:  # a compressed syntax: one fragment of bytes no installed decoder reads
        from pydicom.encaps import encapsulate

        ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(64)])
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()
