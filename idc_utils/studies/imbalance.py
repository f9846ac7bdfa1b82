"""Class imbalance on embeddings: no balancing, class weights, random oversampling, SMOTE & co.

SMOTE (Chawla et al. 2002) makes a synthetic minority example by interpolating between a real
one and one of its minority neighbours. On pixels that makes ghostly double exposures, not
tissue; in the feature space of a pretrained network ("embeddings") interpolation is meaningful,
which is why the source paper applied SMOTE there. Synthetic points are made from the
**training patients only**; validation and test patients are never resampled.

The comparison here is deliberately controlled: every method trains the same head (a
standardised logistic regression on the same frozen ImageNet embeddings), the operating
threshold is chosen on validation, and the methods are compared and one is chosen on the
**validation** patients (paired patient bootstrap). The test patients only confirm the chosen
method afterwards; they never take part in the choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from idc_utils.models.linear_head import fit_head
from idc_utils.training.class_weights import class_weights

METHODS = ("none", "class_weight", "random_oversample", "smote", "borderline_smote", "adasyn")
VAL_METRICS = ("auc", "recall", "precision", "balanced_accuracy")


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


def score_head(Xr, yr, w, seed, emb: dict, labels: dict, target_recall: float) -> dict:
    """Fit a head on (resampled) training rows and score it the way every comparison does:
    ``{"val": p, "test": p, "threshold": t}``, the threshold chosen on validation for
    ``target_recall``."""
    from idc_utils.evaluation import metrics

    head = fit_head(Xr, yr, w, seed)
    p_val = head.predict_proba(emb["val"])[:, 1]
    p_test = head.predict_proba(emb["test"])[:, 1]
    t = metrics.threshold_for_recall(labels["val"], p_val, target_recall)
    return {"val": p_val, "test": p_test, "threshold": t}


@dataclass
class Comparison:
    """The balancing methods compared on **validation** patients (what chooses), and the chosen
    method confirmed once on test patients (what confirms, never used to choose)."""

    table: pd.DataFrame  # one row per method: validation metrics, CI bounds, AUC vs 'none'
    probs: dict  # method -> {"val": p, "test": p, "threshold": t}
    resampled: dict  # method -> (n_train, n_synthetic)
    confirmation: dict | None = None  # the chosen method on test patients (see ``confirm``)

    def readable(self) -> pd.DataFrame:
        """Validation estimates with their 95% intervals as text, for the book."""
        t = self.table
        ran = t["error"] == "" if "error" in t else pd.Series(True, index=t.index)
        out = t[["train_rows", "synthetic", "threshold"]].copy()
        for m in VAL_METRICS:
            out[f"val {m}"] = [
                f"{e:.3f} [{lo:.3f}, {hi:.3f}]" if ok else "could not run"
                for e, lo, hi, ok in zip(t[f"val_{m}"], t[f"val_{m}_low"], t[f"val_{m}_high"], ran)
            ]
        if "val_auc_vs_none" in t:
            out["val AUC vs none (paired)"] = [
                "" if np.isnan(e) else f"{e:+.3f} [{lo:+.3f}, {hi:+.3f}]"
                for e, lo, hi in zip(
                    t["val_auc_vs_none"], t["val_auc_vs_none_low"], t["val_auc_vs_none_high"]
                )
            ]
        if not ran.all():
            out["why not"] = t["error"].fillna("")
        return out

    def versus_none(self, method: str) -> dict | None:
        """``method``'s paired validation AUC difference to no balancing, its 95% interval and
        how it reads: ``better`` (interval above zero), ``worse`` (below zero) or
        ``indistinguishable`` (contains zero); None when the method did not run or there is no
        'none' row."""
        t = self.table
        col = "val_auc_vs_none"
        ok = method in t.index and col in t and not np.isnan(t.loc[method, col])
        if not ok or ("error" in t and t.loc[method, "error"]):
            return None
        d, lo, hi = (float(t.loc[method, c]) for c in (col, f"{col}_low", f"{col}_high"))
        reading = "better" if lo > 0 else "worse" if hi < 0 else "indistinguishable"
        return {"difference": d, "low": lo, "high": hi, "reading": reading}

    def method_sentence(self, method: str, name: str | None = None) -> str:
        """One sentence on ``method`` against no balancing on the validation patients, computed
        from the paired interval (e.g. "**class weights** moved validation AUC by -0.002 (paired
        95% CI -0.004 to +0.001): no difference these patients can show.")."""
        name = name or method
        v = self.versus_none(method)
        if v is None:
            return f"**{name}** did not run on this data, so it cannot be compared."
        reads = {
            "better": "better than no balancing, an interval above zero",
            "worse": "worse than no balancing, an interval below zero",
            "indistinguishable": "an interval that contains zero, so no difference these "
            "patients can show",
        }[v["reading"]]
        return (
            f"**{name}** moved validation AUC by {v['difference']:+.3f} (paired 95% CI "
            f"{v['low']:+.3f} to {v['high']:+.3f}): {reads}."
        )

    def models_sentence(self) -> str:
        """What this run's validation patients say about the choice the book's CNN and
        EfficientNet make (they train with class weights, ``TrainConfig.class_weights``),
        computed from the paired intervals, so that it follows the run whatever it finds."""
        from idc_utils.training.config import TrainConfig

        uses = TrainConfig.class_weights
        cw = self.versus_none("class_weight")
        better = [
            m for m in self.table.index if (self.versus_none(m) or {}).get("reading") == "better"
        ]
        text = (
            "The book's CNN and EfficientNet train with class weights (`class_weights` in "
            "`idc_utils/training/config.py`)"
            if uses
            else "The book's CNN and EfficientNet train without class weights"
        )
        if cw is None:
            return text + "; this run did not compare class weights, so it says nothing about that."
        if better and "class_weight" not in better:
            names = ", ".join(f"**{m}**" for m in better)
            return (
                text + f". On the validation patients {names} beat no balancing and class "
                "weights did not, so this run does not support that choice."
            )
        if cw["reading"] == "worse":
            return (
                text + ". On the validation patients class weights did worse than no balancing, "
                "so this run does not support that choice."
            )
        if cw["reading"] == "better":
            return (
                text + ". On the validation patients class weights beat no balancing, which "
                "supports it."
            )
        return (
            text + ". On the validation patients neither they nor any other method beat no "
            "balancing: class weights stay because they make no synthetic data and cost nothing, "
            "not because this run showed a gain."
        )

    def verdict(self) -> dict:
        """The method validation chooses: of those whose paired validation interval against no
        balancing lies above zero, the one with the highest validation AUC; no balancing when
        none does (a difference the validation patients cannot show is no reason to add a
        step). With its paired difference and a sentence saying so. Test patients take no
        part."""
        t = self.table
        if "error" in t:
            t = t[t["error"] == ""]
        others = t.drop(index="none", errors="ignore")
        if others.empty or "val_auc_vs_none" not in t or "none" not in t.index:
            only = t.index[0] if len(t) else "none"
            return {
                "chosen": only,
                "difference": 0.0,
                "low": 0.0,
                "high": 0.0,
                "better": [],
                "worse_than_none": [],
                "sentence": "Only one method was run, so there is nothing to choose between.",
            }
        read = {m: self.versus_none(m)["reading"] for m in others.index}
        better = [m for m in others.index if read[m] == "better"]
        worse = [m for m in others.index if read[m] == "worse"]
        unclear = [m for m in others.index if read[m] == "indistinguishable"]
        groups = (
            (better, "Better than no balancing on validation (paired interval above zero)"),
            (worse, "Worse than no balancing on validation (paired interval below zero)"),
            (unclear, "Not distinguishable from no balancing (paired interval contains zero)"),
        )
        if better:
            chosen = max(better, key=lambda m: t.loc[m, "val_auc"])
            v = self.versus_none(chosen)
            d, lo, hi = v["difference"], v["low"], v["high"]
            sentence = (
                f"Validation chooses **{chosen}**: it beats no balancing by {d:+.3f} validation "
                f"AUC (paired 95% CI {lo:+.3f} to {hi:+.3f})."
            )
        else:
            chosen, d, lo, hi = "none", 0.0, 0.0, 0.0
            sentence = (
                "Validation chooses **none**: no balancing method beat it on the validation "
                "patients, and a difference they cannot show is no reason to add a step."
            )
        for group, says in groups:
            rest = [m for m in group if m != chosen]
            if rest:
                sentence += f" {says}: " + ", ".join(f"**{m}**" for m in rest) + "."
        return {
            "chosen": chosen,
            "difference": d,
            "low": lo,
            "high": hi,
            "better": better,
            "worse_than_none": worse,
            "sentence": sentence,
        }

    def confirmation_sentence(self) -> str:
        """The test patients' confirmation of the method validation chose, as one sentence."""
        c = self.confirmation
        if not c:
            return "The chosen method was not scored on the test patients."
        text = (
            f"Confirmation on the test patients, which took no part in the choice: "
            f"**{c['method']}** reaches a test AUC of {c['auc']:.3f} (95% CI {c['auc_low']:.3f} "
            f"to {c['auc_high']:.3f}) and, at its validation threshold, a test recall of "
            f"{c['recall']:.3f} ({c['recall_low']:.3f} to {c['recall_high']:.3f})"
        )
        if "auc_vs_none" in c:
            text += (
                f"; against no balancing on the same test patients, {c['auc_vs_none']:+.3f} AUC "
                f"(paired 95% CI {c['auc_vs_none_low']:+.3f} to {c['auc_vs_none_high']:+.3f})"
            )
        return text + "."


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
    """Train one head per method on the train embeddings, threshold on val, and compare the
    methods on the **validation** patients: 95% CIs and the paired AUC difference to 'none' by
    bootstrapping validation patients. The method validation chooses (``Comparison.verdict``)
    is then scored once on the test patients (``Comparison.confirmation``), a confirmation that
    takes no part in the choice.

    ``max_train`` caps the training rows (whole patients, seeded) for sets too large for
    nearest-neighbour resampling on a CPU. A method that cannot run on this data (ADASYN when
    no minority point has a majority neighbour, say) keeps its row with the reason; the others
    are compared without it."""
    from idc_utils.evaluation import bootstrap

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
    base = probs["none"]["val"] if "none" in probs else None
    for method in methods:
        if method in failed:
            rows.append({"method": method, "error": failed[method]})
            continue
        pr = probs[method]
        ci = bootstrap.bootstrap_metrics(
            labels["val"], pr["val"], patients["val"], pr["threshold"], n_boot=n_boot, seed=seed
        )
        row = {
            "method": method,
            "train_rows": sizes[method][0],
            "synthetic": sizes[method][1],
            "threshold": pr["threshold"],
            "error": "",
        }
        for metric in VAL_METRICS:
            row[f"val_{metric}"] = ci.loc[metric, "estimate"]
            row[f"val_{metric}_low"] = ci.loc[metric, "low"]
            row[f"val_{metric}_high"] = ci.loc[metric, "high"]
        if base is not None and method != "none":
            d = bootstrap.paired_auc_gain(
                labels["val"], pr["val"], base, patients["val"], n_boot=n_boot, seed=seed
            )
            row.update(
                val_auc_vs_none=d["difference"],
                val_auc_vs_none_low=d["low"],
                val_auc_vs_none_high=d["high"],
            )
        rows.append(row)
    result = Comparison(pd.DataFrame(rows).set_index("method"), probs, sizes)
    result.confirmation = confirm(result, labels, patients, n_boot=n_boot, seed=seed)
    return result


