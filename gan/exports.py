"""Exports of the EMA generator, the manifest that names the newest one, atomic files.

An export is a TensorFlow SavedModel directory `exports/generator-KIMG/` whose
`serving_default` signature maps `latent` (float32, [N, latent_dim]) and
`label` (int32, [N]) to `images` (float32, [N, 32, 32, 3], in [-1, 1]). A
second signature, `mix`, takes `class_weights` (float32, [N, num_classes])
in place of labels and blends the classes' conditioning, for walks between
classes; unconditional models ignore it. The export loads in the bot and in
TensorFlow Serving alike. Next to the SavedModel files
it holds `export.json`, the same description the manifest carries, so an export
directory can be served without a run directory around it.
Exports written by the trainer also hold `training/generator.weights.h5` and
`training/discriminator.weights.h5` (the raw G and D), which a new run can
continue from.

The manifest `exports/latest.json` is replaced only after the export it names
is complete and hashed, so a reader never sees a half-written export.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from gan.config import IMAGE_SIZE, ModelConfig

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
EXPORT_INFO = "export.json"
LATEST = "latest.json"
BEST = "best.json"
TRAINING_DIR = "training"  # raw G and D weights inside an export, for continuing training


class ExportError(Exception):
    """An export or manifest is missing, corrupt or incompatible."""


# Atomic files.


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file, fsync and rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        # mkstemp creates files readable by the owner only; give the usual umask-based mode,
        # so a bot or TensorFlow Serving running as another user can read the run directory.
        os.chmod(temporary, 0o666 & ~_umask())
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def atomic_write_json(path: Path, value) -> None:
    """Write `value` as strict JSON (no NaN or Infinity, which many parsers reject) atomically."""
    atomic_write_bytes(path, (json.dumps(value, indent=2, sort_keys=True, allow_nan=False) + "\n").encode())


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _fsync_directory(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def hash_export(path: Path) -> str:
    """Return the sha256 of an export directory: every file's relative path and bytes, in sorted order."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


# Manifest.


