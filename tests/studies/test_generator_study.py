"""The generator study: variants, the judgement on validation patches and its bars, the choice,
and the chapter's rule for a published generator (use it when it fits, else train)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from generator_helpers import assert_committed, gan_params

from idc_utils.studies import generator_study as study
from idc_utils.training import diffusion, generator


def colour_features(patches):
    """Embeddings for the tests: each patch's mean colour and spread, per channel."""
    x = np.asarray(patches, np.float32) / 255
    return np.concatenate([x.mean(axis=(1, 2)), x.std(axis=(1, 2))], axis=1)


def patches_of(colour, n, seed, size=16):
    rng = np.random.default_rng(seed)
    base = np.asarray(colour, float)[None, None, None, :]
    return np.clip(base + rng.normal(0, 12, (n, size, size, 3)), 0, 255).astype(np.uint8)


PINK, PURPLE = (230, 180, 210), (90, 40, 120)


class FakeGenerator:
    """Samples patches of a fixed colour per class: what a generator that learned the classes'
    colours (or swapped them) would draw."""

    def __init__(self, colours):
        self.colours = colours

    def sample(self, n, label, seed, diffusion_steps, guidance):
        return patches_of(self.colours[label], n, seed)


def darkness(patches):
    """P(IDC+) for the tests: dark patches are IDC+."""
    return 1 - np.asarray(patches, np.float32).mean(axis=(1, 2, 3)) / 255


def real_validation():
    real = np.concatenate([patches_of(PINK, 60, 1), patches_of(PURPLE, 60, 2)])
    return diffusion.to_model_range(real, 16), np.r_[np.zeros(60), np.ones(60)]


def judgement_of_colours(colours):
    """The study's judgement of a generator that draws each class in ``colours``, against
    pink IDC- and purple IDC+ validation patches, with darkness as the classifier."""
    val_small, val_labels = real_validation()
    return study.judge_generator(
        FakeGenerator(colours), val_small, val_labels, colour_features, darkness, 0.5, per_class=60
    )


def test_a_generator_that_draws_each_class_right_meets_the_bars():
    right = judgement_of_colours({0: PINK, 1: PURPLE})
    assert right["called_pos_pos"] == 1.0 and right["called_pos_neg"] == 0.0
    assert right["kid_pos_x1000"] < study.KID_BAR_X1000 and right["meets_bars"]
    # the real validation patches, read the same way: the yardstick beside the bars
    assert right["real_called_pos_pos"] == 1.0 and right["real_called_pos_neg"] == 0.0
    swapped = judgement_of_colours({0: PURPLE, 1: PINK})
    assert swapped["called_pos_pos"] == 0.0 and swapped["called_pos_neg"] == 1.0
    assert swapped["kid_pos_x1000"] > 10 * right["kid_pos_x1000"]
    assert not swapped["meets_bars"]
    # a generator of one class is judged on that class, and no verdict on the bars is made
    val_small, val_labels = real_validation()
    one = study.judge_generator(
        FakeGenerator({1: PURPLE}),
        val_small,
        val_labels,
        colour_features,
        darkness,
        0.5,
        per_class=60,
        classes=(1,),
    )
    assert one["called_pos_pos"] == 1.0 and "kid_neg_x1000" not in one
    assert one["meets_bars"] is None


def test_the_study_judge_draws_validation_patches_only_and_judges_as_judge_generator():
    images = np.concatenate([patches_of(PINK, 40, 1, 50), patches_of(PURPLE, 40, 2, 50)])
    labels = np.r_[np.zeros(40, int), np.ones(40, int)]
    split_of = np.where(np.arange(80) % 4 == 0, "train", "val")
    df = pd.DataFrame({"i": np.arange(80), "label": labels, "split": split_of})
    judge = study.StudyJudge(images, df, colour_features, darkness, 0.5, seed=3, per_class=20)
    assert set(df.set_index("i").loc[judge.pick, "split"]) == {"val"}
    assert list(judge.pick) == sorted(judge.pick) and len(judge.pick) == 60
    assert judge.val_small(16) is judge.val_small(16)  # reduced once per size
    gen = FakeGenerator({0: PINK, 1: PURPLE})
    direct = study.judge_generator(
        gen,
        diffusion.to_model_range(images[judge.pick], 16),
        labels[judge.pick],
        colour_features,
        darkness,
        0.5,
        per_class=20,
        seed=3,
    )
    assert judge(gen, 16) == direct and direct["meets_bars"]


