"""What a chapter ran on: the CPU model, the GPUs, the peak memory of its kernel, and the
reference figures a timing is compared by."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from pathlib import Path

from idc_utils.core.host import cpu_model


class PeakMemory:
    """Samples the resident memory of this process's children (the chapter's kernel) in a
    thread; ``peak_mb`` is the largest total seen."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def __enter__(self):
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        try:
            import psutil
        except ImportError:  # pragma: no cover - psutil comes with the book extra
            return
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):  # a child may end while we look
                    total += child.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2**20, 1)


def gpu_names() -> list[str]:
    """The NVIDIA GPUs of this machine (``nvidia-smi``), or an empty list."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def machine_description() -> str:
    gpus = gpu_names()
    where = f"{cpu_model()}, {os.cpu_count()} cores"
    return where + (f"; {', '.join(gpus)}" if gpus else "; no GPU")


def cpu_reference(script: str | Path | None = None) -> dict | None:
    """The two reference figures of ``../shared/cpu_ref.py`` (beside the project; ``script``
    names another), ``{"matmul_gflops", "python_msteps"}``, measured now; ``None`` where the
    machine has no such script. Timings are compared across machines as ratios to them."""
    import json
    import sys

    ref = Path(script) if script else Path(__file__).resolve().parents[3] / "shared" / "cpu_ref.py"
    if not ref.exists():
        return None
    out = subprocess.run([sys.executable, str(ref)], capture_output=True, text=True)
    try:
        return json.loads(out.stdout)
    except ValueError:
        return None