@dataclass
class Manifest:
    """Contents of `exports/latest.json` (or `best.json`): the description of one export."""

    path: Path  # absolute path of the export directory
    step: int  # generator updates when the export was taken
    kimg: float  # thousands of real images shown to D
    created: str  # ISO 8601, UTC
    model: ModelConfig
    class_names: tuple[str, ...]
    sha256: str
    dataset: str = ""
    metrics: dict = field(default_factory=dict)

    def to_dict(self, exports_dir: Path | None = None) -> dict:
        path = self.path
        if exports_dir is not None:
            path = os.path.relpath(self.path, exports_dir)
        return {
            "format": MANIFEST_FORMAT,
            "path": str(path),
            "step": self.step,
            "kimg": round(self.kimg, 3),
            "created": self.created,
            "model": self.model.to_dict(),
            "class_names": list(self.class_names),
            "sha256": self.sha256,
            "dataset": self.dataset,
            "metrics": self.metrics,
        }

    @classmethod
    def from_dict(cls, data: dict, base: Path) -> "Manifest":
        try:
            if data.get("format") != MANIFEST_FORMAT:
                raise ExportError(f"unsupported manifest format {data.get('format')!r}, expected {MANIFEST_FORMAT}")
            path = (base / data["path"]).resolve()
            # An export lies beside its manifest ("." in an export's own export.json), never elsewhere.
            if path != base.resolve() and path.parent != base.resolve():
                raise ExportError(f"the manifest's path {data['path']!r} must name an export directory beside the manifest")
            return cls(
                path=path,
                step=int(data["step"]),
                kimg=float(data["kimg"]),
                created=str(data["created"]),
                model=ModelConfig.from_dict(data["model"]),
                class_names=tuple(str(n) for n in data["class_names"]),
                sha256=str(data["sha256"]),
                dataset=str(data.get("dataset", "")),
                metrics=dict(data.get("metrics") or {}),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ExportError(f"manifest field missing or invalid: {error}") from None


def read_manifest(path: Path) -> Manifest:
    """Read and validate a manifest file; relative export paths are relative to its directory."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ExportError(f"manifest not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ExportError(f"manifest {path} is unreadable: {error}") from None
    if not isinstance(data, dict):
        raise ExportError(f"manifest {path} is not a JSON object")
    return Manifest.from_dict(data, path.parent)


def read_export_info(export_dir: Path) -> Manifest:
    """Describe an export directory from its own `export.json` (no manifest needed)."""
    export_dir = Path(export_dir)
    info = export_dir / EXPORT_INFO
    if not info.is_file():
        raise ExportError(f"{export_dir} is not an export: {EXPORT_INFO} is missing")
    manifest = read_manifest(info)
    manifest.path = export_dir.resolve()
    return manifest


def update_manifest_metrics(manifest_path: Path, export_dir: Path, metrics: dict) -> bool:
    """Merge `metrics` into the manifest if it still names `export_dir`; return whether it did."""
    manifest = read_manifest(manifest_path)
    if manifest.path != Path(export_dir).resolve():
        return False
    manifest.metrics = {**manifest.metrics, **metrics}
    atomic_write_json(manifest_path, manifest.to_dict(Path(manifest_path).parent))
    return True


def load_export_weights(generator, export_dir: Path, model: ModelConfig, class_names) -> Manifest:
    """Copy the weights of the export in `export_dir` into the Keras `generator`; return its description.

    The export's variables are stored under the attribute path of each weight
    in the generator (`generator/blocks/0/conv1/kernel`), so each one is looked
    up by that path. Every weight of `generator` must receive a value, and
    nothing is assigned until all of them have been read.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    export_dir = Path(export_dir)
    if (export_dir / LATEST).is_file() or (export_dir / "exports" / LATEST).is_file():
        raise ExportError(f"{export_dir} is a run or exports directory; pass one export in it, such as {export_dir}/exports/generator-000500.")
    info = read_export_info(export_dir)
    if info.model != model:
        differences = ", ".join(f"{name} {value!r} (this run: {model.to_dict()[name]!r})" for name, value in info.model.to_dict().items() if model.to_dict()[name] != value)
        hint = "use data with as many classes" if info.model.num_classes != model.num_classes else "choose a matching --preset or export"
        raise ExportError(f"{export_dir} contains a different model: {differences}; {hint}.")
    if tuple(info.class_names) != tuple(class_names):
        raise ExportError(f"{export_dir} was trained on the classes {list(info.class_names)}, not on this data's {list(class_names)}.")

    def unreadable(error: Exception) -> ExportError:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return ExportError(f"the variables of {export_dir} are unreadable ({detail}); export it again.")

    suffix = "/.ATTRIBUTES/VARIABLE_VALUE"
    values = {}  # id(weight) -> (weight, value)
    try:
        reader = tf.train.load_checkpoint(str(export_dir / "variables" / "variables"))
        for key, shape in reader.get_variable_to_shape_map().items():
            if not key.startswith("generator/") or not key.endswith(suffix):
                continue
            name = key[len("generator/") : -len(suffix)]
            target = generator
            try:
                for part in name.split("/"):
                    target = target[int(part)] if part.isdigit() else getattr(target, part)
            except (AttributeError, IndexError, KeyError, TypeError):
                target = None
            if not isinstance(target, keras.Variable):
                raise ExportError(f"{export_dir} has a weight {name!r} this generator lacks; it comes from another version of the model.")
            if tuple(target.shape) != tuple(shape):
                raise ExportError(f"{export_dir}: weight {name!r} has shape {tuple(shape)}, the generator expects {tuple(target.shape)}.")
            values[id(target)] = (target, np.asarray(reader.get_tensor(key), dtype=target.dtype))
    except (tf.errors.OpError, ValueError) as error:
        raise unreadable(error) from None

    missing = [w.path for w in generator.weights if id(w) not in values]
    if missing:
        raise ExportError(f"{export_dir} has no value for {len(missing)} generator weight(s), e.g. {missing[0]!r}; it comes from another version of the model.")
    for target, value in values.values():
        target.assign(value)
    return info


def has_training_weights(export_dir: Path) -> bool:
    """Tell whether an export carries the raw generator and the discriminator of its run."""
    return all((Path(export_dir) / TRAINING_DIR / f"{name}.weights.h5").is_file() for name in ("generator", "discriminator"))


def load_training_weights(export_dir: Path, generator, discriminator) -> None:
    """Load the raw generator and discriminator weights saved in an export's `training/` folder."""
    folder = Path(export_dir) / TRAINING_DIR
    for name, model in (("generator", generator), ("discriminator", discriminator)):
        try:
            model.load_weights(str(folder / f"{name}.weights.h5"))
        except (OSError, ValueError, KeyError) as error:
            detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ExportError(f"{folder / name}.weights.h5 is unreadable or belongs to another model ({detail}); export it again, or remove {folder} to start D from random weights.") from None


# Writing exports.


def _serving_module(generator, config: ModelConfig):
    import tensorflow as tf

    class GeneratorModule(tf.Module):
        def __init__(self):
            super().__init__(name="generator_export")
            self.generator = generator

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, config.latent_dim], tf.float32, name="latent"),
                tf.TensorSpec([None], tf.int32, name="label"),
            ]
        )
        def serve(self, latent, label):
            images = self.generator((latent, label), training=False)
            return {"images": tf.ensure_shape(images, [None, IMAGE_SIZE, IMAGE_SIZE, 3])}

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, config.latent_dim], tf.float32, name="latent"),
                tf.TensorSpec([None, config.num_classes], tf.float32, name="class_weights"),
            ]
        )
        def mix(self, latent, class_weights):
            images = self.generator((latent, class_weights), training=False)
            return {"images": tf.ensure_shape(images, [None, IMAGE_SIZE, IMAGE_SIZE, 3])}

    return GeneratorModule()


