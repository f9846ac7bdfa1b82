"""The pictures the app returns: a patch's answer as one square tile (class, probability, patch and
Grad-CAM), a probability map blended over tissue with its colour bar, outlines of annotated cells.
"""

from __future__ import annotations

import numpy as np

from idc_utils.core.constants import PATCH_SIZE
from idc_utils.data.mosaic import per_pixel

MAX_OVERLAY_SIDE = 2048


#: side of the square picture the Patch tab shows per patch (square: galleries crop other shapes)
TILE_SIDE = 432


CLASS_COLOURS = {"IDC+": (196, 78, 82), "IDC-": (76, 114, 176)}


def result_tile(
    patch: np.ndarray, cam_overlay: np.ndarray | None, label: str, prob: float, name: str
) -> np.ndarray:
    """One patch's answer as a square picture: the class and probability written on top, the
    patch and its Grad-CAM side by side (each 4x, nearest neighbour, so pixels stay visible;
    the patch alone when the model has no Grad-CAM, as an ensemble). Square, so that no gallery
    layout crops it; the words are in the picture, so that they are read even where a caption is
    not shown."""
    from PIL import Image, ImageDraw, ImageFont

    side, scale, gap = TILE_SIDE, 4, 16
    img = Image.new("RGB", (side, side), "white")
    draw = ImageDraw.Draw(img)
    big = ImageFont.load_default(size=28)
    small = ImageFont.load_default(size=15)
    w = PATCH_SIZE * scale
    panels = [(patch, "patch")]
    if cam_overlay is not None:
        panels.append((cam_overlay, "Grad-CAM (red: IDC+ evidence)"))
    width = len(panels) * w + (len(panels) - 1) * gap
    left, top = (side - width) // 2, (side - w) // 2 + 8  # centred; the title above
    draw.text(
        (side // 2, top - 36),
        f"{label}   P(IDC+) = {prob:.3f}",
        fill=CLASS_COLOURS[label],
        font=big,
        anchor="mm",
    )
    for k, (part, caption) in enumerate(panels):
        panel = Image.fromarray(np.kron(part, np.ones((scale, scale, 1), np.uint8)))
        x = left + k * (w + gap)
        img.paste(panel, (x, top))
        draw.text((x + w // 2, top + w + 16), caption, fill=(60, 60, 60), font=small, anchor="mm")
    return np.asarray(img)  # the file name is the gallery's caption


def heat_overlay(base: np.ndarray, grid_values: np.ndarray, step: int) -> np.ndarray:
    """Blend (50/50) a per-tile probability map (NaN = not scored) over an RGB image. The colour
    map is applied per tile and repeated to pixels, in integer arithmetic (megapixel images)."""
    import matplotlib

    h, w = base.shape[:2]
    scored_cells = ~np.isnan(grid_values)
    colours = (
        matplotlib.colormaps["magma"](np.clip(np.nan_to_num(grid_values), 0, 1))[..., :3] * 255
    ).astype(np.uint16)
    heat = per_pixel(colours, step, (h, w))
    scored = per_pixel(scored_cells, step, (h, w))
    blended = ((base.astype(np.uint16) + heat) >> 1).astype(np.uint8)
    return np.where(scored[..., None], blended, base)


def outline_cells(
    img: np.ndarray, mask: np.ndarray, step: int, colour=(0, 255, 255), width: int = 3
) -> np.ndarray:
    """Draw the border of the cells where ``mask`` is true (e.g. the annotated IDC region)."""
    h, w = img.shape[:2]
    m = per_pixel(np.asarray(mask, bool), step, (h, w))
    inner = m.copy()
    for axis in (0, 1):
        for shift in (width, -width):
            inner &= np.roll(m, shift, axis=axis)
    out = img.copy()
    out[m & ~inner] = colour
    return out


def with_colour_bar(img: np.ndarray, threshold: float, note: str = "") -> np.ndarray:
    """The map with its legend below: the colour scale of P(IDC+) from 0 to 1, the operating
    threshold marked, and an optional note (e.g. what the outline means)."""
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    h, w = img.shape[:2]
    width = max(w, 480)
    u = max(1.0, width / 700)  # scale the legend with the picture, so it reads at the same size
    bar_h, pad, fs = int(18 * u), int(12 * u), int(14 * u)
    legend = Image.new("RGB", (width, int(86 * u)), "white")
    x0, x1 = pad, width - pad
    top = int(8 * u)
    ramp = matplotlib.colormaps["magma"](np.linspace(0, 1, x1 - x0))[:, :3]
    ramp = (np.repeat(ramp[None], bar_h, axis=0) * 255).astype(np.uint8)
    legend.paste(Image.fromarray(ramp), (x0, top))
    draw = ImageDraw.Draw(legend)
    font = ImageFont.load_default(size=fs)
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = x0 + v * (x1 - x0 - 1)
        draw.line([(x, top + bar_h), (x, top + bar_h + 4 * u)], fill="black", width=max(1, int(u)))
        draw.text((x, top + bar_h + 6 * u), f"{v:g}", fill="black", font=font, anchor="ma")
    xt = x0 + threshold * (x1 - x0 - 1)
    draw.line([(xt, top - 4 * u), (xt, top + bar_h + 4 * u)], fill=(0, 160, 0), width=int(3 * u))
    label_y = top + bar_h + 22 * u
    draw.text(
        (min(max(xt, x0 + 60 * u), x1 - 60 * u), label_y),
        f"threshold {threshold:.3f}",
        fill=(0, 120, 0),
        font=font,
        anchor="ma",
    )
    caption = "colour: P(IDC+) of each 50x50 tile" + (f"; {note}" if note else "")
    draw.text((x0, label_y + 20 * u), caption, fill="black", font=font, anchor="la")
    canvas = Image.new("RGB", (width, h + legend.height), "white")
    canvas.paste(Image.fromarray(img), (0, 0))
    canvas.paste(legend, (0, h))
    return np.asarray(canvas)


def downscale(img: np.ndarray, max_side: int = MAX_OVERLAY_SIDE) -> np.ndarray:
    h, w = img.shape[:2]
    if max(h, w) <= max_side:
        return img
    from PIL import Image

    f = max_side / max(h, w)
    return np.asarray(Image.fromarray(img).resize((int(w * f), int(h * f)), Image.BILINEAR))
