"""Comparing a repeat with the generator study's record (tools/reproduce_generator.py), and the
reference figures a timing is compared by."""

from __future__ import annotations

import pytest

from idc_utils.book import machine
from idc_utils.studies import reproduction


def test_losses_are_compared_at_the_steps_both_logged():
    recorded = [{"step": 25, "loss": 0.5}, {"step": 50, "loss": 0.4}, {"step": 75, "loss": 0.3}]
    repeated = [{"step": 25, "loss": 0.5}, {"step": 50, "loss": 0.404}]
    table = reproduction.compare_histories(recorded, repeated)
    assert list(table.index) == [25, 50]
    assert table.loc[25, "relative difference"] == 0
    assert table.loc[50, "relative difference"] == pytest.approx(0.004 / 0.404)
    s = reproduction.summary(table)
    assert s["rows"] == 2 and s["identical"] == 1 and s["first_difference_at"] == 50
    assert s["largest_relative_difference"] == pytest.approx(0.004 / 0.404)
    same = reproduction.summary(reproduction.compare_histories(recorded, recorded))
    assert same["first_difference_at"] is None and same["identical"] == 3


def test_a_repeat_that_shares_no_logged_step_says_how_far_to_train():
    with pytest.raises(ValueError, match="first logged step \\(25\\)"):
        reproduction.compare_histories([{"step": 25, "loss": 0.5}], [{"step": 10, "loss": 0.5}])


def test_judgements_are_compared_number_by_number_and_say_what_each_depends_on():
    recorded = {"kid_neg_x1000": 574.0, "kid_pos_x1000": 453.0, "called_pos_neg": 0.03}
    repeated = {"kid_neg_x1000": 575.0, "kid_pos_x1000": 453.0, "called_pos_neg": 0.04}
    table = reproduction.compare_judgements(recorded, repeated)
    assert list(table.index) == ["kid_neg_x1000", "kid_pos_x1000", "called_pos_neg"]
    assert table.loc["kid_neg_x1000", "difference"] == 1.0
    assert table.loc["kid_pos_x1000", "relative difference"] == 0
    assert "EfficientNet" in table.loc["called_pos_neg", "depends on"]
    assert "EfficientNet" not in table.loc["kid_neg_x1000", "depends on"]
    with pytest.raises(ValueError, match="share no number"):
        reproduction.compare_judgements({"kid_neg_x1000": 1.0}, {"step": 2})


def test_blurred_tissue_is_compared_per_class_and_size():
    recorded = [
        {"class": "neg", "size": 24, "kid_x1000": 84.4},
        {"class": "pos", "size": 24, "kid_x1000": 50.0},
    ]
    repeated = [
        {"class": "neg", "size": 24, "kid_x1000": 84.4},
        {"class": "pos", "size": 24, "kid_x1000": 51.0},
    ]
    table = reproduction.compare_blurred_tissue(recorded, repeated)
    assert table.loc[("neg", 24), "relative difference"] == 0
    s = reproduction.summary(table)
    assert s["first_difference_at"] == ["pos", 24] and s["identical"] == 1


def test_the_cpu_reference_is_read_from_the_script_or_missing(tmp_path):
    script = tmp_path / "cpu_ref.py"
    script.write_text('print(\'{"matmul_gflops": 80.5, "python_msteps": 20.0}\')\n')
    assert machine.cpu_reference(script) == {"matmul_gflops": 80.5, "python_msteps": 20.0}
    assert machine.cpu_reference(tmp_path / "none.py") is None
    script.write_text("print('not json')\n")
    assert machine.cpu_reference(script) is None