def test_the_yardstick_grows_as_real_tissue_loses_its_detail():
    rng = np.random.default_rng(0)
    # textured patches: the detail is what a reduction removes
    images = rng.integers(0, 256, (80, 50, 50, 3)).astype(np.uint8)
    labels = np.arange(80) % 2
    val_small = diffusion.to_model_range(images[:40], 32)
    rows = study.blurred_tissue_kid(
        images[40:], labels[40:], val_small, labels[:40], colour_features, sizes=(32, 8)
    )
    kid = {(r["class"], r["size"]): r["kid_x1000"] for r in rows}
    assert set(kid) == {("neg", 32), ("neg", 8), ("pos", 32), ("pos", 8)}
    assert kid[("neg", 8)] > kid[("neg", 32)] and kid[("pos", 8)] > kid[("pos", 32)]


def judged(kid_neg, kid_pos, called_pos=0.9, called_neg=0.05, **more):
    return {
        "kid_neg_x1000": kid_neg,
        "kid_pos_x1000": kid_pos,
        "called_pos_pos": called_pos,
        "called_pos_neg": called_neg,
        **more,
    }


def test_the_choice_prefers_variants_that_meet_more_bars_then_the_lower_kid():
    results = {
        "a": [judged(40, 300)],  # the lowest mean KID, but one class misses its bar
        "b": [judged(120, 110)],
        "c": [judged(90, 100)],  # the lower worst-class KID of the two that meet every bar
    }
    assert study.choose_variant(results) == "c"
    assert study.bars_met(results["a"][-1]) == 3
    # none meets the KID bars: the label bars decide before a slightly lower KID does
    far = {"sharp": [judged(900, 480)], "blurry": [judged(820, 560, called_pos=0.2)]}
    assert study.choose_variant(far) == "sharp"
    assert study.choose_variant({"a": results["a"]}) == "a"
    with pytest.raises(ValueError, match="no variant"):
        study.choose_variant({})


def test_the_gan_probe_table_has_a_row_per_judgement_with_the_real_yardstick():
    judged = [
        {"step": 1000, "train_seconds": 300.0, "kid_neg_x1000": 500.0, "kid_pos_x1000": 140.0,
         "called_pos_pos": 0.9, "called_pos_neg": 0.5, "real_called_pos_neg": 0.45},
        {"step": 2000, "train_seconds": 600.0, "kid_neg_x1000": 120.0, "kid_pos_x1000": 100.0,
         "called_pos_pos": 0.9, "called_pos_neg": 0.1, "real_called_pos_neg": 0.45},
    ]  # fmt: skip
    t = study.gan_probe_table({"judged": judged})
    assert list(t.index) == [1000, 2000]
    assert t.loc[1000, "training minutes"] == 5.0 and t.loc[1000, "bars met (of 4)"] == 2
    assert t.loc[2000, "bars met (of 4)"] == 4
    assert (t["real IDC- called IDC+"] == 0.45).all()


