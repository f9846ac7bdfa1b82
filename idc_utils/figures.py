"""Figures and tables the chapters show: one home for everything drawn or tabulated for a reader.

The modules they draw from compute (``evaluate``, ``slides``, ``preprocess``, ``balance``,
``explain``); this one only presents. One style for the whole book (:func:`use_book_style`);
:func:`show_figure` displays a figure whatever matplotlib's backend is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .eda import class_balance
from .evaluate import (
    CI_METRICS,
    binary_metrics,
    confusion,
    expected_calibration_error,
    reliability,
)
from .explain import overlay
from .preprocess import SCALING, Augment, AugmentConfig, hed_channels
from .slides import mosaic, per_pixel, value_map
from .split import patient_table

CLASS_COLORS = {0: "#4C72B0", 1: "#C44E52"}


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


def plot_history(history, title: str = "Learning curves"):
    """Loss and AUC per epoch, training vs validation, with phase boundaries marked."""
    import matplotlib.pyplot as plt

    h = history.reset_index(drop=True).copy()
    h["step"] = range(1, len(h) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, metric in zip(axes, ("loss", "auc")):
        ax.plot(h["step"], h[metric], "o-", label=f"train {metric}")
        if f"val_{metric}" in h:
            ax.plot(h["step"], h[f"val_{metric}"], "s-", label=f"validation {metric}")
        if "phase" in h:
            starts = h.groupby("phase", sort=False)["step"].min()
            for name, s in starts.items():
                ax.axvline(s - 0.5, color="grey", ls=":", lw=1)
                ax.annotate(name, (s - 0.4, ax.get_ylim()[1]), va="top", fontsize=8, color="grey")
        ax.set_xlabel("epoch (all phases)")
        ax.set_title(metric)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def outcome_grid(images, kinds, probs, per_kind: int, size: float = 1.45):
    """One row per outcome (true/false positive/negative), up to ``per_kind`` patches each, the
    probability above each; an empty row says there was no such case."""
    import matplotlib.pyplot as plt

    order = ["true positive", "false negative", "false positive", "true negative"]
    kinds = np.asarray(kinds)
    fig, axes = plt.subplots(
        len(order), per_kind, figsize=(per_kind * size, len(order) * size * 1.2), squeeze=False
    )
    for r, kind in enumerate(order):
        idx = np.flatnonzero(kinds == kind)[:per_kind]
        color = "green" if kind.startswith("true") else "red"
        for c in range(per_kind):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if c < len(idx):
                ax.imshow(images[idx[c]])
                ax.set_title(f"p={probs[idx[c]]:.2f}", fontsize=8, color=color)
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


def plot_class_balance(manifest: pd.DataFrame):
    """Two panels: patches per class; IDC+ share per patient (sorted)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 2.4]})
    cb = class_balance(manifest).reset_index()
    sns.barplot(
        data=cb,
        x="class",
        y="patches",
        hue="class",
        ax=a,
        legend=False,
        palette=[CLASS_COLORS[0], CLASS_COLORS[1]],
    )
    for k, row in cb.iterrows():
        a.annotate(
            f"{row['patches']:,}\n({100 * row['share']:.1f}%)",
            (k, row["patches"]),
            ha="center",
            va="bottom",
            fontsize=9,
        )
    a.set_ylim(0, cb["patches"].max() * 1.25)
    a.set_title("Patches per class")
    pt = patient_table(manifest).sort_values("pos_share").reset_index(drop=True)
    b.bar(np.arange(len(pt)), pt["pos_share"], width=1.0, color=CLASS_COLORS[1])
    b.axhline(manifest["label"].mean(), color="black", ls="--", lw=1, label="overall IDC+ share")
    b.set_xlim(-0.5, len(pt) - 0.5)
    b.set_xlabel(f"patients (n = {len(pt)}), sorted by IDC+ share")
    b.set_ylabel("IDC+ share of the patient's patches")
    b.set_title("Class balance per patient")
    b.legend(loc="upper left")
    fig.tight_layout()
    return fig


