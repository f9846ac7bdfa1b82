"""Class imbalance on embeddings: no balancing, class weights, random oversampling, SMOTE & co.

SMOTE (Chawla et al. 2002) makes a synthetic minority example by interpolating between a real
one and one of its minority neighbours. On pixels that makes ghostly double exposures, not
tissue; in the feature space of a pretrained network ("embeddings") interpolation is meaningful,
which is why the source paper applied SMOTE there. Synthetic points are made from the
**training patients only**; validation and test patients are never resampled.

The comparison here is deliberately controlled: every method trains the same head (a
standardised logistic regression on the same frozen ImageNet embeddings) and is scored on the
same validation and test patients, with the operating threshold chosen on validation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

METHODS = ("none", "class_weight", "random_oversample", "smote", "borderline_smote", "adasyn")


def class_weights(labels) -> dict[int, float]:
    """'Balanced' weights: each class contributes half of the loss."""
    y = np.asarray(labels).astype(int)
    n, pos = len(y), int(y.sum())
    if pos == 0 or pos == n:
        raise ValueError("the training split holds one class only; a classifier cannot be trained")
    return {0: n / (2.0 * (n - pos)), 1: n / (2.0 * pos)}


def embedder(backbone: str = "efficientnet_lite0", image_size: int = 96):
    """Frozen ImageNet backbone from raw 50x50 patches to its pooled feature vector."""
    import keras

    from . import models

    clf = models.build_classifier(backbone, image_size, weights="imagenet", dropout=0.0)
    return keras.Model(clf.input, clf.get_layer("head_pool").output, name=f"{backbone}_embedder")


def embed(
    model, images: np.ndarray, index, batch_size: int = 256, out: np.ndarray | None = None
) -> np.ndarray:
    """Embeddings of ``images[index]``, float32 ``(n, d)``, computed batch by batch (the images
    are never all in memory as floats); written into ``out`` when given (e.g. a memory map)."""
    import tensorflow as tf

    index = np.asarray(index, dtype=np.int64)
    forward = getattr(model, "_idc_forward", None)
    if forward is None:  # one compiled function per model, however often embed is called

        @tf.function(reduce_retracing=True)
        def forward(x):
            return model(tf.cast(x, tf.float32), training=False)

        model._idc_forward = forward

    for s in range(0, len(index), batch_size):
        rows = index[s : s + batch_size]
        f = forward(np.asarray(images[rows])).numpy().astype(np.float32)
        if out is None:
            out = np.empty((len(index), f.shape[1]), np.float32)
        out[s : s + len(rows)] = f
    return out if out is not None else np.empty((0, 0), np.float32)


def dataset_embeddings(
    images: np.ndarray,
    fingerprint: str,
    backbone: str = "efficientnet_lite0",
    image_size: int = 96,
    cache_dir=None,
    log=None,
) -> np.ndarray:
    """Frozen-backbone embeddings of **every** patch of a dataset, computed once and cached next
    to the decoded patches (a memory-mapped ``.npy``): chapter 3 compares balancing methods on
    them and chapter 5 trains its phase-1 head on them, so the pass is paid once. The cache key
    holds the data fingerprint, the backbone, the size, and the source of the model code."""
    import hashlib
    from pathlib import Path

    from .data import default_cache_dir

    code = hashlib.sha256()
    for module in ("models.py", "preprocess.py", "torch_weights.py"):
        code.update((Path(__file__).parent / module).read_bytes())
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    path = (
        root / "embeddings" / f"{fingerprint}-{backbone}-{image_size}-{code.hexdigest()[:10]}.npy"
    )
    if path.exists():
        arr = np.load(path, mmap_mode="r")
        if arr.shape[0] == len(images):
            if log:
                log(f"embeddings of {len(images):,} patches read from the cache ({path.name})")
            return arr
    path.parent.mkdir(parents=True, exist_ok=True)
    net = embedder(backbone, image_size)
    tmp = path.with_name(path.name + f".tmp-{__import__('os').getpid()}")
    out = np.lib.format.open_memmap(tmp, "w+", np.float32, (len(images), net.output_shape[-1]))
    embed(net, images, np.arange(len(images)), out=out)
    out.flush()
    del out
    tmp.replace(path)
    if log:
        log(
            f"embedded {len(images):,} patches with the frozen {backbone} at {image_size} px; "
            f"cached as {path.name}"
        )
    return np.load(path, mmap_mode="r")


def resample(X: np.ndarray, y: np.ndarray, method: str, seed: int = 0, k_neighbors: int = 5):
    """Balance ``(X, y)`` with ``method``.

    Returns ``(X', y', sample_weight or None, is_synthetic)``;
    the real rows come first and unchanged."""
    y = np.asarray(y).astype(int)
    if method not in METHODS:
        raise ValueError(f"unknown balancing method {method!r}; choose one of {METHODS}")
    real = np.zeros(len(y), bool)
    if method == "none":
        return X, y, None, real
    if method == "class_weight":
        cw = class_weights(y)
        return X, y, np.where(y == 1, cw[1], cw[0]), real
    from imblearn.over_sampling import ADASYN, SMOTE, BorderlineSMOTE, RandomOverSampler

    k = min(k_neighbors, int(min(np.bincount(y))) - 1)
    if k < 1 and method != "random_oversample":
        raise ValueError("the minority class has too few examples for SMOTE's neighbours")
    sampler = {
        "random_oversample": lambda: RandomOverSampler(random_state=seed),
        "smote": lambda: SMOTE(random_state=seed, k_neighbors=k),
        "borderline_smote": lambda: BorderlineSMOTE(random_state=seed, k_neighbors=k),
        "adasyn": lambda: ADASYN(random_state=seed, n_neighbors=k),
    }[method]()
    Xr, yr = sampler.fit_resample(X, y)
    # imbalanced-learn keeps the original rows first and appends the new ones
    synthetic = np.r_[real, np.ones(len(yr) - len(y), bool)]
    if not np.array_equal(Xr[: len(y)], X):
        raise RuntimeError(
            f"{method}: the resampler reordered the real rows; cannot mark synthetic ones"
        )
    return Xr, yr, None, synthetic


def linear_head(C: float = 0.5, seed: int = 0):
    """An unfitted standardised L2 logistic regression: the linear head on embeddings that
    chapters 3 and 7 compare methods with (and the real-vs-synthetic probe)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(C=C, max_iter=3000, random_state=seed)
    )


