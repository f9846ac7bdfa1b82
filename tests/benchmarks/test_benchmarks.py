"""The benchmark scripts run (tiny settings, on the CPU) and report what they promise."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT, make_kaggle_dataset

pytestmark = pytest.mark.slow


def test_gpu_check_reports_pipeline_forward_training_and_input_wait(tmp_path, capsys, monkeypatch):
    """benchmarks/gpu_check.py, run (in this process) on a CPU with tiny settings."""
    data = make_kaggle_dataset(tmp_path / "data", {str(k): (6, 3) for k in range(1, 9)})
    monkeypatch.setenv("IDC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gpu_check

    args = ["--data", str(data), "--steps", "3", "--warmup", "1", "--image-size", "32"]
    assert gpu_check.main([*args, "--batch", "8", "--forward-seconds", "0.5"]) == 0
    lines = capsys.readouterr().out
    for key in (
        "(a) input pipeline",
        "(b) forward pass alone",
        "(c) training, 3 steps",
        "(d) time waiting",
    ):
        assert key in lines, lines
    assert "efficientnet_lite0 at 32 px, batch 8" in lines and "verdict:" in lines


def test_full_scale_dataset_builder_keeps_labels_layout_and_the_whole_patient(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import full_scale

    from idc_utils.data import scan

    source = make_kaggle_dataset(tmp_path / "src", {"14082": (5, 5), "101": (8, 4), "102": (10, 0)})
    dest = full_scale.build_dataset(
        source, tmp_path / "full", n_patients=6, n_patches=200, log=lambda *_: None
    )
    m = scan.scan(dest).files
    assert len(m) == 200 and m.patient_id.nunique() == 6
    assert len(m[m.patient_id == "14082"]) == 10, "the complete patient is kept whole"
    assert ((m.x - 1) % 50 == 0).all() and ((m.y - 1) % 50 == 0).all()
    assert not m.duplicated(["patient_id", "x", "y"]).any(), "one patch per grid cell"
    sizes = full_scale.patient_sizes(279, 277_524, __import__("numpy").random.default_rng(0))
    assert sizes.sum() == 277_524 and sizes.min() >= 20


def test_full_scale_passes_only_the_caps_the_chapters_that_run_declare():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import full_scale

    assert full_scale.caps_for(None) == full_scale.CAPS
    late = full_scale.caps_for(["10", "11"])  # the generator and DICOMweb chapters alone
    assert late == {"gen_train_steps": 20, "gen_diffusion_steps": 1, "gen_per_class": 1000}
    assert "max_train_steps" in full_scale.caps_for(["05"])
