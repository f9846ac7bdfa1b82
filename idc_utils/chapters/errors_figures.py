"""Chapter 8's figures and tables: the most confident hits and misses, Grad-CAM maps, a held-out
patient's mosaic mapped by outcome, what the inference levers add, and the learning curve.
Outcomes are drawn in the colour-blind-safe colours of :mod:`idc_utils.chapters.style`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from idc_utils.chapters.style import OUTCOME_COLORS, OUTCOME_TEXT_COLORS, draw_outline
from idc_utils.data.mosaic import mosaic, per_pixel, value_map
from idc_utils.evaluation import bootstrap
from idc_utils.models.gradcam import overlay

#: the order of the outcomes in grids and legends
OUTCOMES = ("true positive", "false negative", "false positive", "true negative")


def outcome_grid(images, kinds, probs, per_kind: int, size: float = 1.45):
    """One row per outcome (true/false positive/negative), up to ``per_kind`` patches each, the
    probability above each; an empty row says there was no such case."""
    import matplotlib.pyplot as plt

    kinds = np.asarray(kinds)
    fig, axes = plt.subplots(
        len(OUTCOMES),
        per_kind,
        figsize=(per_kind * size, len(OUTCOMES) * size * 1.2),
        squeeze=False,
    )
    for r, kind in enumerate(OUTCOMES):
        idx = np.flatnonzero(kinds == kind)[:per_kind]
        color = OUTCOME_TEXT_COLORS[kind]
        for c in range(per_kind):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(c < len(idx))
                s.set_color(OUTCOME_COLORS[kind])
                s.set_linewidth(3)
            if c < len(idx):
                ax.imshow(images[idx[c]])
                ax.set_title(f"p={probs[idx[c]]:.2f}", fontsize=8)
        axes[r, 0].set_ylabel(
            f"{kind}\n({len(idx)} shown)" if len(idx) else f"{kind}\n(none)",
            fontsize=9,
            color=color,
            rotation=0,
            ha="right",
            va="center",
        )
    fig.tight_layout()
    return fig


def outcome_map(prob, truth: np.ndarray, grid, threshold: float) -> np.ndarray:
    """Each cell of a mosaic's grid as an outcome code: 0 true negative, 1 false negative
    (missed), 2 false positive (false alarm), 3 true positive (hit); NaN where no patch is."""
    pred = value_map(grid, np.asarray(prob) >= threshold, fill=np.nan)
    has = ~np.isnan(pred)
    cat = np.full(pred.shape, np.nan)
    cat[has & (pred > 0) & truth] = 3
    cat[has & (pred > 0) & ~truth] = 2
    cat[has & (pred == 0) & truth] = 1
    cat[has & (pred == 0) & ~truth] = 0
    return cat


def plot_mosaic_heatmap(images, rows: pd.DataFrame, prob, threshold: float, title: str = ""):
    """Three panels: the rebuilt tissue with the annotated IDC outline; the model's probability
    over it; the thresholded map against the annotation (hits, misses, false alarms)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    canvas, grid = mosaic(images, rows["x"], rows["y"])
    truth = value_map(grid, rows["label"], fill=0) > 0.5
    pmap = value_map(grid, prob)
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.6))
    axes[0].imshow(canvas)
    draw_outline(axes[0], truth, grid.step, color="black", label="annotated IDC")
    axes[0].set_title("tissue, annotated IDC outlined")
    axes[1].imshow(canvas)
    im = axes[1].imshow(
        per_pixel(np.nan_to_num(pmap, nan=0), grid.step, canvas.shape[:2]),
        cmap="viridis",
        vmin=0,
        vmax=1,
        alpha=per_pixel(np.where(np.isnan(pmap), 0, 0.6), grid.step, canvas.shape[:2]),
    )
    draw_outline(axes[1], truth, grid.step, color="white")
    fig.colorbar(im, ax=axes[1], fraction=0.035, label="P(IDC+)")
    axes[1].set_title("model probability per patch (annotation outlined)")
    cat = outcome_map(prob, truth, grid, threshold)
    order = ("true negative", "false negative", "false positive", "true positive")
    cmap = ListedColormap([OUTCOME_COLORS[k] for k in order])
    axes[2].imshow(cat, cmap=cmap, vmin=-0.5, vmax=3.5, interpolation="nearest")
    axes[2].set_title(f"outcome at threshold {threshold:.3f}")
    axes[2].legend(
        handles=[Patch(color=OUTCOME_COLORS[k], label=k) for k in OUTCOMES],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
    )
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_gradcam_grid(patches, cams, titles, ncols: int = 6, size: float = 1.6, title=None):
    """Each patch above its overlay."""
    import matplotlib.pyplot as plt

    n = len(patches)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        2 * nrows, ncols, figsize=(ncols * size, 2 * nrows * size * 1.05), squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    for k in range(n):
        r, c = 2 * (k // ncols), k % ncols
        axes[r, c].imshow(patches[k])
        axes[r, c].set_title(titles[k], fontsize=7)
        axes[r + 1, c].imshow(overlay(patches[k], cams[k]))
    if title:
        fig.suptitle(title, y=1.02)
    fig.tight_layout()
    return fig


def plot_learning_curve(study: dict):
    """The error 1 - AUC against training patches on log-log axes, over the sizes measured only:
    test points with their 95% intervals (one per seed), validation points, and the fitted power
    law. Nothing is extrapolated: the curve is of one recipe, at the sizes it was trained at."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    from idc_utils.studies import learning_curve

    pts = pd.DataFrame(study["points"])
    auc = np.array([a[0] for a in pts["test_auc"]])
    low = np.array([a[1] for a in pts["test_auc"]])
    high = np.array([a[2] for a in pts["test_auc"]])
    fit = learning_curve.fit_power_law(pts["train_patches"], auc)
    err = 1 - auc
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.errorbar(
        pts["train_patches"],
        err,
        yerr=[err - (1 - high), (1 - low) - err],
        fmt="o",
        capsize=3,
        label="test, 95% CI (one point per seed)",
    )
    ax.plot(pts["train_patches"], 1 - pts["val_auc"], "s", mfc="none", label="validation")
    xs = np.geomspace(pts["train_patches"].min(), pts["train_patches"].max(), 50)
    ax.plot(
        xs,
        fit.error_at(xs),
        "--",
        color="grey",
        label=f"power law fitted to test: error x {fit.error_per_doubling:.2f} per doubling",
    )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    # one tick per number of training patients (seeds draw slightly different patch counts)
    ticks = pts.groupby("train_patients")["train_patches"].mean().round(-1)
    ax.xaxis.set_major_locator(FixedLocator(sorted(ticks)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.yaxis.set_major_locator(FixedLocator([0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.4]))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("training patches (log scale)")
    ax.set_ylabel("1 - AUC (log scale)")
    ax.set_title("How the error falls with training data (measured sizes only)")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def format_interval(d: dict) -> str:
    """A paired difference as ``+0.0123 [+0.004, +0.021]``."""
    return f"{d['difference']:+.4f} [{d['low']:+.3f}, {d['high']:+.3f}]"


def lever_table(levers: dict, parts: dict, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """What each inference lever adds to AUC, on validation and test patients, with paired
    patient-bootstrap intervals. ``levers``: name -> ``(new, old, on_by_default)`` where ``new``
    and ``old`` map a split name to the probabilities with and without the lever; ``parts``:
    split name -> its rows (``label``, ``patient_id``). Column ``val_low`` is the lower end of
    the validation interval (the lever helped when it is above zero)."""
    rows = []
    for lever, (new, old, kept) in levers.items():
        gains = {
            s: bootstrap.paired_auc_gain(
                part["label"], new[s], old[s], part["patient_id"], n_boot=n_boot, seed=seed
            )
            for s, part in parts.items()
        }
        rows.append(
            {
                "lever": lever,
                **{f"{s} AUC gain [95% CI]": format_interval(g) for s, g in gains.items()},
                "on by default": kept,
                "val_low": gains["val"]["low"],
            }
        )
    return pd.DataFrame(rows).set_index("lever")