def test_the_gan_is_set_beside_the_diffusion_generator_as_the_chapter_samples_it():
    rows = [
        judged(700, 650, called_neg=0.2, diffusion_steps=12, guidance=0.0),
        judged(574, 453, called_pos=0.98, called_neg=0.03, diffusion_steps=12, guidance=2.0),
    ]
    results = {
        "sampling": {"rows": rows, "chosen": {"diffusion_steps": 12, "guidance": 2.0}},
        "variants": {"v": {"train_seconds": 2400.0}},
        "chosen": "v",
        "machine": "Intel Xeon",
    }
    assert study.chosen_sampling_row(results) is rows[1]
    gan = judged(307, 205, called_pos=0.96, called_neg=0.61, step=6000, train_seconds=3764.3)
    gan.update(real_called_pos_neg=0.45, real_called_pos_pos=0.96)
    probe = {
        "judged": [judged(900, 500), gan],
        "machine": "Intel Xeon",
        "settings": {"config": {"lr": 2e-4}},  # a record from before annealing
    }
    words = study.gan_against_diffusion(probe, results, 0.15)
    assert words["machines"] == "the same processor model"
    assert "too" in words["diff_reader"] and "stayed the same" in words["gan_schedule"]
    probe["machine"] = "AMD EPYC"
    probe["settings"]["config"].update(anneal_from=6000, anneal_steps=6000)
    other = study.gan_against_diffusion(probe, results, 0.15)
    assert "AMD EPYC; Intel Xeon" in other["machines"]
    assert "another training" in other["diff_reader"] and "(Intel Xeon)" in other["diff_reader"]
    # annealing set to begin at the last judged step never happened
    assert "stayed the same" in other["gan_schedule"]
    schedule = {"anneal_from": 6000, "anneal_steps": 6000}
    half = study.gan_schedule_sentence(schedule, 9000)
    assert (
        half.startswith("From step 6,000") and "at step 9,000 they were at 50% of the start" in half
    )
    assert "to 0 at step 12,000" in study.gan_schedule_sentence(schedule, 12000)
    assert study.judging_interval([{"step": 1000}, {"step": 2000}]) == "1,000"
    later = [{"step": 1000}, {"step": 2000}, {"step": 4000}]
    assert study.judging_interval(later) == "1,000 to 2,000"
    ended_between = [{"step": 1000}, {"step": 2000}, {"step": 2500}]
    assert study.judging_interval(ended_between) == "1,000"
    with pytest.raises(ValueError, match="no judgements"):
        study.judging_interval([])
    # a warm restart is told once it has begun, and how far it got
    again = {**schedule, "restart_from": 12000, "restart_steps": 12000, "restart_lr": 1e-4}
    assert "restart" not in study.gan_schedule_sentence(again, 12000)
    mid = study.gan_schedule_sentence(again, 18000)
    assert "at step 12,000 they rose again to 0.0001 (50% of the first rate)" in mid
    assert "were falling towards 0 at step 24,000" in mid
    assert "fell to 0 again at step 24,000" in study.gan_schedule_sentence(again, 24000)
    # several restarts, back to back, are told in turn, each once it has begun
    twice = {**again, "restart_steps": [12000, 1500]}
    assert "a warm restart:" in study.gan_schedule_sentence(twice, 24000)
    both = study.gan_schedule_sentence(twice, 25500)
    assert (
        "Then two warm restarts, each from the weights the one before left: at step 12,000" in both
    )
    assert (
        "at step 24,000 they rose to that rate once more and fell to 0 again at step 25,500" in both
    )
    slower = study.gan_schedule_sentence({**twice, "restart_lr": [1e-4, 5e-5]}, 25000)
    assert "rose again to 5e-05 (25% of the first rate) and were falling towards 0" in slower
    # a tie in the worse class, as shown (rounded), is a tie
    gan.update(kid_neg_x1000=574.2)
    assert study.gan_against_diffusion(probe, results, 0.15)["gan_vs_diff"] == "the same"
    assert words["gan_steps"] == "6,000" and words["gan_minutes"] == "63"
    assert words["diff_minutes"] == "40"
    assert (words["gan_kid_neg"], words["diff_kid_pos"]) == ("307", "453")
    assert (words["gan_called_neg"], words["diff_called_neg"]) == ("61%", "3%")
    assert (words["gan_real_neg"], words["real_vs_bar"]) == ("45%", "misses")
    # worse classes: the GAN's 307 against the diffusion generator's 574
    worse = (words["gan_vs_diff"], words["gan_worse"], words["diff_worse"])
    assert worse == ("lower", "307", "574")
    # the study's rule: most bars met first (the GAN's IDC- share misses its bar), then KID
    assert (words["gan_bars"], words["diff_bars"]) == ("1", "2")
    assert words["rule_favours"] == "the diffusion generator"
    gan.update(called_pos_neg=0.05, kid_neg_x1000=307)  # as many bars: the lower KID wins
    assert study.gan_against_diffusion(probe, results, 0.15)["rule_favours"] == "the GAN"
    gan.update(called_pos_neg=0.61)
    probe["judged"] = [gan]
    assert study.gan_against_diffusion(probe, results, 0.5)["real_vs_bar"] == "meets"
    results["sampling"]["chosen"] = {"diffusion_steps": 20, "guidance": 2.0}
    with pytest.raises(ValueError, match="no row for its chosen setting"):
        study.chosen_sampling_row(results)


def test_the_yardstick_sentence_says_when_this_runs_classifier_reads_real_tissue_otherwise():
    last = {"real_called_pos_neg": 0.45, "real_called_pos_pos": 0.96}
    probe = {"judged": [last], "machine": "Intel Xeon"}
    alike = study.yardstick_sentence(probe, 0.43, 0.95)
    assert "about as that one did" in alike and "43%" in alike
    # 0.05 apart is about the same, float noise or not (0.96 - 1.01 = 0.0500000000000004)
    assert "about as" in study.yardstick_sentence(probe, 0.40, 1.01)
    assert "differently" in study.yardstick_sentence(probe, 0.45, 0.90)  # one class differs
    other = study.yardstick_sentence(probe, 0.11, 0.73)
    assert "differently" in other and "11%" in other and "45%" in other
    assert "Intel Xeon" in other and "same classifier" in other