def one_blas_thread():
    """A context with one BLAS thread: for fits on a few thousand rows, threads cost more than
    they give (a 2-core machine fitted the head 5-8x faster this way)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def fit_head(X, y, sample_weight=None, seed: int = 0, C: float = 0.5):
    """The linear head (:func:`linear_head`) fitted on ``(X, y)``."""
    head = linear_head(C, seed)
    with one_blas_thread():
        head.fit(X, y, logisticregression__sample_weight=sample_weight)
    return head


def score_head(Xr, yr, w, seed, emb: dict, labels: dict, target_recall: float) -> dict:
    """Fit a head on (resampled) training rows and score it the way every comparison does:
    ``{"val": p, "test": p, "threshold": t}``, the threshold chosen on validation for
    ``target_recall``."""
    from . import evaluate

    head = fit_head(Xr, yr, w, seed)
    p_val = head.predict_proba(emb["val"])[:, 1]
    p_test = head.predict_proba(emb["test"])[:, 1]
    t = evaluate.threshold_for_recall(labels["val"], p_val, target_recall)
    return {"val": p_val, "test": p_test, "threshold": t}


@dataclass
class Comparison:
    table: pd.DataFrame  # one row per method: metrics, their CI bounds (_low/_high), AUC vs 'none'
    probs: dict  # method -> {"val": p, "test": p, "threshold": t}
    resampled: dict  # method -> (n_train, n_synthetic)

    def readable(self) -> pd.DataFrame:
        """Estimates with their 95% intervals as text, for the book."""
        t = self.table
        ran = t["error"] == "" if "error" in t else pd.Series(True, index=t.index)
        out = t[["train_rows", "synthetic", "threshold"]].copy()
        for m in ("auc", "recall", "precision", "balanced_accuracy"):
            out[m] = [
                f"{e:.3f} [{lo:.3f}, {hi:.3f}]" if ok else "could not run"
                for e, lo, hi, ok in zip(t[m], t[f"{m}_low"], t[f"{m}_high"], ran)
            ]
        if "auc_vs_none" in t:
            out["AUC vs none (paired)"] = [
                "" if np.isnan(e) else f"{e:+.3f} [{lo:+.3f}, {hi:+.3f}]"
                for e, lo, hi in zip(t["auc_vs_none"], t["auc_vs_none_low"], t["auc_vs_none_high"])
            ]
        if not ran.all():
            out["why not"] = t["error"].fillna("")
        return out

    def verdict(self) -> dict:
        """The balancing method with the highest test AUC, its paired difference to no balancing,
        whether that difference is distinguishable from zero, and a sentence saying so."""
        t = self.table
        if "error" in t:
            t = t[t["error"] == ""]
        others = t.drop(index="none", errors="ignore")
        if others.empty or "auc_vs_none" not in t:
            return {
                "best": "none",
                "gain": 0.0,
                "low": 0.0,
                "high": 0.0,
                "distinguishable": False,
                "sentence": "Only one method was run, so there is nothing to compare.",
            }
        best = others["auc"].idxmax()
        gain = float(t.loc[best, "auc_vs_none"])
        lo, hi = float(t.loc[best, "auc_vs_none_low"]), float(t.loc[best, "auc_vs_none_high"])
        ci = f"paired 95% CI {lo:+.3f} to {hi:+.3f}"
        if lo > 0:
            sentence = (
                f"The best balancing method, **{best}**, beats no balancing by {gain:+.3f} AUC "
                f"({ci}): a real gain on these patients."
            )
        elif hi < 0:
            sentence = (
                f"Every balancing method did worse than no balancing; the closest, **{best}**, by "
                f"{gain:+.3f} AUC "
                f"({ci}), an interval below zero."
            )
        else:
            sentence = (
                f"No balancing method can be told apart from no balancing: the one with the "
                "highest AUC, "
                f"**{best}**, differs by {gain:+.3f} ({ci}), an interval that contains zero."
            )
        worse = [m for m in others.index if t.loc[m, "auc_vs_none_high"] < 0]
        if worse and best not in worse:
            sentence += (
                " Significantly worse than no balancing: "
                + ", ".join(f"**{m}**" for m in worse)
                + "."
            )
        return {
            "best": best,
            "gain": gain,
            "low": lo,
            "high": hi,
            "distinguishable": bool(lo > 0 or hi < 0),
            "worse_than_none": worse,
            "sentence": sentence,
        }


def patient_subsample(patients, max_rows: int | None, seed: int = 0) -> np.ndarray:
    """Row positions of whole patients, drawn in a seeded order until ``max_rows`` rows are
    reached (all rows when ``max_rows`` is None or not smaller): a smaller training set that
    still never splits a patient."""
    patients = np.asarray(patients).astype(str)
    if not max_rows or len(patients) <= max_rows:
        return np.arange(len(patients))
    uniq = np.unique(patients)
    order = np.random.default_rng(seed).permutation(uniq)
    counts = pd.Series(patients).value_counts()
    chosen, total = [], 0
    for pid in order:
        if total >= max_rows:
            break
        chosen.append(pid)
        total += int(counts[pid])
    return np.flatnonzero(np.isin(patients, chosen))


def compare_methods(
    emb: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    patients: dict[str, np.ndarray],
    methods=METHODS,
    *,
    target_recall: float = 0.93,
    seed: int = 0,
    n_boot: int = 1000,
    max_train: int | None = None,
    log=None,
) -> Comparison:
    """Train one head per method on the train embeddings, threshold on val, score test; 95% CIs
    and the paired difference to 'none' by bootstrapping test *patients*.

    ``max_train`` caps the training rows (whole patients, seeded) for sets too large for
    nearest-neighbour resampling on a CPU. A method that cannot run on this data (ADASYN when
    no minority point has a majority neighbour, say) keeps its row with the reason; the others
    are compared without it."""
    from . import evaluate

    keep = patient_subsample(patients["train"], max_train, seed)
    X_train, y_train = emb["train"][keep], np.asarray(labels["train"])[keep]
    if log and len(keep) < len(emb["train"]):
        log(
            f"training rows for the comparison: {len(keep):,} of {len(emb['train']):,} "
            "(whole patients)"
        )
    rows, probs, sizes, failed = [], {}, {}, {}
    for method in methods:
        try:
            Xr, yr, w, syn = resample(X_train, y_train, method, seed)
        except (ValueError, RuntimeError) as exc:
            failed[method] = f"{type(exc).__name__}: {exc}"
            continue
        probs[method] = score_head(Xr, yr, w, seed, emb, labels, target_recall)
        sizes[method] = (len(yr), int(syn.sum()))
        del Xr, yr, w, syn
    base = probs["none"]["test"] if "none" in probs else None
    for method in methods:
        if method in failed:
            rows.append({"method": method, "error": failed[method]})
            continue
        pr = probs[method]
        ci = evaluate.bootstrap_metrics(
            labels["test"], pr["test"], patients["test"], pr["threshold"], n_boot=n_boot, seed=seed
        )
        row = {
            "method": method,
            "train_rows": sizes[method][0],
            "synthetic": sizes[method][1],
            "threshold": pr["threshold"],
            "error": "",
        }
        for metric in ("auc", "recall", "precision", "balanced_accuracy"):
            row[metric] = ci.loc[metric, "estimate"]
            row[f"{metric}_low"] = ci.loc[metric, "low"]
            row[f"{metric}_high"] = ci.loc[metric, "high"]
        if base is not None and method != "none":
            d = evaluate.paired_bootstrap_difference(
                labels["test"],
                pr["test"],
                base,
                patients["test"],
                metric="auc",
                n_boot=n_boot,
                seed=seed,
            )
            row.update(
                auc_vs_none=d["difference"], auc_vs_none_low=d["low"], auc_vs_none_high=d["high"]
            )
        rows.append(row)
    return Comparison(pd.DataFrame(rows).set_index("method"), probs, sizes)


def pixel_interpolation(
    a: np.ndarray, b: np.ndarray, steps=(0.0, 0.25, 0.5, 0.75, 1.0)
) -> np.ndarray:
    """What SMOTE would do on pixels: straight-line mixes of two patches."""
    a = a.astype(np.float32)
    b = b.astype(np.float32)
    return np.stack([np.clip(a + s * (b - a), 0, 255).astype(np.uint8) for s in steps])


def project_2d(X: np.ndarray, method: str = "pca", seed: int = 0, fit_rows=None) -> np.ndarray:
    """2-D view of embeddings: PCA (fast, fitted on ``fit_rows`` = the real points) or t-SNE."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    Z = StandardScaler().fit(X if fit_rows is None else X[fit_rows]).transform(X)
    if method == "pca":
        pca = PCA(2, random_state=seed).fit(Z if fit_rows is None else Z[fit_rows])
        return pca.transform(Z)
    if method == "tsne":
        from sklearn.manifold import TSNE

        Z50 = PCA(min(50, Z.shape[1]), random_state=seed).fit_transform(Z)
        return TSNE(2, random_state=seed, init="pca", perplexity=30).fit_transform(Z50)
    raise ValueError("projection must be 'pca' or 'tsne'")


