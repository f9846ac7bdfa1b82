"""Bytes to a patch: decode PNG, JPEG, TIFF... or single-frame DICOM to uint8 RGB, convert
grayscale, 16-bit and transparency, pad the dataset's smaller edge patches with white. Training,
``predict`` and the app all read patches through these rules."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from idc_utils.core.constants import PAD_VALUE, PATCH_SIZE
from idc_utils.core.errors import PatchDecodeError

#: refuse to decode anything larger than this many pixels (decompression bombs)
MAX_PIXELS = 50_000_000


def _to_uint8_rgb(img: Image.Image) -> tuple[np.ndarray, list[str]]:
    notes = []
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        notes.append(f"converted from {mode} (16-bit) grayscale")
        return np.repeat(arr[..., None], 3, axis=2), notes
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        arr = np.asarray(rgba, dtype=np.float32)
        alpha = arr[..., 3:4] / 255.0
        if alpha.min() < 1.0:
            notes.append(f"converted from {mode}: transparency composited on white")
        else:
            notes.append(f"converted from {mode}")
        rgb = arr[..., :3] * alpha + 255.0 * (1 - alpha)
        return np.clip(rgb + 0.5, 0, 255).astype(np.uint8), notes
    if mode == "RGB":  # the common case: no conversion, no copy
        return np.asarray(img, dtype=np.uint8), notes
    notes.append("converted from grayscale" if mode in ("L", "1") else f"converted from {mode}")
    return np.asarray(img.convert("RGB"), dtype=np.uint8), notes


def decode_image(data: bytes, *, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, list[str]]:
    """Decode image bytes (PNG, JPEG, TIFF..., single-frame DICOM) to uint8 RGB ``(H, W, 3)``
    with notes on conversions.

    Raises :class:`~idc_utils.core.errors.PatchDecodeError` with a plain reason for empty, corrupt,
    truncated, non-image or oversized input."""
    if not data:
        raise PatchDecodeError("empty file (0 bytes)")
    if data[128:132] == b"DICM":  # a DICOM file: single-frame images decode like the others
        from idc_utils.data.dicom_files import decode_dicom_image

        return decode_dicom_image(data, max_pixels)
    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
            if w * h > max_pixels:
                raise PatchDecodeError(
                    f"image is {w}x{h} = {w * h:,} pixels, above the {max_pixels:,} limit"
                )
            if w < 1 or h < 1:
                raise PatchDecodeError(f"image has no pixels ({w}x{h})")
            img.load()
            arr, notes = _to_uint8_rgb(img)
            if getattr(img, "is_animated", False):
                notes.append(f"first of {img.n_frames} frames used")
    except PatchDecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise PatchDecodeError(
            f"image too large to decode safely, above the {max_pixels:,}-pixel limit ({exc})"
        ) from None
    except UnidentifiedImageError:
        raise PatchDecodeError("not an image PIL can read (corrupt or another file type)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PatchDecodeError(f"unreadable image: {exc}") from None
    return arr, notes


def fit_patch(arr: np.ndarray, size: int = PATCH_SIZE, *, allow_larger: bool = False):
    """Pad a smaller-than-``size`` patch at its bottom/right with white (as the Kaggle edge
    patches were cropped there); larger patches are an error unless ``allow_larger`` (then
    they are resized, bilinear). Returns ``(patch, note or '')``."""
    h, w = arr.shape[:2]
    if h == size and w == size:
        return arr, ""
    if h <= size and w <= size:
        out = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
        out[:h, :w] = arr
        return out, f"padded from {w}x{h}"
    if not allow_larger:
        raise PatchDecodeError(
            f"image is {w}x{h}, larger than a {size}x{size} patch; tile large images first"
        )
    img = Image.fromarray(arr).resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8), f"resized from {w}x{h}"


def decode_patch(data: bytes, size: int = PATCH_SIZE, *, allow_larger: bool = False):
    """Bytes -> ``(patch uint8 (size, size, 3), width, height, note)``."""
    arr, notes = decode_image(data)
    h, w = arr.shape[:2]
    patch, fit_note = fit_patch(arr, size, allow_larger=allow_larger)
    if fit_note:
        notes.append(fit_note)
    return patch, w, h, "; ".join(notes)