def test_the_sampler_setting_is_chosen_by_the_same_rule():
    rows = [
        judged(50, 60, called_neg=0.3, diffusion_steps=8, guidance=0.0),
        judged(90, 120, diffusion_steps=8, guidance=2.0),
        judged(80, 100, diffusion_steps=20, guidance=1.0),
    ]
    assert study.choose_sampling(rows) == {"diffusion_steps": 20, "guidance": 1.0}
    for r in rows:
        r["meets_bars"] = study.bars_met(r) == 4
    table = study.sampling_table(
        {"sampling": {"rows": rows, "chosen": study.choose_sampling(rows)}}
    )
    assert table["chosen"].sum() == 1 and table.loc[(20, 1.0), "chosen"]
    # the chapter's budget caps the steps: the best affordable setting wins
    assert study.choose_sampling(rows, max_steps=12) == {"diffusion_steps": 8, "guidance": 2.0}
    capped = {"rows": rows, "chosen": study.choose_sampling(rows, 12), "max_steps": 12}
    table = study.sampling_table({"sampling": capped})
    assert table.loc[(8, 2.0), "chosen"] and not table.loc[(20, 1.0), "within budget"]
    with pytest.raises(ValueError, match="at most 4 steps"):
        study.choose_sampling(rows, max_steps=4)


def test_variants_change_only_what_they_say():
    base = diffusion.GenConfig(prediction="eps", seed=7)
    v = study.variant_config(base, "v_wide")
    assert v.prediction == "v" and v.widths == (64, 128, 192) and v.seed == 7
    assert v.image_size == base.image_size and v.batch_size == base.batch_size
    with pytest.raises(ValueError, match="unknown generator variant"):
        study.variant_config(base, "bigger")


def test_a_variant_that_anneals_later_starts_from_its_sources_checkpoint(tmp_path):
    import json
    import shutil

    base = diffusion.GenConfig(image_size=16, widths=(16, 32), seed=2)
    source = study.variant_config(base, study.STARTS_FROM["v_fold_anneal"])
    annealed = study.variant_config(base, "v_fold_anneal")
    assert annealed.anneal_steps > 0 and annealed.anneal_from > 0
    folder = tmp_path / "v_fold"
    folder.mkdir()
    state = {"config": source.to_dict(), "steps": annealed.anneal_from}
    (folder / "generator.json").write_text(json.dumps(state))
    (folder / "ema.weights.h5").write_bytes(b"weights")
    judged = {"v_fold": [{"step": 1000}, {"step": annealed.anneal_from}, {"step": 10**6}]}
    rows = study.start_from_source("v_fold_anneal", annealed, tmp_path, judged)
    assert [r["step"] for r in rows] == [1000, annealed.anneal_from]  # the same weights
    assert (tmp_path / "v_fold_anneal" / "ema.weights.h5").read_bytes() == b"weights"
    # once it has its own checkpoint, nothing is copied again
    assert study.start_from_source("v_fold_anneal", annealed, tmp_path, judged) == []
    # a source past the step where annealing begins trained otherwise: start from nothing
    state["steps"] = annealed.anneal_from + 1
    (folder / "generator.json").write_text(json.dumps(state))
    shutil.rmtree(tmp_path / "v_fold_anneal")
    assert study.start_from_source("v_fold_anneal", annealed, tmp_path, judged) == []
    assert not (tmp_path / "v_fold_anneal").exists()
    assert study.start_from_source("v_fold", source, tmp_path, judged) == []  # no source


def test_a_continued_variant_says_what_its_own_steps_changed():
    base = diffusion.GenConfig()
    cfg = study.variant_config(base, "v_fold_anneal")
    start = cfg.anneal_from
    rows = [judged(700, 400, step=start - 1000), judged(720, 410, step=start)]
    rows.append(judged(590, 420, step=start + 6000))
    results = {
        "chosen": "v_fold_anneal",
        "bars": {"kid_x1000_max": 150.0},
        "variants": {"v_fold_anneal": {"config": cfg.to_dict(), "judged": rows}},
    }
    text = study.continuation_sentence(results)
    assert "720 (IDC−) and 410 (IDC+) to 590 (IDC−) and 420 (IDC+)" in text
    assert f"step {start + 6000:,}" in text and "`v_fold`" in text
    assert "lowered the worse class's KID, which is still above the bar of 150" in text
    results["variants"]["v_fold_anneal"]["judged"] = rows[:2]  # not judged past the start
    assert study.continuation_sentence(results) == ""
    results = {"chosen": "v", "variants": {"v": {"config": base.to_dict(), "judged": rows}}}
    assert study.continuation_sentence(results) == ""