def plot_patches_per_patient(manifest: pd.DataFrame):
    """Histogram of patches per patient, stacked by class."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    pt = patient_table(manifest).reset_index()
    long = pd.concat(
        [
            pd.DataFrame({"patches": pt["patches"] - pt["idc_pos"], "class": "IDC-"}),
            pd.DataFrame({"patches": pt["idc_pos"], "class": "IDC+"}),
        ]
    )
    fig, ax = plt.subplots(figsize=(8, 3.2))
    sns.histplot(
        data=long,
        x="patches",
        hue="class",
        multiple="stack",
        bins=30,
        ax=ax,
        palette={"IDC-": CLASS_COLORS[0], "IDC+": CLASS_COLORS[1]},
    )
    ax.set_xlabel("patches per patient")
    ax.set_title("How many patches each patient contributes")
    fig.tight_layout()
    return fig


def augmentation_gallery(
    patch: np.ndarray,
    config: AugmentConfig,
    draws: int = 6,
    seed: int = 0,
    paper: AugmentConfig | None = None,
) -> dict:
    """Each augmentation alone, ``draws`` random draws on one patch (for the book):
    name -> images. An augmentation that ``config`` turns off but ``paper`` uses is shown at
    the paper's strength, its row named "... (paper; off in training)"; the last row combines
    what ``config`` trains with."""
    import keras

    base = np.repeat(patch[None].astype(np.float32), draws, axis=0)
    out = {"original": base.astype(np.uint8)}
    fields = config.as_dict()
    shown = paper.as_dict() if paper is not None else {}
    for key, value in fields.items():
        name = key
        if not value and shown.get(key):
            value, name = shown[key], f"{key} {shown[key]:g} (paper; off in training)"
        if not value:
            continue
        only = {k: (value if k == key else type(v)(0)) for k, v in fields.items()}
        layer = Augment(only, seed=seed)
        out[name] = np.asarray(layer(keras.ops.convert_to_tensor(base), training=True)).astype(
            np.uint8
        )
    out["all together"] = np.asarray(
        Augment(fields, seed=seed)(keras.ops.convert_to_tensor(base), training=True)
    ).astype(np.uint8)
    return out


def plot_resize(patches: np.ndarray, titles, image_size: int):
    """Each patch as stored, and enlarged to ``image_size`` by nearest neighbour and bilinear."""
    import matplotlib.pyplot as plt
    import tensorflow as tf

    fig, axes = plt.subplots(len(patches), 3, figsize=(9, 3.1 * len(patches)), squeeze=False)
    for row, (patch, title) in enumerate(zip(patches, titles)):
        axes[row, 0].imshow(patch, interpolation="nearest")
        axes[row, 0].set_title(f"{title}: stored 50x50")
        for col, method in ((1, "nearest"), (2, "bilinear")):
            big = tf.image.resize(
                patch[None].astype("float32"), (image_size, image_size), method=method
            )[0]
            axes[row, col].imshow(
                np.clip(big.numpy(), 0, 255).astype("uint8"), interpolation="nearest"
            )
            axes[row, col].set_title(f"{method} to {image_size}x{image_size}")
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    return fig


def scaling_table(patches: np.ndarray):
    """Range of the pixel values after each backbone's scaling."""
    import pandas as pd

    rows = []
    for name, (scale, offset) in SCALING.items():
        x = patches.astype("float32") * scale + offset
        rows.append(
            {
                "scaling": name,
                "formula": f"x * {scale:.5f} + {offset:.4f}",
                "min": x.min(),
                "max": x.max(),
                "mean": x.mean(),
            }
        )
    return pd.DataFrame(rows).set_index("scaling")


