"""In a Jupyter kernel, TensorFlow's C++ start-up lines stay out of the chapter, and a chapter
that never needs TensorFlow never loads it."""

from __future__ import annotations

import os
import subprocess
import sys

CODE = """
import sys, types
sys.modules["ipykernel"] = types.ModuleType("ipykernel")  # as in a Jupyter kernel
import idc_utils.chapters.params
print("loaded with the package:", "tensorflow" in sys.modules)
import tensorflow
from idc_utils.core import quiet_import
print("kept lines:", len(quiet_import.STARTUP_LINES))
"""


def test_tensorflow_loads_lazily_and_quietly_in_a_kernel():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-c", CODE], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "loaded with the package: False" in done.stdout
    assert "oneDNN" not in done.stderr and "absl" not in done.stderr, done.stderr
    assert "kept lines:" in done.stdout