def test_the_schedule_is_told_as_the_configuration_sets_it():
    from dataclasses import replace

    plain = diffusion.GenConfig(lr=1e-3, ema=0.99)
    assert "stays at 0.001" in study.schedule_sentence(plain, 100)
    annealed = replace(plain, anneal_from=12000, anneal_steps=6000, anneal_ema=0.999)
    text = study.schedule_sentence(annealed, 18000)
    assert "first 12,000 steps" in text and "next 6,000 steps it falls to 0" in text
    assert "about 1,000 steps instead of 100" in text
    # a run that stops before annealing ends, or before it begins, is told as it ran
    short = study.schedule_sentence(annealed, 15000)
    assert "falls to 0" not in short and "0.0005 at the last of these 15,000" in short
    assert "stays at 0.001" in study.schedule_sentence(annealed, 12000)


def test_the_training_curve_marks_the_kept_step_and_where_annealing_begins():
    from idc_utils.chapters import synthetic_figures

    history = pd.DataFrame({"step": [25, 50, 75], "loss": [0.3, 0.2, 0.1]})
    fig = synthetic_figures.plot_generator_history(history, best_step=75, anneal_from=50)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "kept: step 75" in labels and "annealing from step 50" in labels
    plain = synthetic_figures.plot_generator_history(history, best_step=75)
    assert not any("annealing" in x for x in plain.axes[0].get_legend_handles_labels()[1])


def test_the_sampling_trace_figure_has_a_row_per_class_and_reading_even_for_one_step():
    from idc_utils.chapters import synthetic_figures

    patch = np.zeros((8, 8, 3), np.uint8)
    for steps in (1, 3):
        traces = {c: [(1.0 - k / steps, patch, patch) for k in range(steps)] for c in (0, 1)}
        fig = synthetic_figures.plot_sampling_trace(traces)
        assert len(fig.axes) == 4 * steps
        assert sum(ax.get_ylabel() != "" for ax in fig.axes) == 4


def test_a_stored_grid_names_each_class_row_in_order():
    from idc_utils.chapters import synthetic_figures

    grid = np.zeros((40, 200, 3), np.uint8)
    fig = synthetic_figures.stored_grid(grid, [0, 1])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["IDC-", "IDC+"]
    assert list(ax.get_yticks()) == [10.0, 30.0]
    one = synthetic_figures.stored_grid(grid[:20], [1]).axes[0]
    assert [t.get_text() for t in one.get_yticklabels()] == ["IDC+"]


def test_the_real_and_synthetic_grid_adds_a_named_pair_of_rows_per_other_generator():
    from idc_utils.chapters import synthetic_figures

    patches = {c: np.zeros((3, 8, 8, 3), np.uint8) for c in (0, 1)}
    fig = synthetic_figures.real_vs_synthetic_grid(
        patches, patches, per_row=3, others={"diffusion": patches}, name="gan"
    )
    names = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert names == [
        "real IDC-", "real IDC+", "gan IDC-", "gan IDC+",
        "diffusion IDC-", "diffusion IDC+",
    ]  # fmt: skip
    assert len(fig.axes) == 6 * 3
    plain = synthetic_figures.real_vs_synthetic_grid(patches, patches, per_row=3)
    assert len(plain.axes) == 4 * 3
    with pytest.raises(ValueError, match="its own name"):
        synthetic_figures.real_vs_synthetic_grid(patches, patches, others={"synthetic": patches})


