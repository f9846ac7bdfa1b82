"""Training the generator in a child process: the same generator as in this process, memory
maps recognised, failures reported with the child's own words."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from test_generator import TINY, two_kinds

from idc_utils.training import generator, generator_process


def as_memmap(images, folder):
    """``images`` saved as ``.npy`` and opened as the dataset's cache opens its patches."""
    path = folder / "images.npy"
    np.save(path, images)
    return np.load(path, mmap_mode="r")


def weights_of(folder):
    return [np.asarray(w) for w in generator.load_generator(folder).network.get_weights()]


def test_a_memory_map_names_its_file_and_anything_else_does_not(tmp_path):
    images, _ = two_kinds(8)
    mapped = as_memmap(images, tmp_path)
    assert generator_process.memmap_file(mapped) == str(tmp_path / "images.npy")
    assert generator_process.memmap_file(images) is None
    # a part of the file is not the file: the child would read other patches
    assert generator_process.memmap_file(mapped[2:]) is None


@pytest.mark.slow
def test_the_child_trains_the_generator_this_process_would(tmp_path):
    images, rows = two_kinds(48)
    train, val = rows.iloc[:40], rows.iloc[40:].assign(split="val")
    mapped = as_memmap(images, tmp_path)
    # a checkpoint of another seed is there: the child starts over, as the chapter asks
    quiet = lambda *_: None
    generator.train_generator(
        images, train, replace(TINY, seed=4), tmp_path / "child", steps=2, log=quiet
    )
    lines = []
    apart = generator_process.train_apart(
        mapped,
        train,
        TINY,
        tmp_path / "child",
        steps=30,
        val_rows=val,
        restart=True,
        log=lines.append,
    )
    here = generator.train_generator(
        images, train, TINY, tmp_path / "here", steps=30, val_rows=val, log=lambda *_: None
    )
    assert apart.steps == here.steps == 30 and apart.best_step == here.best_step
    for a, b in zip(weights_of(tmp_path / "child"), weights_of(tmp_path / "here"), strict=True):
        np.testing.assert_array_equal(a, b)
    # the child's log reaches the caller, and its job file is gone once it succeeded
    assert any("starting over" in line for line in lines), lines
    assert any("30 steps of 30" in line for line in lines), lines
    assert not any("oneDNN" in line or "absl" in line for line in lines), lines
    assert not generator_process.job_path_for(tmp_path / "child").exists()


def test_an_array_in_memory_trains_in_this_process(tmp_path, monkeypatch):
    images, rows = two_kinds(16)
    calls = []
    monkeypatch.setattr(generator, "train_generator", lambda *a, **k: calls.append(k) or "gen")
    got = generator_process.train_apart(images, rows, TINY, tmp_path, steps=3)
    assert got == "gen" and calls and calls[0]["steps"] == 3


@pytest.mark.slow
def test_a_failing_child_says_why_and_where_its_job_is(tmp_path):
    images, rows = two_kinds(16)
    mapped = as_memmap(images, tmp_path)
    # rows of one class only: train_generator refuses them, in the child
    one_class = rows[rows.label == 1]
    with pytest.raises(RuntimeError) as e:
        generator_process.train_apart(
            mapped, one_class, TINY, tmp_path / "gen", steps=3, log=lambda *_: None
        )
    text = str(e.value)
    assert "needs patches of both classes" in text
    assert str(generator_process.job_path_for(tmp_path / "gen")) in text