def plot_hed(patches: np.ndarray, titles):
    """Each patch beside its hematoxylin and eosin optical densities."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(patches), 3, figsize=(8.5, 2.9 * len(patches)), squeeze=False)
    for row, (patch, title) in enumerate(zip(patches, titles)):
        hed = hed_channels(patch)
        axes[row, 0].imshow(patch)
        axes[row, 0].set_title(title)
        axes[row, 1].imshow(hed[..., 0], cmap="Purples")
        axes[row, 1].set_title("hematoxylin (nuclei)")
        axes[row, 2].imshow(hed[..., 1], cmap="RdPu")
        axes[row, 2].set_title("eosin (stroma, cytoplasm)")
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_gallery(gallery: dict):
    """One row per augmentation (from :func:`augmentation_gallery`)."""
    import matplotlib.pyplot as plt

    draws = len(next(iter(gallery.values())))
    fig, axes = plt.subplots(
        len(gallery), draws, figsize=(1.25 * draws, 1.3 * len(gallery)), squeeze=False
    )
    for r, (name, imgs) in enumerate(gallery.items()):
        for c in range(draws):
            axes[r, c].imshow(imgs[c])
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def plot_scaling(patches: np.ndarray, names=("unit", "lite")):
    """Histogram of pixel values after each named scaling."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.8))
    for name in names:
        scale, offset = SCALING[name]
        ax.hist(
            (patches.astype("float32") * scale + offset).ravel(), bins=60, alpha=0.6, label=name
        )
    ax.set_title("pixel values after scaling (example patches)")
    ax.legend()
    fig.tight_layout()
    return fig


#: published numbers on this dataset, as their papers report them (not re-measured here)
LITERATURE = pd.DataFrame(
    [
        {
            "study": "Cruz-Roa et al. 2014 (3-layer CNN)",
            "split": "by patient: 113 train+val / 49 test slides",
            "AUC": np.nan,
            "recall": np.nan,
            "precision": np.nan,
            "F1": 0.7180,
            "balanced accuracy": 0.8423,
        },
        {
            "study": "Janowczyk & Madabhushi 2016 (AlexNet variant)",
            "split": "by patient, as Cruz-Roa 2014",
            "AUC": np.nan,
            "recall": np.nan,
            "precision": np.nan,
            "F1": 0.7648,
            "balanced accuracy": 0.8468,
        },
        {
            "study": "Source paper (EfficientNetB0, 200 px)",
            "split": "stated as patient-level; sizes not given",
            "AUC": 0.9558,
            "recall": 0.9319,
            "precision": 0.71,
            "F1": np.nan,
            "balanced accuracy": np.nan,
        },
    ]
).set_index("study")


LITERATURE_METRICS = {
    "AUC": "auc",
    "recall": "recall",
    "precision": "precision",
    "F1": "f1",
    "balanced accuracy": "balanced_accuracy",
}