def test_the_gan_record_plots_both_losses_and_each_classs_kid_against_the_bar():
    from idc_utils.chapters import synthetic_figures

    history = pd.DataFrame(
        {"step": [25, 50, 75], "loss_critic": [2.0, 1.9, 1.8], "loss_generator": [0.1, 0.2, 0.3]}
    )
    judged = [
        {"step": 50, "kid_neg_x1000": 400.0, "kid_pos_x1000": 300.0},
        {"step": 75, "kid_neg_x1000": 250.0, "kid_pos_x1000": 200.0},
    ]
    fig = synthetic_figures.plot_gan_record(history, judged, 150.0, anneal_from=50)
    loss_ax, kid_ax = fig.axes
    lines = {line.get_label(): line for line in kid_ax.get_lines()}
    assert list(lines["IDC-"].get_ydata()) == [400.0, 250.0]
    assert list(lines["IDC+"].get_xdata()) == [50, 75]
    assert list(lines["bar (150)"].get_ydata()) == [150.0, 150.0]
    assert "annealing begins" in lines
    labels = [line.get_label() for line in loss_ax.get_lines()]
    assert labels[:2] == ["critic (mean of 200 steps)", "generator (mean of 200 steps)"]
    # annealing from the first step is still marked; no annealing, no line
    at_start = synthetic_figures.plot_gan_record(history, judged, 150.0, anneal_from=0)
    assert "annealing begins" in [x.get_label() for x in at_start.axes[1].get_lines()]
    plain = synthetic_figures.plot_gan_record(history, judged, 150.0)
    assert "annealing begins" not in [x.get_label() for x in plain.axes[1].get_lines()]
    assert "warm restart" not in [x.get_label() for x in plain.axes[1].get_lines()]
    again = synthetic_figures.plot_gan_record(history, judged, 150.0, 25, restarts=[60, 70])
    marked = [x for x in again.axes[1].get_lines() if x.get_linestyle() == "-."]
    assert [list(x.get_xdata()) for x in marked] == [[60, 60], [70, 70]]
    legend = [t.get_text() for t in again.axes[1].get_legend().get_texts()]
    assert legend.count("warm restart") == 1


