"""Training the generator in a process of its own, so that the memory TensorFlow keeps after
training goes back to the system when that process ends.

On the full Kaggle set the training loop leaves about 9 GB held in the process that ran it
(TensorFlow's allocator keeps what it used); the chapter's next steps (sampling, the gain study)
then need more than a 12-GB machine has. A child process trains from the same memory-mapped
patches, writes its checkpoint, and exits; the chapter loads the generator from that checkpoint.
The result is the same generator: the child runs :func:`~idc_utils.training.generator.
train_generator` with the same arguments.

Run as a module, it is that child: ``python -m idc_utils.training.generator_process JOB.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import deque
from pathlib import Path

import numpy as np
import pandas as pd

from idc_utils.training.diffusion import GenConfig, Generator


def job_path_for(out_dir: Path) -> Path:
    """Where the child's job is written: beside the checkpoint folder, not in it (a child that
    starts over deletes the folder)."""
    return out_dir.with_name(out_dir.name + ".job.json")


def memmap_file(images: np.ndarray) -> str | None:
    """The ``.npy`` file ``images`` is memory-mapped from (``np.load(..., mmap_mode="r")``),
    whole, or None for an array in memory or a part of a file."""
    name = getattr(images, "filename", None) if isinstance(images, np.memmap) else None
    if name is None or not str(name).endswith(".npy"):
        return None
    whole = np.load(name, mmap_mode="r")
    if whole.shape != images.shape or whole.dtype != images.dtype:
        return None
    return str(name)


def train_apart(
    images_uint8: np.ndarray,
    rows: pd.DataFrame,
    cfg: GenConfig,
    out_dir: str | Path,
    *,
    steps: int,
    val_rows: pd.DataFrame | None = None,
    restart: bool | None = None,
    log=print,
) -> Generator:
    """:func:`~idc_utils.training.generator.train_generator` run in a child process when
    ``images_uint8`` is memory-mapped from a ``.npy`` file (the dataset's cache), then the
    generator loaded from its checkpoint; in this process otherwise (an array in memory cannot
    be handed over without a copy, and such arrays are small). The child's output is passed on
    to ``log`` line by line; its failure is a ``RuntimeError`` that quotes its last lines."""
    from idc_utils.training import generator

    source = memmap_file(images_uint8)
    if source is None:
        return generator.train_generator(
            images_uint8,
            rows,
            cfg,
            out_dir,
            steps=steps,
            val_rows=val_rows,
            restart=restart,
            log=log,
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    job = {
        "images": source,
        "rows": rows.to_dict("list"),
        "val_rows": None if val_rows is None else val_rows.to_dict("list"),
        "config": cfg.to_dict(),
        "out_dir": str(out_dir),
        "steps": int(steps),
        "restart": restart,
    }
    job_path = job_path_for(out_dir)
    job_path.write_text(json.dumps(job, default=_plain))
    command = [sys.executable, "-m", __name__, str(job_path)]
    tail: deque[str] = deque(maxlen=20)
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as child:
        for line in child.stdout:
            tail.append(line.rstrip("\n"))
            log(line.rstrip("\n"))
    if child.returncode != 0:
        raise RuntimeError(
            f"training the generator in a child process failed (exit code {child.returncode}); "
            f"its job is {job_path}, and it ended with:\n" + "\n".join(tail)
        )
    job_path.unlink()
    return generator.load_generator(out_dir)


def _plain(value):
    """numpy scalars in rows, as JSON numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to the child's job")


def run_job(job_path: str | Path) -> Generator:
    """The child's side: train as the job file says."""
    from idc_utils.training import generator

    job = json.loads(Path(job_path).read_text())
    images = np.load(job["images"], mmap_mode="r")
    val = job["val_rows"]
    return generator.train_generator(
        images,
        pd.DataFrame(job["rows"]),
        GenConfig.from_dict(job["config"]),
        job["out_dir"],
        steps=job["steps"],
        val_rows=None if val is None else pd.DataFrame(val),
        restart=job["restart"],
    )


if __name__ == "__main__":
    from idc_utils.core.quiet_import import quiet_tensorflow_import

    quiet_tensorflow_import()  # no TensorFlow start-up lines in the chapter, as in its kernel
    run_job(sys.argv[1])