def literature_rows(cis: dict, cards: dict, test: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Our models as rows of the literature table, each number with its 95% patient-bootstrap
    interval (``cis``: name -> bootstrap_metrics frame)."""
    rows = []
    for name, t in cis.items():
        card = cards[name]
        row = {
            "study": f"this book: {name} ({card['backbone']}, {card['image_size']} px, profile "
            "{profile})",
            "split": f"by patient: {test['patient_id'].nunique()} test patients, {len(test):,} "
            "patches",
        }
        for col, m in LITERATURE_METRICS.items():
            row[col] = t.loc[m, "estimate"]
            row[f"{col} low"], row[f"{col} high"] = t.loc[m, "low"], t.loc[m, "high"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("study")


def beside_literature(ours: pd.DataFrame) -> pd.DataFrame:
    """The published rows and ours in one table; ours with their 95% intervals; numbers a paper
    did not report say so (published numbers come without intervals: the papers gave none)."""
    both = pd.concat([LITERATURE, ours])
    out = both[["split", *LITERATURE_METRICS]].copy().astype(object)
    for c in LITERATURE_METRICS:
        texts = []
        for study, v in both[c].items():
            if pd.isna(v):
                texts.append("not reported")
            elif f"{c} low" in both and pd.notna(both.loc[study, f"{c} low"]):
                texts.append(
                    f"{v:.4f} [{both.loc[study, f'{c} low']:.3f}, "
                    f"{both.loc[study, f'{c} high']:.3f}]"
                )
            else:
                texts.append(f"{v:.4f}")
        out[c] = texts
    return out


def plot_roc_pr(results: dict, title_suffix: str = ""):
    """ROC curves on one axis, precision-recall curves on another, for every model.
    ``results``: name -> (y_true, prob, threshold)."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.4))
    for name, (y, p, t) in results.items():
        m = binary_metrics(y, p, t)
        fpr, tpr, _ = roc_curve(y, p)
        (line,) = a.plot(fpr, tpr, label=f"{name} (AUC {m['auc']:.3f})")
        a.plot(1 - m["specificity"], m["recall"], "o", color=line.get_color())
        prec, rec, _ = precision_recall_curve(y, p)
        b.plot(rec, prec, color=line.get_color(), label=f"{name} (AP {m['average_precision']:.3f})")
        b.plot(m["recall"], m["precision"], "o", color=line.get_color())
    a.plot([0, 1], [0, 1], ":", color="grey")
    a.set_xlabel("false positive rate (1 - specificity)")
    a.set_ylabel("recall (sensitivity)")
    a.set_title("ROC" + title_suffix)
    a.legend(loc="lower right", fontsize=8)
    prevalence = np.mean(next(iter(results.values()))[0])
    b.axhline(prevalence, ls=":", color="grey", label=f"chance ({prevalence:.2f})")
    b.set_xlabel("recall")
    b.set_ylabel("precision")
    b.set_title("Precision-recall" + title_suffix)
    b.legend(loc="lower left", fontsize=8)
    fig.text(
        0.5,
        -0.02,
        "dots: each model's operating threshold (chosen on validation)",
        ha="center",
        fontsize=8,
    )
    fig.tight_layout()
    return fig


def plot_confusions(results: dict):
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.6), squeeze=False)
    for ax, (name, (y, p, t)) in zip(axes[0], results.items()):
        c = confusion(y, np.asarray(p) >= t)
        mat = np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]])
        sns.heatmap(
            mat,
            annot=True,
            fmt="d",
            cbar=False,
            cmap="Blues",
            ax=ax,
            xticklabels=["pred IDC-", "pred IDC+"],
            yticklabels=["true IDC-", "true IDC+"],
        )
        ax.set_title(f"{name}\nthreshold {t:.3f}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_metric_bars(
    table: pd.DataFrame, metrics=("auc", "recall", "precision", "f1", "balanced_accuracy")
):
    """Models side by side with 95% CI whiskers. ``table``: rows (model, metric) with
    estimate/low/high."""
    import matplotlib.pyplot as plt

    models_ = list(dict.fromkeys(table.index.get_level_values(0)))
    x = np.arange(len(metrics))
    w = 0.8 / len(models_)
    fig, ax = plt.subplots(figsize=(9, 3.8))
    for k, name in enumerate(models_):
        sub = table.loc[name].loc[list(metrics)]
        err = np.vstack([sub["estimate"] - sub["low"], sub["high"] - sub["estimate"]])
        ax.bar(x + k * w - 0.4 + w / 2, sub["estimate"], w, yerr=err, capsize=3, label=name)
    ax.set_xticks(x, [m.replace("_", " ") for m in metrics])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test patients")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Models on the test patients (95% CI by patient bootstrap)")
    fig.tight_layout()
    return fig


