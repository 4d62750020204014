"""Shared fixtures: a tiny generator and a run directory with one export of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gan.config import CIFAR10_CLASSES, PRESETS


@pytest.fixture(scope="session")
def tiny_generator():
    """An untrained generator of the `tiny` preset whose class changes the image (about 0.5 s to build).

    A new generator starts with the same conditional batch norm scale (1) and
    shift (0) for every class, so the class would not change its output.
    Here those per-class tables get seeded random values.
    """
    from gan.models import build_generator

    config = PRESETS["tiny"]
    generator = build_generator(config)
    rng = np.random.default_rng(0)
    for weight in generator.weights:
        name = weight.path.rsplit("/", 1)[-1]
        if len(weight.shape) == 2 and weight.shape[0] == config.num_classes and name in ("gamma", "beta"):
            offset = 1.0 if name == "gamma" else 0.0
            weight.assign(offset + 0.5 * rng.standard_normal(tuple(weight.shape)).astype(np.float32))
    return generator


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory, tiny_generator) -> Path:
    """A run directory whose `exports/latest.json` names one export of `tiny_generator` (step 100, 6.4 kimg).

    Shared by all tests, so tests must not change it.
    """
    from gan.exports import write_export

    run_dir = tmp_path_factory.mktemp("tiny-run")
    write_export(tiny_generator, PRESETS["tiny"], CIFAR10_CLASSES, run_dir / "exports", step=100, kimg=6.4, dataset="test")
    return run_dir