# ----------------------------------------------------------------------------- synthetic images

GAIN_METHODS = ("none", "class_weight", "smote", "synthetic_minority", "synthetic_both")
GAIN_LABELS = {
    "none": "no balancing",
    "class_weight": "class weights",
    "smote": "SMOTE on embeddings",
    "synthetic_minority": "+ synthetic IDC+ images",
    "synthetic_both": "+ synthetic images of both classes",
}


@dataclass
class GainStudy:
    """Balancing with synthetic images against the chapter-3 methods, over several seeds."""

    table: pd.DataFrame  # per method: means over seeds, seed ranges, paired CIs vs 'none'
    per_seed: pd.DataFrame  # one row per (method, seed)
    seeds: list
    target_recall: float

    def readable(self) -> pd.DataFrame:
        t = self.table
        out = pd.DataFrame(index=[GAIN_LABELS.get(m, m) for m in t.index])
        out["synthetic rows"] = t["synthetic"].round().astype(int).to_numpy()
        out["test AUC (seed range)"] = [
            f"{a:.3f} ({lo:.3f}-{hi:.3f})"
            for a, lo, hi in zip(t["auc"], t["auc_seed_min"], t["auc_seed_max"])
        ]
        for m, name in (("auc", "AUC"), ("precision", "precision")):
            out[f"{name} vs none [95% CI]"] = [
                "" if k == "none" else f"{e:+.3f} [{lo:+.3f}, {hi:+.3f}]"
                for k, e, lo, hi in zip(
                    t.index, t[f"{m}_vs_none"], t[f"{m}_vs_none_low"], t[f"{m}_vs_none_high"]
                )
            ]
        out["recall at the threshold"] = t["recall"].map("{:.3f}".format).to_numpy()
        return out

    def verdict(self) -> dict:
        """Does either synthetic-image method beat no balancing, in AUC or in precision at the
        target recall, by more than the patients' and the seeds' noise? A sentence that says so."""
        t = self.table
        syn = [m for m in ("synthetic_minority", "synthetic_both") if m in t.index]
        if not syn or "none" not in t.index:
            return {"gain": False, "sentence": "The synthetic methods were not run."}
        best = max(syn, key=lambda m: t.loc[m, "auc"])
        parts, gain, harm = [], False, False
        for metric, what in (
            ("auc", "AUC"),
            ("precision", f"precision at recall {self.target_recall:.2f}"),
        ):
            e = t.loc[best, f"{metric}_vs_none"]
            lo, hi = t.loc[best, f"{metric}_vs_none_low"], t.loc[best, f"{metric}_vs_none_high"]
            gain |= lo > 0
            harm |= hi < 0
            parts.append(f"{what} by {e:+.3f} (95% CI {lo:+.3f} to {hi:+.3f})")
        n = len(self.seeds)
        head = (
            f"The better of the synthetic-image methods, **{GAIN_LABELS[best]}**, changes the test "
            f"{parts[0]} and the {parts[1]}, averaged over {n} seed{'s' if n > 1 else ''}"
        )
        if gain and not harm:
            sentence = head + ": a gain larger than the noise of patients and seeds."
        elif harm and not gain:
            sentence = head + ": synthetic images made the classifier worse here."
        else:
            sentence = head + ": no difference that can be told apart from the noise."
        helped = bool(gain and not harm)
        return {
            "best": best,
            "gain": helped,
            "harm": bool(harm and not gain),
            "sentence": sentence,
        }