def plot_reliability(curves: dict, bins: int = 10):
    """Reliability diagram: ``curves`` name -> (y, prob)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
    for name, (y, p) in curves.items():
        r = reliability(y, p, bins)
        ax.plot(
            r["mean_prob"],
            r["observed"],
            "o-",
            label=f"{name} (ECE {expected_calibration_error(y, p, bins):.3f})",
        )
    ax.set_xlabel("predicted IDC+ probability")
    ax.set_ylabel("observed IDC+ share")
    ax.set_title("Reliability on the test patients")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def ci_table(
    per_model: dict,
    metrics=tuple(m for m in CI_METRICS if m != "average_precision"),
) -> pd.DataFrame:
    """``per_model``: name -> bootstrap_metrics() frame. A readable table:
    'estimate [low, high]'."""
    out = {}
    for name, t in per_model.items():
        out[name] = {
            m: f"{t.loc[m, 'estimate']:.3f} [{t.loc[m, 'low']:.3f}, {t.loc[m, 'high']:.3f}]"
            for m in metrics
        }
    return pd.DataFrame(out)


def threshold_drift(models_: dict):
    """How each model's validation-chosen threshold behaves on validation and on test.
    ``models_``: name -> (card, {"val": (y, p), "test": (y, p)}). Returns ``(figure, table)``."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    rows = []
    fig, axes = plt.subplots(1, len(models_), figsize=(5.5 * len(models_), 3.6), squeeze=False)
    for ax, (name, (card, splits)) in zip(axes[0], models_.items()):
        t = card["threshold"]
        for split_name, (y, p) in splits.items():
            prec, rec, thr = precision_recall_curve(y, p)
            ax.plot(thr, rec[:-1], label=f"recall, {split_name}")
            ax.plot(thr, prec[:-1], ls="--", label=f"precision, {split_name}")
            m = binary_metrics(y, p, t)
            rows.append(
                {
                    "model": name,
                    "split": split_name,
                    "threshold": t,
                    "recall": m["recall"],
                    "precision": m["precision"],
                    "specificity": m["specificity"],
                }
            )
        ax.axvline(t, color="black", lw=1)
        ax.axhline(card["target_recall"], color="grey", ls=":", lw=1)
        ax.set_xlabel("threshold")
        ax.set_title(name)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig, pd.DataFrame(rows).set_index(["model", "split"])


def plot_balance_comparison(table: pd.DataFrame):
    """Test AUC of each balancing method with its patient-bootstrap interval (chapter 3)."""
    import matplotlib.pyplot as plt

    t = table
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(t) + 1.6))
    ax.errorbar(
        t["auc"],
        range(len(t)),
        xerr=[t["auc"] - t["auc_low"], t["auc_high"] - t["auc"]],
        fmt="o",
        capsize=4,
    )
    ax.set_yticks(range(len(t)), t.index)
    ax.set_xlabel("test AUC (95% CI by patient bootstrap)")
    ax.set_title("Balancing methods: same embeddings, same head, same patients")
    fig.tight_layout()
    return fig


def plot_embedding_view(
    xy: np.ndarray, y: np.ndarray, synthetic: np.ndarray, projection: str = "pca"
):
    """Real IDC-, real IDC+ and synthetic IDC+ points in a 2-D projection."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5.5))
    for mask, label, kw in [
        ((y == 0) & ~synthetic, "real IDC-", dict(c=CLASS_COLORS[0], s=6, alpha=0.35)),
        ((y == 1) & ~synthetic, "real IDC+", dict(c=CLASS_COLORS[1], s=8, alpha=0.6)),
        (synthetic, "synthetic IDC+ (SMOTE)", dict(c="gold", s=8, alpha=0.6, marker="x")),
    ]:
        ax.scatter(xy[mask, 0], xy[mask, 1], label=f"{label} ({mask.sum():,})", **kw)
    ax.set_xlabel(f"{projection.upper()} 1")
    ax.set_ylabel(f"{projection.upper()} 2")
    ax.set_title("Training embeddings, real and synthetic")
    ax.legend(markerscale=2)
    fig.tight_layout()
    return fig


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
    im = axes[1].imshow(
        np.kron(np.nan_to_num(pmap, nan=0), np.ones((grid.step, grid.step))),
        cmap="magma",
        vmin=0,
        vmax=1,
        alpha=np.kron(np.where(np.isnan(pmap), 0, 0.6), np.ones((grid.step, grid.step))),
    )
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


def plot_patient_overview(images, rows: pd.DataFrame, title: str = ""):
    """The rebuilt tissue region (IDC+ outlined) beside the ground-truth map per patch."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 6.5))
    grid = plot_mosaic(a, images, rows, title=title)
    b.imshow(
        value_map(grid, rows["label"]),
        cmap=ListedColormap([CLASS_COLORS[0], CLASS_COLORS[1]]),
        interpolation="nearest",
    )
    b.set_title("ground truth per patch (blue IDC-, red IDC+, white: no patch)")
    b.set_xticks([])
    b.set_yticks([])
    a.legend(loc="lower left")
    fig.tight_layout()
    return fig, grid


