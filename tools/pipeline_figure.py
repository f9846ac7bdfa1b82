"""Draw the book's pipeline, the introduction's figure: data -> patient split -> preprocessing
-> models -> operating threshold -> evaluation -> demo, after the source paper (dashed: steps the
paper does not state, which the book adds), and beyond the paper (synthetic patches, DICOMweb),
each box naming its chapter.

    python tools/pipeline_figure.py          # writes book/images/pipeline.svg
"""

from __future__ import annotations

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

from idc_utils.core.paths import project_root

#: (label, chapter numbers, x, y) of each box; the pipeline after the paper on the top row
BOXES = {
    "data": ("Patches,\nby patient", "ch. 1", 0.0, 1.0),
    "split": ("Patient-level\nsplit", "ch. 1", 1.0, 1.0),
    "prep": ("Resize, scale,\naugment", "ch. 2", 2.0, 1.0),
    "models": ("CNN and\nEfficientNet", "ch. 4-6", 3.0, 1.0),
    "threshold": ("Threshold,\non validation", "ch. 3, 5-6", 4.0, 1.0),
    "eval": ("Evaluation,\non test patients", "ch. 7-8", 5.0, 1.0),
    "demo": ("Gradio demo", "ch. 9", 6.0, 1.0),
    "synthetic": ("Synthetic patches\n(diffusion)", "ch. 10", 3.0, 0.0),
    "dicomweb": ("DICOMweb: slide in,\nmap out", "ch. 11", 5.5, 0.0),
}
ARROWS = [
    ("data", "split"),
    ("split", "prep"),
    ("prep", "models"),
    ("models", "threshold"),
    ("threshold", "eval"),
    ("eval", "demo"),
    ("split", "synthetic"),
    ("synthetic", "models"),
    ("threshold", "dicomweb"),
]
#: top-row steps the paper does not state (it says its folder layout allows a patient split, and
#: gives no threshold method): the book's additions, drawn dashed
ADDED = {"split", "threshold"}
PAPER, BEYOND = "#0072B2", "#009E73"  # Okabe-Ito blue and bluish green


def draw():
    fig, ax = plt.subplots(figsize=(14, 3.4))
    w, h = 0.9, 0.62
    for key, (label, chapters, x, y) in BOXES.items():
        colour = PAPER if y > 0.5 else BEYOND
        ax.add_patch(
            FancyBboxPatch(
                (x - w / 2, y - h / 2),
                w,
                h,
                boxstyle="round,pad=0.02",
                facecolor="white",
                edgecolor=colour,
                linewidth=2,
                linestyle="--" if key in ADDED else "-",
            )
        )
        ax.text(x, y + 0.06, label, ha="center", va="center", fontsize=9.5)
        ax.text(x, y - 0.22, chapters, ha="center", va="center", fontsize=8.5, color=colour)
    for a, b in ARROWS:
        (xa, ya), (xb, yb) = BOXES[a][2:], BOXES[b][2:]
        if ya == yb:
            start, end = (xa + w / 2, ya), (xb - w / 2, yb)
        else:
            start = (xa, ya - h / 2) if ya > yb else (xa, ya + h / 2)
            end = (xb, yb + h / 2) if ya > yb else (xb, yb - h / 2)
        ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "lw": 1.3})
    ax.text(
        -0.45,
        1.45,
        "The pipeline, after the paper (dashed: the book's additions)",
        color=PAPER,
        fontsize=10,
        weight="bold",
    )
    ax.text(-0.45, -0.45, "Beyond the paper", color=BEYOND, fontsize=10, weight="bold")
    ax.set_xlim(-0.5, 6.5)
    ax.set_ylim(-0.55, 1.55)
    ax.axis("off")
    return fig


def main() -> None:
    out = project_root() / "book" / "images" / "pipeline.svg"
    fig = draw()
    plt.rcParams["svg.hashsalt"] = "idc-book"  # the same file on every run
    fig.savefig(out, bbox_inches="tight", metadata={"Date": None})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
