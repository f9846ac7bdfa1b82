"""Progress shown as one growing line per stage."""

from __future__ import annotations

import io

from idc_utils.core import progress


def test_progress_is_one_line_per_stage_in_steps_of_ten_percent():
    out = io.StringIO()
    line = progress.ProgressLine(out=out)
    for f in (0.05, 0.31, 1.0):
        line("read", f)
    for f in (0.5, 1.0):
        line("score", f)
    read, score = out.getvalue().splitlines()
    assert read == "read: " + " ".join(f"{p}%" for p in range(10, 101, 10))
    assert score.startswith("score: 10%") and score.endswith("100%")
