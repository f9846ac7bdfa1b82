"""Chapter 6's figures and tables: ROC and precision-recall curves, confusion matrices, metrics with
intervals, reliability, the threshold on validation and test, example outcomes, Grad-CAM, a
held-out patient's mosaic mapped, the operating-point check and the learning curve."""

from __future__ import annotations

import numpy as np
import pandas as pd

from idc_utils.chapters.style import draw_outline
from idc_utils.data.mosaic import mosaic, per_pixel, value_map
from idc_utils.evaluation import bootstrap
from idc_utils.evaluation.bootstrap import CI_METRICS
from idc_utils.evaluation.calibration import expected_calibration_error, reliability
from idc_utils.evaluation.metrics import binary_metrics, confusion
from idc_utils.models.gradcam import overlay


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


def plot_mosaic_heatmap(images, rows: pd.DataFrame, prob, threshold: float, title: str = ""):
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
        per_pixel(np.nan_to_num(pmap, nan=0), grid.step, canvas.shape[:2]),
        cmap="magma",
        vmin=0,
        vmax=1,
        alpha=per_pixel(np.where(np.isnan(pmap), 0, 0.6), grid.step, canvas.shape[:2]),
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
    """The operating-point check of each model as a table (``checks``: model name -> the result
    of :func:`idc_utils.evaluation.thresholds.operating_point_check`)."""
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

    from idc_utils.studies import learning_curve

    anchors = learning_curve.ANCHOR_AUC if anchors is None else anchors
    pts = pd.DataFrame(study["points"])
    auc = np.array([a[0] for a in pts["test_auc"]])
    low = np.array([a[1] for a in pts["test_auc"]])
    high = np.array([a[2] for a in pts["test_auc"]])
    fit = learning_curve.fit_power_law(pts["train_patches"], auc)
    full = learning_curve.full_train_patches(study)
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
