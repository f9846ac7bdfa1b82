"""Patch files in, a checked dataset out: names, sources, the scan, decoding (PNG and single-frame
DICOM), the decoded-patch cache, the patient-level split, mosaics rebuilt from coordinates, the
``tf.data`` input pipeline, and DICOM files (a mosaic written as a whole slide, an instance's
attributes). Imports only :mod:`idc_utils.core`."""
