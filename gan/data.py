"""Training data: CIFAR-10 in its official python layout, or a folder of images.

Sources, chosen by `load_dataset(spec)`:

- nothing: the official archive in the cache directory (`GAN_DATA_DIR`, default
  `~/.cache/cifar-gan-bot`), downloaded there and checked against its published
  md5 when it is missing;
- `cifar-10-python.tar.gz` (or any tar archive in that layout);
- an extracted `cifar-10-batches-py/` folder, or a folder that contains one;
- a folder with one sub-folder of images per class (any size, any format
  Pillow reads), center-cropped and resized to 32x32.

Every problem with the input raises `DataError` naming the file and what to do.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import tarfile
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gan.config import CIFAR10_CLASSES, IMAGE_SIZE

log = logging.getLogger(__name__)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
MAX_MEMBER_BYTES = 256 * 1024 * 1024  # an official batch is about 31 MB; larger members are rejected unread
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class DataError(Exception):
    """The training data is missing, corrupt or in the wrong format."""


@dataclass
class Dataset:
    """Images in memory with their labels."""

    images: np.ndarray  # uint8, (N, 32, 32, 3), RGB
    labels: np.ndarray  # int32, (N,)
    class_names: tuple[str, ...]
    source: str  # where the images came from, for logs and the manifest

    def __len__(self) -> int:
        return int(self.images.shape[0])


def default_data_dir() -> Path:
    """Return the cache directory from `GAN_DATA_DIR`, or a per-user default."""
    configured = os.environ.get("GAN_DATA_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "cifar-gan-bot"


def load_dataset(spec: str | os.PathLike | None = None, split: str = "train") -> Dataset:
    """Load the training (`split="train"`) or test split from any supported source."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if spec is None:
        return load_cifar10(ensure_cifar10_archive(default_data_dir()), split)

    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(f"Data path not found: {path}. Pass a {CIFAR10_ARCHIVE}, a {CIFAR10_FOLDER}/ folder or a folder of class sub-folders.")
    if path.is_file():
        return load_cifar10(path, split)
    if (path / CIFAR10_ARCHIVE).is_file():
        return load_cifar10(path / CIFAR10_ARCHIVE, split)
    if (path / META_FILE).is_file() or (path / CIFAR10_FOLDER).is_dir():
        return load_cifar10(path, split)
    if split == "test":
        raise DataError(f"{path} is an image folder, which has no test split.")
    return load_image_folder(path)


# CIFAR-10 python layout.


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild NumPy arrays and nothing else.

    A pickle names the callables it runs while loading; limiting them to the
    ones NumPy uses for arrays keeps a hostile archive from running code.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"forbidden global {module}.{name}")


def _unpickle(raw: bytes, name: str) -> dict:
    try:
        value = _RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except pickle.UnpicklingError as error:
        raise DataError(f"{name}: corrupt, or not a CIFAR-10 batch ({error}).") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as error:
        raise DataError(f"{name}: corrupt or truncated pickle ({type(error).__name__}: {error}).") from None
    if not isinstance(value, dict):
        raise DataError(f"{name}: expected a pickled dict, found {type(value).__name__}.")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in value.items()}


def _read_members(path: Path, wanted: list[str]) -> dict[str, bytes]:
    """Read the named files (by base name) from an archive or folder."""
    found: dict[str, bytes] = {}
    if path.is_dir():
        folder = path / CIFAR10_FOLDER if (path / CIFAR10_FOLDER).is_dir() else path
        for name in wanted:
            file = folder / name
            if not file.is_file():
                raise DataError(f"{file} not found. A CIFAR-10 folder contains {', '.join(wanted)}.")
            found[name] = file.read_bytes()
        return found

    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                base = member.name.rsplit("/", 1)[-1]
                if base in wanted and member.isfile():
                    if member.size > MAX_MEMBER_BYTES:
                        raise DataError(f"{path}: {member.name} declares {member.size} bytes, more than a CIFAR-10 batch can hold ({MAX_MEMBER_BYTES}). The archive is corrupt or not CIFAR-10.")
                    handle = archive.extractfile(member)
                    found[base] = handle.read() if handle else b""
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise DataError(
            f"{path}: cannot read the archive ({error}). It is corrupt or truncated, or not a tar.gz; "
            f"download it again or pass the extracted {CIFAR10_FOLDER}/ folder."
        ) from None
    missing = [name for name in wanted if name not in found]
    if missing:
        raise DataError(f"{path}: the archive lacks {', '.join(missing)}. Is it the CIFAR-10 python version?")
    return found


