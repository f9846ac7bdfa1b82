"""Chapter 10's question: do synthetic *images* help the classifier more than chapter 4's balancing
methods do? The same head on the same embeddings, with the generator's patches added, against no
balancing, class weights and SMOTE, over several generator seeds and with paired intervals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from idc_utils.studies.imbalance import patient_subsample, resample, score_head

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
    """Balancing with synthetic images against the chapter-4 methods, over several seeds."""

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
        if "val_auc" in t:  # what chose the synthetic method the verdict judges
            out["validation AUC"] = ["" if pd.isna(v) else f"{v:.3f}" for v in t["val_auc"]]
        return out

    def verdict(self) -> dict:
        """Does a synthetic-image method beat no balancing, in AUC or in precision at the target
        recall, by more than the patients' and the seeds' noise? A sentence that says so.

        The method judged is the one with the higher **validation** AUC (column ``val_auc``),
        so that the test patients that judge it did not also pick it; without validation scores
        each synthetic method is reported and none is picked. A gain in one measure with a loss
        in the other is called mixed."""
        t = self.table
        syn = [m for m in ("synthetic_minority", "synthetic_both") if m in t.index]
        if not syn or "none" not in t.index:
            return {"gain": False, "sentence": "The synthetic methods were not run."}
        n = len(self.seeds)
        seeds = f"averaged over {n} seed{'s' if n > 1 else ''}"
        if "val_auc" in t and t.loc[syn, "val_auc"].notna().all():
            best = max(syn, key=lambda m: t.loc[m, "val_auc"])
            judged = [best]
            head = (
                "The synthetic-image method with the higher validation AUC, "
                f"**{GAIN_LABELS[best]}** (chosen on validation patients, then scored on test "
                "patients), changes "
            )
        else:
            best, judged = None, syn
            head = "Without validation scores to choose between them, each synthetic method: "
        reads, gained_any, harmed_any, mixed_any = [], False, False, False
        for method in judged:
            text, gained, harmed = self._read(method)
            gained_any |= bool(gained and not harmed)
            harmed_any |= bool(harmed and not gained)
            mixed_any |= bool(gained and harmed)
            if best is None:
                text = f"**{GAIN_LABELS[method]}** changes " + text
            reads.append(text)
        sentence = head + "; ".join(reads) + f", {seeds}."
        return {
            "best": best,
            "gain": gained_any and not harmed_any and not mixed_any,
            "harm": harmed_any and not gained_any and not mixed_any,
            "mixed": mixed_any or (gained_any and harmed_any),
            "sentence": sentence,
        }

    def _read(self, method: str) -> tuple[str, list, list]:
        """How ``method`` changes AUC and precision against no balancing, with the reading of
        the intervals: ``(text, measures gained, measures harmed)``."""
        t = self.table
        parts, gained, harmed = [], [], []
        for metric, what in (
            ("auc", "AUC"),
            ("precision", f"precision at recall {self.target_recall:.2f}"),
        ):
            e = t.loc[method, f"{metric}_vs_none"]
            lo = t.loc[method, f"{metric}_vs_none_low"]
            hi = t.loc[method, f"{metric}_vs_none_high"]
            if lo > 0:
                gained.append(what)
            if hi < 0:
                harmed.append(what)
            parts.append(f"{what} by {e:+.3f} (95% CI {lo:+.3f} to {hi:+.3f})")
        text = f"the test {parts[0]} and the {parts[1]}"
        if gained and harmed:
            reading = (
                f"mixed: a gain in {' and '.join(gained)} but a loss in {' and '.join(harmed)}, "
                "each larger than the noise of patients and seeds"
            )
        elif gained:
            which = f" in {gained[0]} only" if len(gained) == 1 else ""
            reading = f"a gain larger than the noise of patients and seeds{which}"
        elif harmed:
            reading = "synthetic images made the classifier worse here"
        else:
            reading = "no difference that can be told apart from the noise"
        return f"{text}: {reading}", gained, harmed


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
    max_train: int | None = None,
) -> GainStudy:
    """Chapter 4's controlled comparison with synthetic *images* added: the same head on the
    same training embeddings, threshold on validation patients, scored on test patients.

    ``synthetic`` maps each seed to ``(embeddings, labels)`` of patches the generator drew with
    that seed. ``synthetic_minority`` adds their IDC+ rows to the training rows,
    ``synthetic_both`` all of them; ``smote`` uses the seed for its draws. The test patients'
    bootstrap resamples are the same for every method and seed, so each difference to 'none' is
    paired; a method's resample value is its mean over the seeds, so the interval holds the
    patients' noise and the seeds' together.

    ``max_train``: at most this many real training rows, of whole patients drawn with
    ``boot_seed`` (chapter 4's ``balance_max_train``: SMOTE's neighbour search on the whole
    Kaggle set's 190,000 training rows takes hours and more memory than a laptop has); None:
    all of them."""
    from idc_utils.evaluation import bootstrap, metrics

    keep = patient_subsample(patients["train"], max_train, boot_seed)
    emb = {**emb, "train": np.asarray(emb["train"])[keep]}
    labels = {**labels, "train": np.asarray(labels["train"])[keep]}

    seeds = list(synthetic)
    if not seeds:
        raise ValueError("no synthetic sets given: pass {seed: (embeddings, labels)}")
    rows, boot = [], {}
    for method in methods:
        for seed in seeds:
            if method in ("none", "class_weight") and seed != seeds[0]:
                # no randomness in these two: the first seed's head stands for every seed
                boot[method, seed] = boot[method, seeds[0]]
                rows.append({**rows[-1], "seed": seed})
                continue
            Xr, yr, w, n_syn = training_rows(
                emb["train"], labels["train"], synthetic[seed], method, seed
            )
            scored = score_head(Xr, yr, w, seed, emb, labels, target_recall)
            p_test, thr = scored["test"], scored["threshold"]
            point = metrics.binary_metrics(labels["test"], p_test, thr)
            val_auc = metrics.binary_metrics(labels["val"], scored["val"], thr)["auc"]
            boot[method, seed] = bootstrap.bootstrap_samples(
                labels["test"], p_test, patients["test"], thr, n_boot, boot_seed
            )
            rows.append(
                {
                    "method": method,
                    "seed": seed,
                    "synthetic": n_syn,
                    "real_train_rows": len(keep),
                    "threshold": thr,
                    "val_auc": val_auc,
                    **{k: point[k] for k in ("auc", "recall", "precision")},
                }
            )
    per_seed = pd.DataFrame(rows)
    return GainStudy(_gain_table(per_seed, boot, seeds), per_seed, seeds, target_recall)


def training_rows(X, y, synthetic_set, method: str, seed: int):
    """The training rows a method fits its head on: ``(X, y, sample weights or None, synthetic
    rows added)``. The chapter-4 methods resample the real rows; the synthetic ones append the
    generator's IDC+ rows (``synthetic_minority``) or all of them (``synthetic_both``)."""
    y = np.asarray(y).astype(int)
    if method in ("none", "class_weight", "smote"):
        Xr, yr, w, syn = resample(X, y, method, seed)
        return Xr, yr, w, int(syn.sum())
    X_syn, y_syn = synthetic_set
    y_syn = np.asarray(y_syn).astype(int)
    keep = y_syn == 1 if method == "synthetic_minority" else np.ones(len(y_syn), bool)
    return np.vstack([X, X_syn[keep]]), np.r_[y, y_syn[keep]], None, int(keep.sum())


def _gain_table(per_seed: pd.DataFrame, boot: dict, seeds: list) -> pd.DataFrame:
    """Per method: the means over seeds, the seeds' AUC range, and the paired differences to
    'none' with intervals over the shared patient resamples (each averaged over the seeds)."""
    by_method = per_seed.groupby("method", sort=False)
    cols = ["synthetic", "threshold", "val_auc", "auc", "recall", "precision"]
    table = by_method[[c for c in cols if c in per_seed]].mean()
    table["auc_seed_min"] = by_method["auc"].min()
    table["auc_seed_max"] = by_method["auc"].max()

    def mean_over_seeds(method, metric):
        return np.mean([boot[method, s][metric] for s in seeds], axis=0)

    if "none" not in table.index:
        return table
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
    return table
