"""The machine a result was made on, as the records name it: the processor's model and the
TensorFlow setting that changes its floating-point code (two builds that differ in either train
slightly different models from the same seed)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

#: the environment variable that turns TensorFlow's oneDNN kernels off ("0") on a CPU
ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def cpu_model() -> str:
    """The processor's name, e.g. 'AMD EPYC 7763 64-Core Processor'."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def float_path() -> dict:
    """What decides this process's floating-point arithmetic, beside the library versions: the
    processor and the oneDNN setting as the environment gives it ("unset": TensorFlow's
    default)."""
    return {"processor": cpu_model(), ONEDNN_VARIABLE: os.environ.get(ONEDNN_VARIABLE, "unset")}


def describe_float_path(facts: dict | None) -> str:
    """One line for a record of :func:`float_path` (and a TensorFlow version, if it has one)."""
    if not facts:
        return "not recorded"
    parts = [facts.get("processor", "processor not recorded")]
    if "tensorflow" in facts:
        parts.append(f"TensorFlow {facts['tensorflow']}")
    parts.append(f"{ONEDNN_VARIABLE} {facts.get(ONEDNN_VARIABLE, 'not recorded')}")
    return ", ".join(parts)