def _parse_batch(raw: bytes, name: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(raw, name)
    if "data" not in batch or "labels" not in batch:
        raise DataError(f"{name}: missing 'data' or 'labels' (keys found: {sorted(map(str, batch))}).")
    data, labels = batch["data"], batch["labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * IMAGE_SIZE * IMAGE_SIZE:
        shape = getattr(data, "shape", None)
        dtype = getattr(data, "dtype", type(data).__name__)
        raise DataError(f"{name}: 'data' must be a uint8 array of shape (N, 3072), found {dtype} {shape}.")
    try:
        raw_labels = np.asarray(labels)
        if raw_labels.size and raw_labels.dtype.kind not in "iu":
            raise TypeError(raw_labels.dtype)
        labels = raw_labels.astype(np.int64)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{name}: 'labels' is not a list of integers.") from None
    if labels.shape != (data.shape[0],):
        raise DataError(f"{name}: {data.shape[0]} images but {labels.size} labels.")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{name}: labels must lie in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}.")
    # Rows are channel-first planes (1024 red, 1024 green, 1024 blue).
    images = data.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int32)


def load_cifar10(path: str | os.PathLike, split: str = "train") -> Dataset:
    """Load and validate CIFAR-10 from a python-layout archive or folder."""
    path = Path(path)
    batches = list(TRAIN_BATCHES) if split == "train" else [TEST_BATCH]
    members = _read_members(path, [META_FILE, *batches])

    meta = _unpickle(members[META_FILE], META_FILE)
    names = meta.get("label_names")
    if not isinstance(names, list) or not names:
        raise DataError(f"{META_FILE}: 'label_names' must be a non-empty list.")
    try:
        class_names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    except UnicodeDecodeError:
        raise DataError(f"{META_FILE}: 'label_names' are not UTF-8 text.") from None
    if len(set(class_names)) != len(class_names):
        raise DataError(f"{META_FILE}: 'label_names' repeats a name: {list(class_names)}.")

    parts = [_parse_batch(members[name], name, len(class_names)) for name in batches]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if len(labels) == 0:
        raise DataError(f"{path}: the {split} batches contain no images.")
    if path.is_file():
        _note_checksum(path)
    log.info("Loaded %d %s images in %d classes from %s", len(labels), split, len(class_names), path)
    return Dataset(images, labels, class_names, str(path))


def _note_checksum(path: Path) -> None:
    if path.name != CIFAR10_ARCHIVE:
        return
    if md5_of(path) != CIFAR10_MD5:
        log.info("Notice: %s does not match the official CIFAR-10 md5; its structure is valid, so it is used.", path)


