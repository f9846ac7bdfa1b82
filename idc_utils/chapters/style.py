"""The book's look, shared by every chapter: one matplotlib/seaborn style, colour-blind-safe class
and outcome colours (Okabe-Ito), patch grids, outlines of cells on a mosaic, and
:func:`show_figure`, which displays a figure whatever matplotlib's backend is. Each chapter's own
figures are in its ``*_figures`` module."""

from __future__ import annotations

import numpy as np

#: Okabe-Ito colours (Okabe & Ito 2008), told apart with every common colour-vision deficiency
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
}

#: the two classes: IDC- (0) and IDC+ (1)
CLASS_COLORS = {0: OKABE_ITO["blue"], 1: OKABE_ITO["vermillion"]}

#: the four outcomes of a thresholded prediction, on outcome maps and error grids: hits blue,
#: misses vermillion, false alarms orange, correct negatives a light grey that recedes
TP_COLOR = OKABE_ITO["blue"]
FN_COLOR = OKABE_ITO["vermillion"]
FP_COLOR = OKABE_ITO["orange"]
TN_COLOR = "#D9D9D9"
OUTCOME_COLORS = {
    "true positive": TP_COLOR,
    "false negative": FN_COLOR,
    "false positive": FP_COLOR,
    "true negative": TN_COLOR,
}
#: the same outcomes as text on white (the light grey of a true negative is too pale for text)
OUTCOME_TEXT_COLORS = {**OUTCOME_COLORS, "true negative": "#595959"}


def use_book_style() -> None:
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid")
    mpl.rcParams.update({"figure.dpi": 100, "savefig.dpi": 110, "axes.titlesize": "medium"})


def patch_grid(
    images, titles=None, ncols: int = 8, size: float = 1.3, title_colors=None, suptitle=None
):
    """Show patches in a grid; returns the figure."""
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(ncols * size, nrows * size * 1.15), squeeze=False
    )
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(images[k], interpolation="nearest")
        if titles is not None:
            color = title_colors[k] if title_colors is not None else "black"
            ax.set_title(titles[k], fontsize=8, color=color)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def show_figure(fig, dpi: int = 100) -> None:
    """Display a figure as a PNG in a notebook whatever matplotlib's backend is (Gradio switches
    the global backend to 'agg' around every request it serves, which silences ``plt.show()``
    in a notebook that also runs the demo), then close it."""
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    display(Image(data=buf.getvalue(), format="png"))


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
