"""Rebuild a patient's tissue region from patch coordinates, and map values over it.

Each Kaggle patch name carries the position of its top-left corner in the original slide
(``x1001_y1051``; the patches lie on a 50-pixel grid). Placing every patch of a patient at its
(x, y) rebuilds the tissue region the patches were cut from (a *mosaic*); placing one number per
patch on the same grid gives a *map* (ground-truth IDC, or a model's probability). One tiling
logic serves the EDA mosaic, the evaluation heatmaps and the app.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .data import PATCH_SIZE


@dataclass(frozen=True)
class SlideGrid:
    """Where each patch of a slide sits: origin, grid step and the grid cell of every row."""

    x0: int
    y0: int
    step: int
    rows: int
    cols: int
    row: np.ndarray  # grid row of each patch
    col: np.ndarray  # grid column of each patch

    @property
    def shape_px(self) -> tuple[int, int]:
        return self.rows * self.step, self.cols * self.step

    @classmethod
    def from_coords(cls, x, y, step: int = PATCH_SIZE) -> "SlideGrid":
        x = np.asarray(x, dtype=np.int64)
        y = np.asarray(y, dtype=np.int64)
        if len(x) == 0:
            raise ValueError("no patches to place")
        x0, y0 = int(x.min()), int(y.min())
        col = (x - x0) // step
        row = (y - y0) // step
        return cls(x0, y0, step, int(row.max()) + 1, int(col.max()) + 1, row, col)


def mosaic(images: np.ndarray, x, y, *, step: int = PATCH_SIZE, background: int = 255):
    """Place patches ``images[k]`` at ``(x[k], y[k])``: the rebuilt region as uint8 RGB, and its
    grid. Missing cells (background the dataset does not contain) stay ``background``."""
    grid = SlideGrid.from_coords(x, y, step)
    h, w = grid.shape_px
    canvas = np.full((h, w, 3), background, dtype=np.uint8)
    size = images.shape[1]
    for k in range(len(images)):
        r0, c0 = grid.row[k] * step, grid.col[k] * step
        canvas[r0 : r0 + size, c0 : c0 + size] = images[k][: h - r0, : w - c0]
    return canvas, grid


def value_map(grid: SlideGrid, values, fill: float = np.nan) -> np.ndarray:
    """One value per patch on the slide grid ``(rows, cols)``; cells without a patch get ``fill``."""
    out = np.full((grid.rows, grid.cols), fill, dtype=np.float64)
    out[grid.row, grid.col] = np.asarray(values, dtype=np.float64)
    return out


def patient_rows(manifest: pd.DataFrame, patient_id: str) -> pd.DataFrame:
    rows = manifest[manifest["patient_id"].astype(str) == str(patient_id)]
    if rows.empty:
        have = manifest["patient_id"].astype(str).value_counts()
        raise ValueError(
            f"patient {patient_id} is not in the data; patients with the most patches: "
            + ", ".join(f"{p} ({n})" for p, n in have.head(5).items())
        )
    return rows


def draw_outline(ax, mask: np.ndarray, step: int, color="lime", lw=1.4, label=None):
    """Outline the cells where ``mask`` is true, on an image drawn at ``step`` pixels per cell."""
    mask = np.asarray(mask, dtype=bool)
    segs = []
    rows, cols = mask.shape
    padded = np.pad(mask, 1, constant_values=False)
    for r, c in zip(*np.nonzero(mask)):
        pr, pc = r + 1, c + 1
        y0, y1, x0, x1 = r * step, (r + 1) * step, c * step, (c + 1) * step
        if not padded[pr - 1, pc]:
            segs.append([(x0, y0), (x1, y0)])
        if not padded[pr + 1, pc]:
            segs.append([(x0, y1), (x1, y1)])
        if not padded[pr, pc - 1]:
            segs.append([(x0, y0), (x0, y1)])
        if not padded[pr, pc + 1]:
            segs.append([(x1, y0), (x1, y1)])
    from matplotlib.collections import LineCollection

    coll = LineCollection(segs, colors=color, linewidths=lw, label=label)
    ax.add_collection(coll)
    return coll


def plot_mosaic(ax, images, rows: pd.DataFrame, *, outline_positive: bool = True, title=None):
    """Draw a patient's rebuilt tissue region, with IDC+ patches outlined."""
    canvas, grid = mosaic(images, rows["x"], rows["y"])
    ax.imshow(canvas, interpolation="nearest")
    if outline_positive:
        pos = value_map(grid, rows["label"], fill=0) > 0.5
        draw_outline(ax, pos, grid.step, label="IDC+ (ground truth)")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return grid


# ----------------------------------------------------------------------------- model maps


def dice(pred_mask, true_mask) -> float:
    """Dice overlap of two boolean maps (1.0 when both are empty)."""
    a = np.asarray(pred_mask, bool)
    b = np.asarray(true_mask, bool)
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2 * (a & b).sum() / s)