def compare_with_synthetic(
    emb: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    patients: dict[str, np.ndarray],
    synthetic: dict[int, tuple[np.ndarray, np.ndarray]],
    *,
    methods=GAIN_METHODS,
    target_recall: float = 0.93,
    n_boot: int = 1000,
    boot_seed: int = 0,
) -> GainStudy:
    """Chapter 3's controlled comparison with synthetic *images* added: the same head on the
    same training embeddings, threshold on validation patients, scored on test patients.

    ``synthetic`` maps each seed to ``(embeddings, labels)`` of patches the generator drew with
    that seed. ``synthetic_minority`` adds their IDC+ rows to the training rows,
    ``synthetic_both`` all of them; ``smote`` uses the seed for its draws. The test patients'
    bootstrap resamples are the same for every method and seed, so each difference to 'none' is
    paired; a method's resample value is its mean over the seeds, so the interval holds the
    patients' noise and the seeds' together."""
    from . import evaluate

    seeds = list(synthetic)
    if not seeds:
        raise ValueError("no synthetic sets given: pass {seed: (embeddings, labels)}")
    X, y = emb["train"], np.asarray(labels["train"]).astype(int)
    rows, boot = [], {}
    for method in methods:
        for seed in seeds:
            X_syn, y_syn = synthetic[seed]
            y_syn = np.asarray(y_syn).astype(int)
            w = None
            if method in ("none", "class_weight") and seed != seeds[0]:
                # no randomness in these two: the first seed's head stands for every seed
                boot[method, seed] = boot[method, seeds[0]]
                rows.append({**rows[-1], "seed": seed})
                continue
            if method in ("none", "class_weight", "smote"):
                Xr, yr, w, syn = resample(X, y, method, seed)
                n_syn = int(syn.sum())
            else:
                keep = y_syn == 1 if method == "synthetic_minority" else np.ones(len(y_syn), bool)
                Xr, yr = np.vstack([X, X_syn[keep]]), np.r_[y, y_syn[keep]]
                n_syn = int(keep.sum())
            scored = score_head(Xr, yr, w, seed, emb, labels, target_recall)
            p_test, thr = scored["test"], scored["threshold"]
            point = evaluate.binary_metrics(labels["test"], p_test, thr)
            b = evaluate.bootstrap_samples(
                labels["test"], p_test, patients["test"], thr, n_boot, boot_seed
            )
            boot[method, seed] = b
            rows.append(
                {
                    "method": method,
                    "seed": seed,
                    "synthetic": n_syn,
                    "threshold": thr,
                    **{k: point[k] for k in ("auc", "recall", "precision")},
                }
            )
    per_seed = pd.DataFrame(rows)
    table = per_seed.groupby("method", sort=False)[
        ["synthetic", "threshold", "auc", "recall", "precision"]
    ].mean()
    table["auc_seed_min"] = per_seed.groupby("method", sort=False)["auc"].min()
    table["auc_seed_max"] = per_seed.groupby("method", sort=False)["auc"].max()

    def mean_over_seeds(method, metric):
        return np.mean([boot[method, s][metric] for s in seeds], axis=0)

    if "none" in table.index:
        for metric in ("auc", "precision"):
            base = mean_over_seeds("none", metric)
            for method in table.index:
                d = mean_over_seeds(method, metric) - base
                d = d[~np.isnan(d)]
                table.loc[method, f"{metric}_vs_none"] = (
                    table.loc[method, metric] - table.loc["none", metric]
                )
                table.loc[method, f"{metric}_vs_none_low"] = float(np.quantile(d, 0.025))
                table.loc[method, f"{metric}_vs_none_high"] = float(np.quantile(d, 0.975))
    return GainStudy(table, per_seed, seeds, target_recall)