def two_classes(n=32):
    images = np.concatenate([patches_of(PINK, n // 2, 3, 50), patches_of(PURPLE, n // 2, 4, 50)])
    rows = pd.DataFrame(
        {
            "i": np.arange(n),
            "label": np.r_[np.zeros(n // 2, int), np.ones(n // 2, int)],
            "path": [f"p{k % 4}/x{k}.png" for k in range(n)],
            "split": "train",
        }
    )
    return images, rows


def test_the_chapter_uses_a_published_generator_that_fits_and_trains_one_that_does_not(tmp_path):
    images, rows = two_classes()
    cfg = diffusion.GenConfig(image_size=16, widths=(16, 32), batch_size=8, seed=1)
    quiet = lambda *_: None
    generator.train_generator(images, rows, cfg, tmp_path / "made", steps=3, log=quiet)
    generator.commit_checkpoint(tmp_path / "made", rows, tmp_path / "pub", command="x")
    gen, source = study.committed_or_trained(
        images, rows, cfg, tmp_path / "run", steps=3, committed=tmp_path / "pub", log=quiet
    )
    assert "published" in source and gen.steps == 3
    assert not (tmp_path / "run").exists()  # nothing was trained
    logs = []
    gen, source = study.committed_or_trained(
        images, rows, cfg, tmp_path / "run", steps=4, committed=tmp_path / "pub", log=logs.append
    )
    assert source == "trained in this run" and gen.steps == 4
    assert any("not using the published generator" in m and "steps 3 != 4" in m for m in logs)


def test_the_chapter_trains_its_generator_apart_so_its_memory_goes_back(tmp_path, monkeypatch):
    """The chapter's training goes through generator_process.train_apart (a child process for
    the dataset's memory map): on the Kaggle set, training in the kernel left 9 GB held."""
    from idc_utils.training import generator_process

    images, rows = two_classes()
    cfg = diffusion.GenConfig(image_size=16, widths=(16, 32), batch_size=8, seed=1)
    calls = []
    monkeypatch.setattr(
        generator_process, "train_apart", lambda *a, **k: calls.append((a, k)) or "apart"
    )
    gen, source = study.committed_or_trained(
        images, rows, cfg, tmp_path / "run", steps=3, committed=None, log=lambda *_: None
    )
    assert gen == "apart" and source == "trained in this run"
    ((args, kwargs),) = calls
    assert args[0] is images and args[2] == cfg and kwargs["steps"] == 3


def test_the_sample_profile_loads_the_generator_the_study_chose_and_published():
    """The sample book loads book/data/generator: it must be committed, be the variant the stored
    study chose, and have the sample profile's settings, or every fresh clone would train its
    own for an hour (committed_or_trained falls back, saying why)."""
    import json

    from idc_utils.chapters import profiles
    from idc_utils.core.paths import project_root

    root = project_root()
    p = profiles.profile_params("sample")
    folder = root / p["gen_checkpoint"]
    state = json.loads((folder / "generator.json").read_text())
    results = json.loads((root / "book" / "data" / "generator_study.json").read_text())
    assert state["config"] == results["variants"][results["chosen"]]["config"]
    # every setting as the chapter builds it from the profile (mixed precision: off on a CPU)
    cfg = diffusion.GenConfig.from_dict(state["config"])
    assert cfg == diffusion.config_from_params({**p, "gen_mixed_precision": cfg.mixed_precision})
    assert state["steps"] == p["gen_train_steps"]
    # the sampler the chapter uses is the one the study chose, on these weights
    assert results["sampling"]["variant"] == results["chosen"]
    assert results["sampling"]["step"] == state["sampling_weights_step"]
    assert results["sampling"]["chosen"] == {
        "diffusion_steps": p["gen_diffusion_steps"],
        "guidance": p["gen_guidance"],
    }
    assert {r["size"] for r in results["blurred_tissue"]} == {24, 16, 12}  # the chapter quotes 16
    # the chosen variant's curve was judged with one sampler throughout (rows say which)
    for row in results["variants"][results["chosen"]]["judged"]:
        sampler = {k: row[k] for k in study.JUDGING_SAMPLER}
        assert sampler == study.JUDGING_SAMPLER, row["step"]
    rows, cap = results["sampling"]["rows"], results["sampling"]["max_steps"]
    assert results["sampling"]["chosen"] == study.choose_sampling(rows, cap)
    assert "tools/generator_study.py" in state["command"]
    assert state["command"] == results["variants"][results["chosen"]]["command"]
    assert state["training_patches_digest"] == results["training_patches_digest"]
    assert_committed(folder, 2)


def test_the_chapter_judges_the_generator_its_parameter_names(tmp_path):
    from idc_utils.training import adversarial

    images, rows = two_classes()
    quiet = lambda *_: None
    args = (images, rows)
    same = study.judged_generator("diffusion", "diff", "loaded", *args, gan_params(), tmp_path)
    assert same == ("diff", "loaded", "the diffusion generator")
    with pytest.raises(ValueError, match="gen_judged must be one of"):
        study.judged_generator("vae", "diff", "loaded", *args, gan_params(), tmp_path)
    # no published GAN: one is trained in the run, for the profile's steps
    gan, source, name = study.judged_generator(
        "gan", "diff", "loaded", *args, gan_params(), tmp_path / "run", log=quiet
    )
    assert (source, name, gan.steps) == ("trained in this run", "the GAN", 2)
    assert gan.cfg == adversarial.config_from_params(gan_params())
    # published, and fitting: loaded, nothing trained; not fitting: trained, saying why
    adversarial.commit_gan(tmp_path / "run", rows, tmp_path / "pub", command="x")
    fits = gan_params(gan_checkpoint=tmp_path / "pub")
    gan, source, _ = study.judged_generator(
        "gan", "diff", "loaded", *args, fits, tmp_path / "other", log=quiet
    )
    assert "published" in source and gan.steps == 2 and not (tmp_path / "other").exists()
    np.testing.assert_array_equal(gan.sample(3, 0, 1), gan.sample(3, 0, 1))
    logs = []
    longer = {**fits, "gan_train_steps": 3}
    gan, source, _ = study.judged_generator(
        "gan", "diff", "loaded", *args, longer, tmp_path / "other", log=logs.append
    )
    assert source == "trained in this run" and gan.steps == 3
    assert any("not using the published GAN" in m and "steps 2 != 3" in m for m in logs)

    # the chapter's parameters (an object with as_dict) serve as a dict does
    class Params:
        def as_dict(self):
            return fits

    _, source, _ = study.judged_generator(
        "gan", "diff", "loaded", *args, Params(), tmp_path / "third", log=quiet
    )
    assert "published" in source
    # a damaged weight file: trained instead, saying why, not a crash
    (tmp_path / "pub" / "ema.weights.h5").write_bytes(b"version https://git-lfs")
    logs = []
    _, source, _ = study.judged_generator(
        "gan", "diff", "loaded", *args, fits, tmp_path / "fourth", log=logs.append
    )
    assert source == "trained in this run"
    assert any("not using the published GAN" in m for m in logs)


def test_the_sample_profile_loads_the_gan_it_judges_as_published_and_probed():
    """The sample book judges the GAN of book/data/gan: it must be committed, fit the profile's
    gan_* parameters and split, and be the run whose judgements book/data/gan_probe.json holds,
    or every fresh clone would train its own for hours."""
    import json

    from idc_utils.chapters import profiles
    from idc_utils.core.paths import project_root
    from idc_utils.training import adversarial

    root = project_root()
    p = profiles.profile_params("sample")
    assert p["gen_judged"] == "gan"
    folder = root / p["gan_checkpoint"]
    state = json.loads((folder / "gan.json").read_text())
    assert adversarial.GanConfig.from_dict(state["config"]) == adversarial.config_from_params(p)
    assert state["steps"] == p["gan_train_steps"]
    results = json.loads((root / "book" / "data" / "generator_study.json").read_text())
    assert state["training_patches_digest"] == results["training_patches_digest"]
    probe = json.loads((root / "book" / "data" / "gan_probe.json").read_text())
    assert probe["settings"]["config"] == state["config"]
    # the record of judgements the chapter shows is this GAN's own: same steps, losses, time
    last = probe["judged"][-1]
    assert last["step"] == state["steps"]
    assert last["loss_critic"] == state["history"][-1]["loss_critic"]
    assert last["train_seconds"] == round(state["seconds"], 1)
    assert "tools/gan_probe.py" in state["command"] and "--publish" in state["command"]
    # the profile judges the generator the study's rule favours on these records
    words = study.gan_against_diffusion(probe, results, study.CALLED_NEG_MAX)
    assert words["rule_favours"] == study.JUDGED_NAMES[p["gen_judged"]]
    # its weights load and sample (not a pointer file or a damaged copy)
    gan = adversarial.load_gan(folder)
    x = gan.sample(2, 1, seed=0)
    assert x.shape == (2, p["gen_image_size"], p["gen_image_size"], 3) and x.std() > 5
    # and this machine draws the patches the publishing machine drew, up to float noise
    drift = adversarial.drift_from_reference(folder)
    assert adversarial.reference_agrees(drift), drift
    assert_committed(folder, 3)


def test_gan_probe_refuses_to_publish_a_gan_the_chapter_would_not_load(tmp_path):
    """--publish checks the settings against the sample profile's gan_* parameters before it
    trains anything: a GAN of one class, other widths or steps would be refused by the chapter."""
    import subprocess
    import sys

    from idc_utils.core.paths import project_root

    tool = project_root() / "tools" / "gan_probe.py"
    for extra in (
        ["--label", "0"],
        ["--steps", "100"],
        ["--gen-widths", "64,32,16"],
        ["--restart-steps", "12000", "--steps", "24000"],  # one restart where the profile has two
        ["--restart-lr", "1e-4,5e-5"],
        [],  # the profile's own settings pass the check, and fail later, for want of a run
    ):
        run = subprocess.run(
            [sys.executable, str(tool), "--publish", str(tmp_path / "pub"), *extra],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,  # (no runs/sample here)
        )
        refused = "would not load this GAN" in run.stderr
        assert run.returncode != 0 and refused == bool(extra), (extra, run.stderr[-300:])
    assert not (tmp_path / "pub").exists()
    # --check draws the published GAN's reference patches again, and needs nothing else; patches
    # that differ by more than float noise fail it
    import shutil

    import numpy as np

    moved = tmp_path / "moved"
    shutil.copytree(project_root() / "book" / "data" / "gan", moved)
    with np.load(moved / "reference_patches.npz") as saved:
        tampered = {"patches": saved["patches"] ^ 8, "machine": saved["machine"]}
    np.savez_compressed(moved / "reference_patches.npz", **tampered)
    for folder, rc, said in (
        (project_root() / "book" / "data" / "gan", 0, "The same patches"),
        (moved, 1, "NOT the same patches"),
        (tmp_path, 1, "reference_patches.npz is missing"),
        (tmp_path / "typo", 1, "is not a folder"),
    ):
        run = subprocess.run(
            [sys.executable, str(tool), "--check", str(folder)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == rc and said in run.stdout + run.stderr, run.stderr[-500:]
    # settings whose learning rates reach 0 before the last step, or a restart the annealing
    # does not allow, are refused before anything trains
    for extra, said in (
        (["--anneal-from", "30", "--anneal-steps", "30", "--restart-steps", "0"], "are 0"),
        (["--anneal-from", "10000"], "--restart-steps 0 for none"),
        (["--restart-steps", "12000,x"], "give step counts, e.g. 12000,1500"),
        (["--restart-lr", "1e-4,fast"], "give rates, e.g. 1e-4,5e-5"),
        (["--restart-steps", "12000,1500", "--restart-lr", "1,2,3"], "gives 3 rates for 2"),
    ):
        run = subprocess.run(
            [sys.executable, str(tool), "--steps", "80", *extra, "--run", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode != 0 and said in run.stderr, (extra, run.stderr[-500:])
