"""Small CIFAR-10 archives and folders in the official python layout, written by tests."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from gan.config import CIFAR10_CLASSES


def make_batch(rng: np.random.Generator, count: int, num_classes: int = 10) -> dict:
    """A batch dict as the official pickles hold it: bytes keys, channel-first rows."""
    labels = [int(i % num_classes) for i in range(count)]
    # Give each class its own mean color so models and tests can tell classes apart.
    data = rng.integers(0, 64, size=(count, 3, 32, 32), dtype=np.uint8)
    for row, label in enumerate(labels):
        data[row, label % 3] += np.uint8(20 * label)
    return {
        b"batch_label": b"testing batch",
        b"labels": labels,
        b"data": data.reshape(count, 3072),
        b"filenames": [f"image_{i}.png".encode() for i in range(count)],
    }


def batch_files(per_batch: int = 20, seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    files = {f"data_batch_{i}": pickle.dumps(make_batch(rng, per_batch)) for i in range(1, 6)}
    files["test_batch"] = pickle.dumps(make_batch(rng, per_batch))
    files["batches.meta"] = pickle.dumps({b"label_names": [n.encode() for n in CIFAR10_CLASSES], b"num_vis": 3072})
    return files


def write_archive(path: Path, files: dict[str, bytes] | None = None) -> Path:
    """Write a cifar-10-python.tar.gz with `files` under cifar-10-batches-py/."""
    files = batch_files() if files is None else files
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def write_folder(root: Path, files: dict[str, bytes] | None = None) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, data in (batch_files() if files is None else files).items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture(scope="session")
def small_archive(tmp_path_factory) -> Path:
    """A cifar-10-python.tar.gz with 100 training and 20 test images."""
    return write_archive(tmp_path_factory.mktemp("cifar") / "cifar-10-python.tar.gz")


@pytest.fixture(scope="session")
def real_cifar_archive() -> Path:
    """The real CIFAR-10 archive from GAN_DATA_DIR, or skip."""
    configured = os.environ.get("GAN_DATA_DIR")
    if not configured:
        pytest.skip("GAN_DATA_DIR is not set; point it at a folder holding cifar-10-python.tar.gz to run real-data tests")
    archive = Path(configured) / "cifar-10-python.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} not found; real-data tests need the CIFAR-10 archive there")
    return archive
