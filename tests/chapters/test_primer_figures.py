"""Chapter 3's figures and tables draw what they are given."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from conftest import patient_data

from idc_utils.chapters import primer_figures
from idc_utils.evaluation import metrics


def test_the_confusion_table_puts_truth_in_rows_and_adds_totals():
    y, p, _ = patient_data(n_pat=8, per=20)
    m = metrics.binary_metrics(y, p, 0.5)
    t = primer_figures.confusion_table(m)
    assert t.loc["truly IDC+", "called IDC+"] == m["tp"]
    assert t.loc["truly IDC−", "called IDC+"] == m["fp"]
    assert t.loc["truly IDC+", "called IDC−"] == m["fn"]
    assert t.loc["total", "total"] == len(y)
    assert t.loc["truly IDC+", "total"] == y.sum()


def test_the_threshold_sweep_runs_from_everything_called_to_almost_nothing():
    y, p, _ = patient_data(n_pat=8, per=20)
    sweep = primer_figures.threshold_sweep(y, p, n=50)
    assert len(sweep) == 50 and sweep["called IDC+"].iloc[0] == 1.0
    assert sweep["recall"].iloc[0] == 1.0 and sweep["precision"].iloc[0] == y.mean()
    assert sweep["recall"].is_monotonic_decreasing


def test_the_figures_draw():
    y, p, pats = patient_data(n_pat=12, per=25)
    points = {"median": float(np.median(p)), "target": metrics.threshold_for_recall(y, p, 0.9)}
    figs = [
        primer_figures.plot_score_by_class(p, y, points["median"], "score"),
        primer_figures.plot_roc(y, p, points),
        primer_figures.plot_pr(y, p, points),
        primer_figures.plot_threshold_sweep(y, p, points["target"], 0.9, "score"),
        primer_figures.plot_resampling_spread(
            {
                "patients": np.random.default_rng(0).normal(0.8, 0.04, 100),
                "patches": np.random.default_rng(1).normal(0.8, 0.015, 100),
            },
            0.8,
        ),
    ]
    roc_ax = figs[1].axes[0]
    assert any("AUC" in t.get_text() for t in roc_ax.get_legend().get_texts())
    pr_ax = figs[2].axes[0]
    assert any("IDC+ share" in t.get_text() for t in pr_ax.get_legend().get_texts())
    assert len(figs[4].axes[0].lines) == 3  # two interval bars and the estimate
    for fig in figs:
        plt.close(fig)


def test_the_threshold_sweep_agrees_with_binary_metrics():
    y, p, _ = patient_data(n_pat=8, per=20, seed=2)
    sweep = primer_figures.threshold_sweep(y, p, n=20)
    for row in sweep.itertuples():
        m = metrics.binary_metrics(y, p, row.threshold)
        assert row.recall == m["recall"] and row.precision == m["precision"]
