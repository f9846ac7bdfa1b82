"""Decoding bytes to patches: padding, conversions, and a plain reason for what cannot be used."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from idc_utils.core import errors
from idc_utils.data import decode


def _png_bytes(arr, mode=None, **kw):
    buf = io.BytesIO()
    (Image.fromarray(arr, mode=mode) if mode else Image.fromarray(arr)).save(
        buf, format="PNG", **kw
    )
    return buf.getvalue()


def test_decode_pads_edge_patches_with_white_at_bottom_right():
    arr = np.zeros((13, 50, 3), np.uint8)  # 50 wide, 13 high: cut at the bottom edge
    patch, w, h, note = decode.decode_patch(_png_bytes(arr))
    assert patch.shape == (50, 50, 3) and (w, h) == (50, 13)
    assert (patch[:13] == 0).all() and (patch[13:] == 255).all()
    assert note == "padded from 50x13"


def test_decode_converts_grayscale_rgba_and_16bit():
    gray = np.full((50, 50), 77, np.uint8)
    patch, *_, note = decode.decode_patch(_png_bytes(gray))
    assert (patch == 77).all() and "grayscale" in note

    rgba = np.zeros((50, 50, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 0  # fully transparent: white
    rgba[:10, :, 3] = 255
    patch, *_, note = decode.decode_patch(_png_bytes(rgba))
    assert (patch[:10, :, 0] == 200).all() and (patch[:10, :, 1] == 0).all()
    assert (patch[10:] == 255).all() and "transparency" in note

    g16 = np.full((50, 50), 65535, np.uint16)
    g16[:25] = 0
    img = Image.fromarray(g16)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    patch, *_, note = decode.decode_patch(buf.getvalue())
    assert (patch[:25] == 0).all() and (patch[25:] == 255).all() and "16-bit" in note


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"", "empty file"),
        (b"this is not a png at all", "not an image"),
        (None, "unreadable"),  # truncated PNG, filled in below
    ],
)
def test_decode_rejects_bad_files_with_a_reason(payload, reason):
    if payload is None:
        payload = _png_bytes(
            np.random.default_rng(0).integers(0, 255, (50, 50, 3), dtype=np.uint8)
        )[:200]
    with pytest.raises(errors.PatchDecodeError, match=reason):
        decode.decode_patch(payload)


def test_decode_refuses_larger_images_unless_asked():
    big = np.zeros((80, 60, 3), np.uint8)
    with pytest.raises(errors.PatchDecodeError, match="larger than a 50x50"):
        decode.decode_patch(_png_bytes(big))
    patch, w, h, note = decode.decode_patch(_png_bytes(big), allow_larger=True)
    assert patch.shape == (50, 50, 3) and note == "resized from 60x80"
