"""Chapter 10's figures: noise added to patches, the generator's training, the sampler's steps,
real beside synthetic patches, distances to the nearest training patch, and what synthetic images
add to the head."""

from __future__ import annotations

import numpy as np
import pandas as pd

CLASS_NAMES = {0: "IDC-", 1: "IDC+"}


def plot_forward_noising(clean: dict, noisy: dict, ts, max_signal_rate: float, size: float = 1.3):
    """Real patches (``{label: patches in [-1, 1]}``) beside the same patches noised to the
    diffusion times ``ts`` (``{label: [patches at each t]}``), one row per patch, each column
    titled with its time and its signal and noise rates (the schedule's ``max_signal_rate``)."""
    import matplotlib.pyplot as plt

    from idc_utils.training.diffusion import diffusion_rates, to_uint8

    rows = [(c, k) for c in sorted(clean) for k in range(len(clean[c]))]
    fig, axes = plt.subplots(
        len(rows), len(ts) + 1, figsize=((len(ts) + 1) * size, len(rows) * size * 1.1)
    )
    axes = np.atleast_2d(axes)
    for r, (c, k) in enumerate(rows):
        shown = [clean[c][k]] + [noisy[c][j][k] for j in range(len(ts))]
        for ax, img in zip(axes[r], shown):
            ax.imshow(to_uint8(img), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(CLASS_NAMES[c], fontsize=8)
    axes[0, 0].set_title("clean", fontsize=8)
    for j, t in enumerate(ts):
        signal, noise = diffusion_rates(float(t), max_signal_rate)
        axes[0, j + 1].set_title(f"t = {t:.2f}\n{signal:.2f} / {noise:.2f}", fontsize=8)
    fig.suptitle("Adding noise: t, then signal rate / noise rate", fontsize=9)
    fig.tight_layout()
    return fig


def plot_sampling_trace(traces: dict, size: float = 1.3):
    """The sampler's steps for one patch per class (``{label: diffusion.sampling_trace(...)}``):
    for each class a row of the noisy patches x_t the network is given and a row of its estimates
    of the clean patch, one column per DDIM step."""
    import matplotlib.pyplot as plt

    steps = max(len(t) for t in traces.values())
    rows = [(c, which) for c in sorted(traces) for which in (1, 2)]
    fig, axes = plt.subplots(
        len(rows), steps, figsize=(steps * size, len(rows) * size * 1.15), squeeze=False
    )
    for r, (c, which) in enumerate(rows):
        for j, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(traces[c]):
                ax.imshow(traces[c][j][which], interpolation="nearest")
                if r == 0:
                    ax.set_title(f"step {j + 1}, t = {traces[c][j][0]:.2f}", fontsize=8)
        label = "x_t given" if which == 1 else "clean estimate"
        axes[r, 0].set_ylabel(f"{CLASS_NAMES[c]}\n{label}", fontsize=8)
    fig.suptitle("Sampling: each DDIM step, from noise to a patch", fontsize=9)
    fig.tight_layout()
    return fig


def plot_generator_history(
    history: pd.DataFrame, best_step: int | None = None, anneal_from: int | None = None
):
    """The generator's denoising error on training batches and on validation patients; the
    step kept for sampling and the one where annealing begins, when given."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2))
    ax.plot(
        history["step"],
        history["loss"],
        "-",
        label="training batches: |target - output| (mean of 25 steps)",
    )
    if "val_loss" in history and history["val_loss"].notna().any():
        v = history.dropna(subset=["val_loss"])
        marker = "s-" if len(v) <= 30 else "-"  # squares only where they can be told apart
        ax.plot(v["step"], v["val_loss"], marker, label="validation patients: |noise - estimate|")
    if best_step:
        ax.axvline(best_step, color="grey", ls=":", label=f"kept: step {best_step:,}")
    if anneal_from is not None:
        ax.axvline(
            anneal_from, color="black", ls="--", label=f"annealing from step {anneal_from:,}"
        )
    ax.set_xlabel("training step")
    ax.set_ylabel("mean absolute error")
    ax.set_title("Training the generator")
    # below the axes, where no curve or line can run under it
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def plot_generator_study(results: dict, bars: dict):
    """The generator study along training: KID x 1000 to real validation tissue (left) and the
    share the EfficientNet calls IDC+ (right), per variant, IDC+ solid and IDC- dashed, with the
    bars as grey lines."""
    import matplotlib.pyplot as plt

    from idc_utils.chapters.style import OKABE_ITO

    colours = list(OKABE_ITO.values())
    fig, (kid_ax, call_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, (name, v) in enumerate(results["variants"].items()):
        j = pd.DataFrame(v["judged"])
        if j.empty:
            continue
        c = colours[k % len(colours)]
        kid_ax.plot(j["step"], j["kid_pos_x1000"], "o-", color=c, label=name)
        kid_ax.plot(j["step"], j["kid_neg_x1000"], "o--", color=c)
        call_ax.plot(j["step"], j["called_pos_pos"], "o-", color=c, label=name)
        call_ax.plot(j["step"], j["called_pos_neg"], "o--", color=c)
    kid_ax.axhline(bars["kid_x1000_max"], color="grey", lw=1)
    blurred = pd.DataFrame(results.get("blurred_tissue", []))
    if not blurred.empty:  # the yardstick: real tissue that lost its detail
        for size, kid in blurred.groupby("size")["kid_x1000"].mean().items():
            kid_ax.axhline(kid, color="grey", lw=0.8, ls=":")
            kid_ax.annotate(
                f"real tissue at {size} px",
                (1.0, kid),
                xycoords=("axes fraction", "data"),
                ha="right",
                va="bottom",
                fontsize=7,
                color="dimgrey",
            )
    kid_ax.set_yscale("log")
    kid_ax.set_ylabel("KID x 1000 (log scale)")
    kid_ax.set_title("Fidelity to validation tissue (lower is better)")
    for level in (bars["called_pos_min"], bars["called_neg_max"]):
        call_ax.axhline(level, color="grey", lw=1)
    call_ax.set_ylim(-0.02, 1.02)
    call_ax.set_ylabel("share called IDC+")
    call_ax.set_title("Label fidelity (solid IDC+ high, dashed IDC- low)")
    for ax in (kid_ax, call_ax):
        ax.set_xlabel("training step")
    kid_ax.legend(title="variant (solid IDC+, dashed IDC-)", fontsize=8)
    fig.tight_layout()
    return fig


def real_vs_synthetic_grid(
    real: dict,
    synthetic: dict,
    per_row: int = 8,
    size: float = 1.15,
    others: dict | None = None,
    name: str = "synthetic",
):
    """Rows of real and synthetic patches per class (``{label: uint8 patches}``), all shown at
    the same pixel size, the synthetic rows named ``name``; ``others``
    (``{name: {label: patches}}``) adds rows of other generators below, each named."""
    import matplotlib.pyplot as plt

    others = others or {}
    if len({"real", name, *others}) != 2 + len(others):
        raise ValueError(f"each set of rows needs its own name: real, {name}, {list(others)}")
    sets = {"real": real, name: synthetic, **others}
    rows = [(f"{kind} {CLASS_NAMES[c]}", imgs[c]) for kind, imgs in sets.items() for c in (0, 1)]
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


def plot_gan_record(history: pd.DataFrame, judged: list, bar: float, anneal_from=None, restarts=()):
    """The published GAN's training: the critic's and the generator's hinge losses (``history``,
    means of 25 steps) and, from its probe's judgements (``judged``), the KID x 1000 of each
    class against real validation tissue by step, with the bar; and where annealing began, and
    where each warm restart (``restarts``: the steps they began) raised the rates again."""
    import matplotlib.pyplot as plt

    fig, (loss_ax, kid_ax) = plt.subplots(1, 2, figsize=(11, 4.3))
    for key, name in (("loss_critic", "critic"), ("loss_generator", "generator")):
        smooth = history[key].rolling(8, min_periods=1).mean()
        loss_ax.plot(history["step"], smooth, label=f"{name} (mean of 200 steps)")
    loss_ax.set_ylabel("hinge loss")
    loss_ax.set_title("Losses: a contest, not a descent")
    j = pd.DataFrame(judged)
    for key, c, ls in (("kid_neg_x1000", 0, "--"), ("kid_pos_x1000", 1, "-")):
        kid_ax.plot(j["step"], j[key], "o" + ls, label=CLASS_NAMES[c])
    kid_ax.axhline(bar, color="grey", ls=":", label=f"bar ({bar:g})")
    kid_ax.set_ylim(0, None)
    kid_ax.set_ylabel("KID x1000 to real validation tissue")
    kid_ax.set_title("Fidelity on validation patients")
    for ax in (loss_ax, kid_ax):
        ax.set_xlabel("training step")
        if anneal_from is not None:
            ax.axvline(anneal_from, color="black", ls="--", lw=0.8, label="annealing begins")
        for k, step in enumerate(restarts):
            label = "warm restart" if k == 0 else "_"  # one legend entry for them all
            ax.axvline(step, color="black", ls="-.", lw=0.8, label=label)
        # below the axes, where it hides no line
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    fig.tight_layout()
    return fig


def stored_grid(grid: np.ndarray, labels: list, height: float = 1.9):
    """A grid of patches stored as one image (``tools/gan_probe.py --grid``: one row of patches
    per class, top to bottom), each row named by its class (``labels``: 0, 1)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, height))
    ax.imshow(grid)
    ax.set_xticks([])
    ax.grid(False)
    row = grid.shape[0] / len(labels)
    ax.set_yticks([row * (k + 0.5) for k in range(len(labels))])
    ax.set_yticklabels([CLASS_NAMES[c] for c in labels])
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
    paired interval over test patients and seeds (chapter 10)."""
    import matplotlib.pyplot as plt

    from idc_utils.studies.synthetic_gain import GAIN_LABELS

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