def md5_of(path: Path) -> str:
    return file_digest(path, "md5")


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hash a file in 1 MiB chunks and return the hex digest."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_cifar10_archive(cache_dir: Path, url: str = CIFAR10_URL, md5: str = CIFAR10_MD5) -> Path:
    """Return the archive in `cache_dir`, downloading and verifying it if it is missing.

    The download goes to a temporary file in the same directory and is renamed
    into place only after its md5 matched, so an interrupted or corrupt
    download never leaves a partial archive behind.
    """
    target = cache_dir / CIFAR10_ARCHIVE
    if target.is_file():
        return target
    by_hand = f"Or download {url} yourself and place it at {target}, or pass --data PATH."
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"Cannot create the data cache {cache_dir}: {error}. Set GAN_DATA_DIR to a writable directory.") from None

    log.info("Downloading CIFAR-10 from %s to %s", url, target)
    handle, temporary = tempfile.mkstemp(prefix=".download-", dir=cache_dir)
    try:
        digest = hashlib.md5()
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != md5:
            raise DataError(f"The download from {url} has md5 {digest.hexdigest()}, expected {md5}. Try again. {by_hand}")
        os.replace(temporary, target)
    except DataError:
        raise
    except (OSError, ValueError) as error:
        raise DataError(f"Downloading CIFAR-10 from {url} failed: {error}. {by_hand}") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target


# Image folders.


def load_image_folder(path: str | os.PathLike) -> Dataset:
    """Load a folder with one sub-folder of images per class; class names are the folder names."""
    from PIL import Image, UnidentifiedImageError

    root = Path(path)
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DataError(f"{root}: no class sub-folders. Put each class's images in a folder named after the class.")
    images, labels = [], []
    for label, folder in enumerate(class_dirs):
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}).")
        for file in files:
            try:
                with Image.open(file) as image:
                    images.append(_center_crop_resize(_to_rgb(image)))
            except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
                raise DataError(f"{file}: cannot read the image ({error}). Remove or replace it.") from None
            labels.append(label)
    names = tuple(d.name for d in class_dirs)
    log.info("Loaded %d images in %d classes from %s", len(labels), len(names), root)
    return Dataset(np.stack(images), np.asarray(labels, np.int32), names, str(root))


def _to_rgb(image):
    from PIL import Image

    if image.mode.startswith("I;16") or image.mode == "I":
        # Pillow's convert("RGB") clips 16-bit values instead of scaling them.
        pixels = np.asarray(image, dtype=np.int64)
        scale = 257 if image.mode.startswith("I;16") or pixels.max() > 255 else 1
        image = Image.fromarray(np.clip(pixels // scale, 0, 255).astype(np.uint8), "L")
    return image.convert("RGB")


def _center_crop_resize(image) -> np.ndarray:
    from PIL import Image

    side = min(image.size)
    left = (image.width - side) // 2
    top = (image.height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS), dtype=np.uint8)


# Input pipeline.


def make_pipeline(dataset: Dataset, batch_size: int, seed: int, start_image: int = 0):
    """Build an endless `tf.data` pipeline of `(images, labels)` batches.

    Images are float32 in [-1, 1], randomly flipped left-right. The order is a
    function of `seed` alone: image number k (counting from the start of
    training) is the same whatever `start_image` the pipeline starts from, so a
    resumed run sees exactly the batches it would have seen.
    """
    import tensorflow as tf

    count = len(dataset)
    images = tf.constant(dataset.images)
    labels = tf.constant(dataset.labels)

    def epoch_order(epoch):
        order = tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
        positions = epoch * count + tf.range(count, dtype=tf.int64)
        return tf.data.Dataset.from_tensor_slices((order, positions))

    def to_batch(indices, positions):
        batch = tf.cast(tf.gather(images, indices), tf.float32) / 127.5 - 1.0
        # Batches hold consecutive positions, so the first one seeds the whole batch's flips.
        flip_seed = tf.stack([tf.constant(seed + 1, tf.int64), positions[0]])
        flip = tf.random.stateless_uniform(tf.shape(indices), seed=flip_seed)
        batch = tf.where(flip[:, None, None, None] < 0.5, tf.reverse(batch, axis=[2]), batch)
        return batch, tf.gather(labels, indices)

    first_epoch, offset = divmod(int(start_image), count)
    pipeline = tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch_order).skip(offset)
    pipeline = pipeline.batch(batch_size, drop_remainder=True)
    pipeline = pipeline.map(to_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return pipeline.prefetch(tf.data.AUTOTUNE)