def plot_gradcam_grid(patches, cams, titles, ncols: int = 6, size: float = 1.6):
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
    fig.tight_layout()
    return fig


def operating_point_table(checks: dict) -> pd.DataFrame:
    """``checks``: model name -> :func:`idc_utils.evaluate.operating_point_check` result."""
    rows = {}
    for name, c in checks.items():
        e = c["expected_recall"]
        rows[name] = {
            "target recall": f"{c['target_recall']:.2f}",
            "threshold (method)": f"{c['threshold']:.4f} ({c['method']})",
            "expected on new patients": f"{e[0]:.3f} [{e[1]:.3f}, {e[2]:.3f}]"
            if e
            else "not stored",
            "test recall": "{:.3f} [{:.3f}, {:.3f}]".format(*c["recall"]),
            "test precision": "{:.3f} [{:.3f}, {:.3f}]".format(*c["precision"]),
            "verdict": c["verdict"].split(":")[0],
        }
    return pd.DataFrame(rows).T


def plot_learning_curve(study: dict, anchors: dict | None = None):
    """The error 1 - AUC against training patches on log-log axes: test points with their 95%
    intervals (one per seed), validation points, the fitted power law extended to the full set's
    training share, and the published results at that size."""
    import matplotlib.pyplot as plt

    from . import learning_curve as lc

    anchors = lc.ANCHOR_AUC if anchors is None else anchors
    pts = pd.DataFrame(study["points"])
    auc = np.array([a[0] for a in pts["test_auc"]])
    low = np.array([a[1] for a in pts["test_auc"]])
    high = np.array([a[2] for a in pts["test_auc"]])
    fit = lc.fit_power_law(pts["train_patches"], auc)
    full = lc.full_train_patches(study)
    err = 1 - auc
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.errorbar(
        pts["train_patches"],
        err,
        yerr=[err - (1 - high), (1 - low) - err],
        fmt="o",
        capsize=3,
        label="test, 95% CI (one point per seed)",
    )
    ax.plot(pts["train_patches"], 1 - pts["val_auc"], "s", mfc="none", label="validation")
    xs = np.geomspace(pts["train_patches"].min(), full, 50)
    ax.plot(
        xs,
        fit.error_at(xs),
        "--",
        color="grey",
        label=f"power law: error x {fit.error_per_doubling:.2f} per doubling",
    )
    for k, (name, a) in enumerate(anchors.items()):
        ax.plot([full], [1 - a], "*", ms=11, color=f"C{k + 2}", label=f"{name}: AUC {a:.3f}")
    ax.axvspan(pts["train_patches"].max() * 1.1, full * 1.3, color="0.93", zorder=0)
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.yaxis.set_major_locator(FixedLocator([0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3]))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("training patches (log scale; shaded: extrapolated)")
    ax.set_ylabel("1 - AUC (log scale)")
    ax.set_title("How the error falls with training data")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def plot_dicom_roundtrip(
    image: np.ndarray, truth: np.ndarray, per_tile: np.ndarray, stored: np.ndarray, step: int = 50
):
    """Three panels: the level streamed over DICOMweb with the annotated IDC outlined; the
    probability map computed from it; the Segmentation read back from the server, drawn over the
    slide as a viewer would."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 5.4))
    axes[0].imshow(image)
    draw_outline(axes[0], truth, step, label="annotated IDC")
    axes[0].set_title("streamed over DICOMweb, annotated IDC outlined")
    full = per_pixel(per_tile, step, image.shape[:2])
    axes[1].imshow(np.ma.masked_invalid(full), cmap="magma", vmin=0, vmax=1)
    draw_outline(axes[1], truth, step, color="cyan")
    axes[1].set_title("P(IDC+) per 50x50 tile (computed)")
    axes[2].imshow(image)
    im = axes[2].imshow(stored, cmap="magma", vmin=0, vmax=1, alpha=np.where(stored > 0, 0.6, 0))
    fig.colorbar(im, ax=axes[2], fraction=0.035, label="P(IDC+)")
    axes[2].set_title("stored Segmentation, read back, over the slide")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- synthetic patches


def plot_generator_history(history: pd.DataFrame, best_step: int | None = None):
    """The generator's denoising error on training batches and on validation patients."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.4))
    ax.plot(history["step"], history["loss"], "-", label="training batches (mean of 25 steps)")
    if "val_loss" in history and history["val_loss"].notna().any():
        v = history.dropna(subset=["val_loss"])
        ax.plot(v["step"], v["val_loss"], "s-", label="validation patients")
    if best_step:
        ax.axvline(best_step, color="grey", ls=":", label=f"kept: step {best_step}")
    ax.set_xlabel("training step")
    ax.set_ylabel("denoising error (mean |noise - estimate|)")
    ax.set_title("Training the generator")
    ax.legend()
    fig.tight_layout()
    return fig