def write_export(
    generator,
    config: ModelConfig,
    class_names,
    exports_dir: Path,
    step: int,
    kimg: float,
    dataset: str = "",
    keep: int = 5,
    training_models: dict | None = None,
) -> Manifest:
    """Save `generator` as a new export and point `latest.json` at it.

    `training_models` ({"generator": G, "discriminator": D}) adds their
    weights under `training/`, so a later run can continue from the export
    (`gan-train --init-generator`); serving ignores them.

    The SavedModel is written to a hidden temporary directory, renamed to
    `generator-KIMG` once complete, hashed, and only then named by the
    manifest. Older exports beyond the newest `keep` are removed, except any
    that `best.json` names.
    """
    import tensorflow as tf

    exports_dir = Path(exports_dir)
    exports_dir.mkdir(parents=True, exist_ok=True)
    name = f"generator-{int(kimg):06d}"
    if (exports_dir / name).exists():
        name = f"{name}-step{step}"
    suffix = 2
    base_name = name
    while (exports_dir / name).exists():  # the same step exported again, e.g. by a resumed run
        name = f"{base_name}-{suffix}"
        suffix += 1
    final = exports_dir / name
    temporary = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=exports_dir))
    os.chmod(temporary, 0o777 & ~_umask())

    manifest = Manifest(
        path=final.resolve(),
        step=int(step),
        kimg=float(kimg),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        model=config,
        class_names=tuple(class_names),
        sha256="",
        dataset=dataset,
    )
    try:
        module = _serving_module(generator, config)
        tf.saved_model.save(module, str(temporary), signatures={"serving_default": module.serve, "mix": module.mix})
        info = manifest.to_dict()
        info["path"] = "."
        atomic_write_json(temporary / EXPORT_INFO, info)
        for model_name, model in (training_models or {}).items():
            (temporary / TRAINING_DIR).mkdir(exist_ok=True)
            model.save_weights(str(temporary / TRAINING_DIR / f"{model_name}.weights.h5"))
        os.replace(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _fsync_directory(exports_dir)

    manifest.sha256 = hash_export(final)
    atomic_write_json(exports_dir / LATEST, manifest.to_dict(exports_dir))
    log.info("Exported the EMA generator at step %d (%.1f kimg) to %s", step, kimg, final)
    _prune_exports(exports_dir, keep)
    return manifest


def _prune_exports(exports_dir: Path, keep: int) -> None:
    protected = set()
    for manifest_name in (LATEST, BEST):
        try:
            protected.add(read_manifest(exports_dir / manifest_name).path)
        except ExportError:
            pass
    exports = sorted((p for p in exports_dir.glob("generator-*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in exports[:-keep] if keep > 0 else []:
        if old.resolve() not in protected:
            shutil.rmtree(old, ignore_errors=True)
            log.info("Removed old export %s", old)