def slide_metrics(rows: pd.DataFrame, prob, threshold: float) -> dict:
    """Patch AUC within one slide and Dice of the thresholded map against the annotation."""
    from sklearn.metrics import roc_auc_score

    y = rows["label"].to_numpy().astype(int)
    p = np.asarray(prob, dtype=float)
    q = p >= threshold
    return {
        "patches": int(len(y)),
        "idc_positive": int(y.sum()),
        "patch_auc": float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan"),
        "dice": dice(q, y == 1),
        "predicted_idc_fraction": float(q.mean()),
        "true_idc_fraction": float(y.mean()),
        "threshold": float(threshold),
    }


def plot_slide_heatmap(images, rows: pd.DataFrame, prob, threshold: float, title: str = ""):
    """Three panels: the rebuilt tissue with the annotated IDC outline; the model's probability
    over it; the thresholded map against the annotation (hits, misses, false alarms)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    canvas, grid = mosaic(images, rows["x"], rows["y"])
    truth = value_map(grid, rows["label"], fill=0) > 0.5
    pmap = value_map(grid, prob)
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.6))
    axes[0].imshow(canvas)
    draw_outline(axes[0], truth, grid.step, label="annotated IDC")
    axes[0].set_title("tissue, annotated IDC outlined")
    axes[1].imshow(canvas)
    im = axes[1].imshow(np.kron(np.nan_to_num(pmap, nan=0), np.ones((grid.step, grid.step))), cmap="magma",
                        vmin=0, vmax=1, alpha=np.kron(np.where(np.isnan(pmap), 0, 0.6), np.ones((grid.step, grid.step))))
    draw_outline(axes[1], truth, grid.step, color="cyan")
    fig.colorbar(im, ax=axes[1], fraction=0.035, label="P(IDC+)")
    axes[1].set_title("model probability per patch")
    pred = value_map(grid, np.asarray(prob) >= threshold, fill=np.nan)
    has = ~np.isnan(pred)
    cat = np.full(pred.shape, np.nan)
    cat[has & (pred > 0) & truth] = 3  # hit
    cat[has & (pred > 0) & ~truth] = 2  # false alarm
    cat[has & (pred == 0) & truth] = 1  # missed
    cat[has & (pred == 0) & ~truth] = 0  # correct IDC-
    cmap = ListedColormap(["#dddddd", "#1f77b4", "#ff7f0e", "#d62728"])
    axes[2].imshow(cat, cmap=cmap, vmin=-0.5, vmax=3.5, interpolation="nearest")
    axes[2].set_title(f"at threshold {threshold:.3f}: red hit, blue missed, orange false alarm")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- tiling


def tissue_fractions(tiles: np.ndarray) -> np.ndarray:
    """For each tile ``(n, h, w, 3)``, the share of pixels that look like stained tissue rather
    than glass or background: not near-white, and with some colour saturation (vectorised)."""
    lo = tiles.min(axis=-1)
    hi = tiles.max(axis=-1)
    tissue = (lo <= 215) & ((hi.astype(np.int16) - lo) > 18)
    return tissue.reshape(len(tiles), -1).mean(axis=1)


def tissue_fraction(tile: np.ndarray) -> float:
    """:func:`tissue_fractions` of one tile."""
    return float(tissue_fractions(tile[None])[0])


def tile_image(image: np.ndarray, tile: int = PATCH_SIZE, min_tissue: float = 0.25):
    """Cut an RGB image into ``tile`` x ``tile`` patches on a grid; partial tiles at the right and
    bottom are padded with white (like the dataset's edge patches). Returns ``(tiles, table)``
    where ``table`` has ``x, y, tissue, is_tissue`` per tile; only tissue tiles need scoring."""
    h, w = image.shape[:2]
    rows_, cols_ = int(np.ceil(h / tile)), int(np.ceil(w / tile))
    rgb = image[..., :3]
    if (h, w) != (rows_ * tile, cols_ * tile):
        padded = np.full((rows_ * tile, cols_ * tile, 3), 255, np.uint8)
        padded[:h, :w] = rgb
        rgb = padded
    tiles = rgb.reshape(rows_, tile, cols_, tile, 3).swapaxes(1, 2).reshape(-1, tile, tile, 3)
    frac = tissue_fractions(tiles)
    ys, xs = np.divmod(np.arange(rows_ * cols_), cols_)
    table = pd.DataFrame({"x": xs * tile, "y": ys * tile, "tissue": frac, "is_tissue": frac >= min_tissue})
    return tiles, table


def plot_patient_overview(images, rows: pd.DataFrame, title: str = ""):
    """The rebuilt tissue region (IDC+ outlined) beside the ground-truth map per patch."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    from .plots import CLASS_COLORS

    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 6.5))
    grid = plot_mosaic(a, images, rows, title=title)
    b.imshow(value_map(grid, rows["label"]), cmap=ListedColormap([CLASS_COLORS[0], CLASS_COLORS[1]]),
             interpolation="nearest")
    b.set_title("ground truth per patch (blue IDC-, red IDC+, white: no patch)")
    b.set_xticks([])
    b.set_yticks([])
    a.legend(loc="lower left")
    fig.tight_layout()
    return fig, grid