def real_vs_synthetic_grid(real: dict, synthetic: dict, per_row: int = 8, size: float = 1.15):
    """Rows of real and synthetic patches per class (``{label: uint8 patches}``), all shown at
    the same pixel size."""
    import matplotlib.pyplot as plt

    rows = [(f"real {name}", real[c]) for c, name in ((0, "IDC-"), (1, "IDC+"))] + [
        (f"synthetic {name}", synthetic[c]) for c, name in ((0, "IDC-"), (1, "IDC+"))
    ]
    fig, axes = plt.subplots(
        len(rows), per_row, figsize=(per_row * size, len(rows) * size * 1.05), squeeze=False
    )
    for r, (name, imgs) in enumerate(rows):
        for k in range(per_row):
            ax = axes[r, k]
            ax.set_xticks([])
            ax.set_yticks([])
            if k < len(imgs):
                ax.imshow(imgs[k], interpolation="nearest")
            if k == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.tight_layout()
    return fig


def plot_nearest_distances(mem):
    """Distances to the nearest training patch: synthetic patches against real patches of new
    (validation) patients, in embedding and pixel space. Copies would pile up near zero."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    for ax, space in zip(axes, ("embedding", "pixel")):
        syn, ref = mem.distances[space, "synthetic"], mem.distances[space, "validation"]
        bins = np.linspace(0, max(syn.max(), ref.max()), 40)
        ax.hist(ref, bins, alpha=0.6, density=True, label="validation patients")
        ax.hist(syn, bins, alpha=0.6, density=True, label="synthetic")
        ax.set_xlabel(f"distance to the nearest training patch ({space} space)")
        ax.legend()
    axes[0].set_ylabel("density")
    fig.tight_layout()
    return fig


def plot_gain(study):
    """AUC and precision at the target recall of each method, minus no balancing's, with the
    paired interval over test patients and seeds (chapter 7)."""
    import matplotlib.pyplot as plt

    from .balance import GAIN_LABELS

    t = study.table.drop(index="none", errors="ignore")
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.5 * len(t) + 1.8), sharey=True)
    for ax, metric, name in (
        (axes[0], "auc", "AUC"),
        (axes[1], "precision", f"precision at recall {study.target_recall:.2f}"),
    ):
        e = t[f"{metric}_vs_none"]
        ax.errorbar(
            e,
            range(len(t)),
            xerr=[e - t[f"{metric}_vs_none_low"], t[f"{metric}_vs_none_high"] - e],
            fmt="o",
            capsize=4,
        )
        ax.axvline(0, color="grey", lw=1)
        ax.set_xlabel(f"{name} minus no balancing's (95% CI)")
    axes[0].set_yticks(range(len(t)), [GAIN_LABELS.get(m, m) for m in t.index])
    fig.suptitle("Same head, same patients: what synthetic images add")
    fig.tight_layout()
    return fig