def confirm(result: Comparison, labels: dict, patients: dict, n_boot: int, seed: int) -> dict:
    """The method validation chose, scored on the test patients with its validation threshold:
    AUC and recall with patient-bootstrap intervals and, unless it is 'none', the paired test AUC
    difference to no balancing. Only the chosen method is scored: test confirms, never chooses."""
    from idc_utils.evaluation import bootstrap

    chosen = result.verdict()["chosen"]
    if chosen not in result.probs:
        return {}
    pr = result.probs[chosen]
    ci = bootstrap.bootstrap_metrics(
        labels["test"], pr["test"], patients["test"], pr["threshold"], n_boot=n_boot, seed=seed
    )
    out = {"method": chosen, "threshold": float(pr["threshold"])}
    for metric in ("auc", "recall", "precision"):
        out[metric] = float(ci.loc[metric, "estimate"])
        out[f"{metric}_low"] = float(ci.loc[metric, "low"])
        out[f"{metric}_high"] = float(ci.loc[metric, "high"])
    if chosen != "none" and "none" in result.probs:
        d = bootstrap.paired_auc_gain(
            labels["test"],
            pr["test"],
            result.probs["none"]["test"],
            patients["test"],
            n_boot=n_boot,
            seed=seed,
        )
        out.update(
            auc_vs_none=d["difference"], auc_vs_none_low=d["low"], auc_vs_none_high=d["high"]
        )
    return out


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
