"""The generation service: load an export, generate images from seeds, hot-reload new exports.

    service = GenerationService(run_dir="runs/small")  # or export_path=..., or neither
    service.start()
    result = service.generate("cat", count=16, seed=42)  # result.images: uint8 [16, 32, 32, 3]
    service.close()

Sources, in the order the constructor checks them:

- `run_dir`: the export named by the run directory's manifest
  (`exports/latest.json`, or `exports/best.json` with manifest="best"). A
  daemon thread polls the manifest and swaps in each new export once it has
  loaded, matched its sha256 and passed a test forward pass.
- `export_path`: one export directory, described by its own `export.json`.
- neither: the export shipped in the package, named by
  `PRETRAINED_DIR / "latest.json"` (override with `pretrained_dir=`).

The service is thread-safe. Each request takes a reference to the current
model when it starts, so a reload never changes a request in flight.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import hashlib
import json
import logging
import math
import operator
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gan.config import IMAGE_SIZE
from gan.exports import BEST, LATEST, ExportError, Manifest, hash_export, read_export_info
from gan.images import to_uint8

log = logging.getLogger(__name__)

PRETRAINED_DIR = Path(__file__).parent / "pretrained"  # the shipped export, named by latest.json in it
MANIFESTS = {"latest": LATEST, "best": BEST}
MAX_FRAMES = 64  # frames per walk
MIN_FRAMES = 2
MAX_VARIATION = 1.0  # at 1.0 the added noise is as large as the latent vector itself
RELOAD_ATTEMPTS = 3  # loads per poll while the manifest keeps changing under the loader
TRAIN_HINT = (
    "Train one with `gan-train --data PATH --preset small --out runs/NAME` and serve it with "
    "GAN_RUN_DIR=runs/NAME (or --run runs/NAME), or point to an export directory with --export PATH."
)


class GenerationError(ValueError):
    """Invalid user input; the message names the value and what to do."""


class ModelUnavailable(RuntimeError):
    """No model can be served. The message explains how to train one or point to one."""


@dataclass(frozen=True)
class ServedModel:
    """Description of the export being served."""

    path: str  # export directory
    source: str  # "run", "export" or "pretrained"
    step: int  # generator updates when the export was taken
    kimg: float  # thousands of real images shown to D
    created: str  # ISO 8601, from the manifest
    class_names: tuple[str, ...]
    dataset: str  # what the model was trained on (manifest "dataset")
    metrics: dict  # manifest "metrics", may be empty
    sha256: str
    preset: str  # model preset name
    loaded_at: dt.datetime  # UTC, when this process loaded the export


@dataclass(frozen=True)
class Generation:
    """Images from one request, with everything needed to reproduce them."""

    images: np.ndarray  # uint8 [N, 32, 32, 3]
    labels: tuple[int, ...]  # class index of each image
    class_names: tuple[str, ...]  # class name of each image
    seed: int
    model: ServedModel
    variation: float = 0.0  # noise scale added to the latent vectors
    variation_seed: int | None = None  # seed of that noise, None without variation


@dataclass(frozen=True)
class _LoadedModel:
    """A served model with the TensorFlow functions that run it."""

    served: ServedModel
    module: object  # the loaded SavedModel; its variables live as long as it does
    serve: object  # `serving_default`: latent, label -> images
    mix: object | None  # `mix`: latent, class_weights -> images, or None for exports without it
    latent_dim: int

    @property
    def num_classes(self) -> int:
        return len(self.served.class_names)


@dataclass(frozen=True)
class _ManifestRead:
    """One read of a manifest file: where it was, its stat, bytes and sha256."""

    path: Path
    stat_key: tuple  # (inode, mtime in ns, size): a change means the file may have changed
    content: bytes
    digest: str


class GenerationService:
    """Serves images from the newest export and swaps in new exports as they appear."""

    MAX_COUNT = 64
    MAX_SEED = 2**63 - 1
    # Drawn seeds stay below 2**53, the largest integer a Discord option carries,
    # so a seed printed by any tool can be typed into /generate.
    MAX_DRAWN_SEED = 2**53 - 1

    def __init__(
        self,
        run_dir=None,
        export_path=None,
        manifest="latest",
        poll_interval=5.0,  # seconds between manifest checks
        gpu_memory_mb=None,  # cap on this process's GPU memory, None for memory growth
        pretrained_dir=None,  # folder with the shipped export's latest.json; None for PRETRAINED_DIR
    ):
        if run_dir is not None and export_path is not None:
            raise ValueError("Give run_dir or export_path, not both.")
        if manifest not in MANIFESTS:
            raise ValueError(f"Unknown manifest {manifest!r}. Use one of: {', '.join(MANIFESTS)}.")
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval!r}.")
        self._run_dir = Path(run_dir) if run_dir is not None else None
        self._export_path = Path(export_path) if export_path is not None else None
        self._manifest = manifest
        self._poll_interval = float(poll_interval)
        self._gpu_memory_mb = gpu_memory_mb
        self._pretrained_dir = Path(pretrained_dir) if pretrained_dir is not None else PRETRAINED_DIR
        self._device = None

        self._current: _LoadedModel | None = None
        self._swap_lock = threading.Lock()  # guards _current
        self._reload_lock = threading.Lock()  # one manifest check at a time
        self._seen_stat: tuple | None = None  # stat of the manifest file last read
        self._seen_digest: str | None = None  # sha256 of the manifest content being served
        self._failed_key: str | None = None  # manifest content (or state) whose failure is logged
        self._reload_error: str | None = None
        self._reload_error_at: dt.datetime | None = None

        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._closed = False

    # Properties.

    @property
    def served(self) -> ServedModel | None:
        current = self._current
        return current.served if current is not None else None

    @property
    def last_reload_error(self) -> str | None:
        return self._reload_error

    @property
    def last_reload_error_at(self) -> dt.datetime | None:
        return self._reload_error_at

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names of the served model, empty before `start()`."""
        current = self._current
        return current.served.class_names if current is not None else ()

    @property
    def device(self) -> str | None:
        """TensorFlow device that runs the model ("/GPU:0" or "/CPU:0"), None before `start()`."""
        return self._device

    # Life cycle.

    def start(self) -> None:
        """Load the initial model and, for a run directory, start the manifest poller.

        Raises ModelUnavailable when the configured source has nothing that
        can be served; a later call may then succeed. Raises RuntimeError once
        a model is loaded or after `close()`.
        """
        if self._closed or self._current is not None:
            raise RuntimeError("GenerationService.start() runs once, before close().")

        # Read the manifest before TensorFlow starts, so a wrong path fails fast.
        read = None
        if self._run_dir is not None:
            source = "run"
            manifest, read = self._read_initial_run_manifest()
        elif self._export_path is not None:
            source = "export"
            manifest = self._read_export_path()
        else:
            source = "pretrained"
            manifest = self._read_pretrained_manifest()

        # Select the device, then load and test the export.
        from gan.device import configure_devices

        self._device = configure_devices(self._gpu_memory_mb)
        log.info("Generation service runs on %s", self._device)
        try:
            loaded = self._load(manifest, source)
        except ExportError as error:
            raise ModelUnavailable(f"Cannot serve the export {manifest.path}: {error}. {TRAIN_HINT}") from None
        self._swap(loaded)
        if read is not None:
            self._seen_stat, self._seen_digest = read.stat_key, read.digest
        log.info(
            "Serving export %s (step %d, %.1f kimg, source %s, sha256 %s)",
            loaded.served.path,
            loaded.served.step,
            loaded.served.kimg,
            source,
            loaded.served.sha256[:12],
        )

        if source == "run":
            self._poller = threading.Thread(target=self._poll_loop, name="gan-export-poller", daemon=True)
            self._poller.start()
            log.info("Polling %s every %.1f s", self._manifest_path(), self._poll_interval)

    def close(self) -> None:
        """Stop the manifest poller; the loaded model keeps serving. Safe to call more than once."""
        self._closed = True
        self._stop.set()
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.join(timeout=60)
            log.info("Stopped polling the manifest")

    def __enter__(self) -> "GenerationService":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # Loading.

    def _manifest_path(self) -> Path:
        exports = self._run_dir / "exports"
        path = exports / MANIFESTS[self._manifest]
        if self._manifest == "best" and not path.exists():
            return exports / LATEST
        return path

    def _read_initial_run_manifest(self) -> tuple[Manifest, _ManifestRead]:
        if not self._run_dir.is_dir():
            raise ModelUnavailable(f"Run directory {self._run_dir} not found. {TRAIN_HINT}")
        path = self._manifest_path()
        try:
            read = _read_manifest_file(path)
            return _parse_manifest(read), read
        except FileNotFoundError:
            raise ModelUnavailable(
                f"The run directory {self._run_dir} has no export yet: {path} not found. "
                "Wait for the trainer's first export (every --snapshot-kimg), or point to another run or export."
            ) from None
        except (OSError, ExportError) as error:
            raise ModelUnavailable(f"Cannot read the manifest {path}: {error}") from None

    def _read_export_path(self) -> Manifest:
        path = self._export_path
        if not path.exists():
            raise ModelUnavailable(f"Export directory {path} not found. {TRAIN_HINT}")
        try:
            return read_export_info(path)
        except ExportError as error:
            hint = TRAIN_HINT
            if (path / "exports" / LATEST).is_file():
                hint = f"{path} looks like a run directory: serve it with --run {path} (or GAN_RUN_DIR)."
            raise ModelUnavailable(f"Cannot serve {path}: {error}. {hint}") from None

    def _read_pretrained_manifest(self) -> Manifest:
        path = self._pretrained_dir / LATEST
        try:
            return _parse_manifest(_read_manifest_file(path))
        except FileNotFoundError:
            raise ModelUnavailable(
                f"No model to serve: no run directory or export is configured, and no pretrained model "
                f"is shipped ({path} not found). {TRAIN_HINT}"
            ) from None
        except (OSError, ExportError) as error:
            raise ModelUnavailable(f"The shipped pretrained model is broken: {error}. {TRAIN_HINT}") from None

    def _load(self, manifest: Manifest, source: str) -> _LoadedModel:
        """Verify, load and test one export, or raise ExportError if it cannot be served."""
        import tensorflow as tf

        # Verify the files against the manifest's sha256.
        path = Path(manifest.path)
        if not path.is_dir():
            raise ExportError(f"export directory {path} not found")
        sha256 = hash_export(path)
        if manifest.sha256 and manifest.sha256 != sha256:
            raise ExportError(
                f"sha256 mismatch in {path}: the manifest expects {manifest.sha256[:12]}…, "
                f"the files hash to {sha256[:12]}…, so the export is corrupt or was changed after publishing"
            )
        if not manifest.sha256 and source != "export":
            raise ExportError("the manifest has no sha256 to verify the export against")

        # Load the SavedModel. A damaged export fails in many ways (protobuf
        # decode errors, TensorFlow OpError, ValueError, KeyError), so catch all.
        with tf.device(self._device):
            try:
                module = tf.saved_model.load(str(path))
            except Exception as error:
                raise ExportError(f"TensorFlow failed to load it: {type(error).__name__}: {_first_line(error)}") from None
        signatures = getattr(module, "signatures", {})
        if "serving_default" not in signatures:
            raise ExportError("it has no serving_default signature")
        serve = signatures["serving_default"]
        mix = signatures.get("mix")
        try:
            latent_dim = int(serve.structured_input_signature[1]["latent"].shape[-1])
        except (KeyError, IndexError, TypeError) as error:
            raise ExportError(f"its serving_default signature has no latent input: {error}") from None
        if latent_dim != manifest.model.latent_dim:
            raise ExportError(
                f"its latent input has length {latent_dim}, but the manifest gives latent_dim {manifest.model.latent_dim}"
            )
        if not manifest.class_names:
            raise ExportError("the manifest lists no class names")

        loaded = _LoadedModel(
            served=ServedModel(
                path=str(path),
                source=source,
                step=manifest.step,
                kimg=manifest.kimg,
                created=manifest.created,
                class_names=tuple(manifest.class_names),
                dataset=manifest.dataset,
                metrics=dict(manifest.metrics),
                sha256=sha256,
                preset=manifest.model.preset,
                loaded_at=dt.datetime.now(dt.timezone.utc),
            ),
            module=module,
            serve=serve,
            mix=mix,
            latent_dim=latent_dim,
        )
        self._test_forward_pass(loaded)
        return loaded

    def _test_forward_pass(self, model: _LoadedModel) -> None:
        latent = np.random.default_rng(0).standard_normal((2, model.latent_dim)).astype(np.float32)
        labels = np.array([0, model.num_classes - 1], dtype=np.int32)
        try:
            outputs = [self._run(model, latent, labels)]
            if model.mix is not None:
                weights = np.eye(model.num_classes, dtype=np.float32)[labels]
                outputs.append(self._run_mix(model, latent, weights))
        except Exception as error:  # any failure of a new export means "do not serve it"
            raise ExportError(f"the test forward pass failed: {type(error).__name__}: {_first_line(error)}") from None
        for images in outputs:
            if images.shape != (2, IMAGE_SIZE, IMAGE_SIZE, 3):
                raise ExportError(f"the test forward pass returned shape {list(images.shape)}, expected [2, 32, 32, 3]")
            if not np.all(np.isfinite(images)):
                raise ExportError("the test forward pass returned NaN or infinite values")

    def _run(self, model: _LoadedModel, latent: np.ndarray, labels: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        with tf.device(self._device):
            outputs = model.serve(latent=tf.constant(latent, tf.float32), label=tf.constant(labels, tf.int32))
        return outputs["images"].numpy()

    def _run_mix(self, model: _LoadedModel, latent: np.ndarray, class_weights: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        with tf.device(self._device):
            outputs = model.mix(
                latent=tf.constant(latent, tf.float32), class_weights=tf.constant(class_weights, tf.float32)
            )
        return outputs["images"].numpy()

    # Hot reload.

    def _poll_loop(self) -> None:
        while not self._stop.wait(self._poll_interval):
            try:
                self.check_for_update()
            except Exception as error:  # the poller must outlive any one bad poll
                self._record_failure(f"poll-error:{error!r}", f"polling the manifest failed: {error!r}")

    def check_for_update(self) -> bool:
        """Check the manifest once and swap in the export it names if new; return whether it swapped.

        For sources other than a run directory it returns False. A broken export or manifest is logged once per manifest content and
        the current model keeps serving.
        """
        if self._run_dir is None or self._current is None:
            return False
        with self._reload_lock:
            candidate = None
            for _attempt in range(RELOAD_ATTEMPTS):
                outcome, candidate = self._check_manifest(candidate)
                if outcome != "changed":
                    return outcome == "swapped"
            log.info("The manifest changed during each of %d loads; trying again at the next poll", RELOAD_ATTEMPTS)
            self._seen_stat = None
            return False

    def _check_manifest(self, candidate: _LoadedModel | None) -> tuple[str, _LoadedModel | None]:
        """Run one reload step: "unchanged", "failed", "swapped" or "changed" (re-read after loading)."""
        path = self._manifest_path()
        try:
            stat_key = _stat_key(path)
        except OSError as error:
            self._record_failure(f"unreadable:{path}", f"cannot read the manifest {path}: {error.strerror or error}")
            return "failed", candidate
        if stat_key == self._seen_stat:
            return "unchanged", candidate
        try:
            read = _read_manifest_file(path)
        except OSError as error:
            self._record_failure(f"unreadable:{path}", f"cannot read the manifest {path}: {error.strerror or error}")
            return "failed", candidate
        if read.digest == self._failed_key:
            self._seen_stat = read.stat_key
            return "unchanged", candidate
        if read.digest == self._seen_digest:
            # Back to the manifest being served, for example after a broken publish was rolled back.
            self._seen_stat = read.stat_key
            self._clear_failure()
            return "unchanged", candidate

        # Parse the manifest; if it names the export being served, refresh its description only.
        try:
            manifest = _parse_manifest(read)
        except ExportError as error:
            self._record_failure(read.digest, f"manifest {path} is invalid: {error}", read)
            return "failed", candidate
        current = self._current
        if str(manifest.path) == current.served.path and manifest.sha256 == current.served.sha256:
            self._refresh_description(current, manifest)
            self._seen_stat, self._seen_digest = read.stat_key, read.digest
            return "unchanged", candidate

        # Class names are fixed once serving starts: Discord's command choices and
        # the buttons under old results store class names and indices.
        if tuple(manifest.class_names) != current.served.class_names:
            self._record_failure(
                read.digest,
                f"export {manifest.path} (step {manifest.step}) rejected: its classes {list(manifest.class_names)} differ from "
                f"the served {list(current.served.class_names)}; restart the bot to serve it",
                read,
            )
            return "failed", candidate

        # Load and test the new export, unless the previous attempt already did.
        if candidate is not None and (candidate.served.path, candidate.served.sha256) == (str(manifest.path), manifest.sha256):
            candidate = _with_description(candidate, manifest)
        else:
            try:
                candidate = self._load(manifest, "run")
            except ExportError as error:
                self._record_failure(read.digest, f"export {manifest.path} (step {manifest.step}) rejected: {error}", read)
                return "failed", None

        # The trainer may have published again while this export loaded; never swap in a stale one.
        path_now = self._manifest_path()
        try:
            digest_now = _read_manifest_file(path_now).digest
        except OSError:
            digest_now = None
        if path_now != path or digest_now != read.digest:
            log.info("The manifest changed while export step %d loaded; checking it again", manifest.step)
            return "changed", candidate

        self._swap(candidate)
        self._seen_stat, self._seen_digest = read.stat_key, read.digest
        self._clear_failure()
        log.info(
            "Reloaded: export step %d (%.1f kimg) -> step %d (%.1f kimg) from %s",
            current.served.step,
            current.served.kimg,
            candidate.served.step,
            candidate.served.kimg,
            candidate.served.path,
        )
        return "swapped", candidate

    def _swap(self, model: _LoadedModel) -> None:
        with self._swap_lock:
            self._current = model

    def _refresh_description(self, current: _LoadedModel, manifest: Manifest) -> None:
        # The evaluator adds metrics to the manifest of an export already served.
        refreshed = _with_description(current, manifest)
        if refreshed.served != current.served:
            self._swap(refreshed)
            log.info("Updated the metrics of export step %d: %s", refreshed.served.step, refreshed.served.metrics)

    def _record_failure(self, key: str, message: str, read: _ManifestRead | None = None) -> None:
        """Record and log a reload failure, unless `key` (usually the manifest's sha256) already failed last."""
        if read is not None:
            self._seen_stat = read.stat_key
        if key == self._failed_key:
            return
        self._failed_key = key
        self._reload_error = message
        self._reload_error_at = dt.datetime.now(dt.timezone.utc)
        current = self._current
        log.error("Reload failed, still serving export step %d: %s", current.served.step if current else -1, message)

    def _clear_failure(self) -> None:
        self._failed_key = None
        self._reload_error = None
        self._reload_error_at = None

    # Requests.

    def _require_model(self) -> _LoadedModel:
        with self._swap_lock:
            current = self._current
        if current is None:
            raise ModelUnavailable("The generation service has no model loaded; call start() first.")
        return current

    def resolve_class(self, value: str | int) -> int | None:
        """Return the class index for a name or index, or None for "random".

        Names are case-insensitive, and an index may be an int or a string of
        digits. Raises GenerationError naming the closest class otherwise.
        """
        return _resolve_class(self._require_model().served.class_names, value)

    def generate(
        self,
        class_name: str | int = "random",
        count: int = 4,
        seed: int | None = None,
        variation: float = 0.0,
        variation_seed: int | None = None,
    ) -> Generation:
        """Generate `count` images of one class, or of random classes, from `seed`.

        The latent vectors, then the random classes, come from
        `numpy.random.default_rng(seed)`. A `variation` above 0 adds
        `variation` times standard normal noise from
        `default_rng(variation_seed)` to those latent vectors. With `seed` or
        `variation_seed` None, one is drawn and returned in the Generation.
        """
        model = self._require_model()
        count = _check_int("count", count, 1, self.MAX_COUNT, "Request between 1 and 64 images.")
        seed = _draw_seed() if seed is None else _check_seed("seed", seed)
        label = _resolve_class(model.served.class_names, class_name)
        variation = _check_variation(variation)
        if variation_seed is not None:
            variation_seed = _check_seed("variation seed", variation_seed)
        elif variation > 0:
            variation_seed = _draw_seed()

        # Sample latent vectors, then classes, from the seed.
        rng = np.random.default_rng(seed)
        latent = rng.standard_normal((count, model.latent_dim)).astype(np.float32)
        if label is None:
            labels = rng.integers(0, model.num_classes, size=count).astype(np.int32)
        else:
            labels = np.full(count, label, dtype=np.int32)

        # Move the latent vectors by seeded noise for variations.
        if variation > 0:
            noise = np.random.default_rng(variation_seed).standard_normal(latent.shape).astype(np.float32)
            latent = latent + np.float32(variation) * noise

        # NOTE: concurrent requests run as separate forward passes. Batching them
        # would save GPU time, but the result of a row could then depend on its batch.
        images = to_uint8(self._run(model, latent, labels))
        return _generation(images, labels, seed, model, variation, variation_seed)

    def walk(
        self,
        seed_a: int,
        seed_b: int | None = None,
        class_a: str | int = "random",
        class_b: str | int | None = None,
        frames: int = 16,
    ) -> Generation:
        """Generate the frames of a latent walk, from seed_a to seed_b or from class_a to class_b.

        With `seed_b`, the latent vector moves along the great circle
        (spherical interpolation) from seed_a's to seed_b's, in one class. With
        `class_b`, the latent vector of seed_a stays fixed while the class
        conditioning blends linearly from class_a to class_b. Each frame's
        label is the class with the larger weight. Latent vectors and random
        classes come from seeds as in `generate`, so the first frame is
        `generate(class_a, count=1, seed=seed_a)`.
        """
        model = self._require_model()
        if (seed_b is None) == (class_b is None):
            raise GenerationError("Give exactly one walk target: seed_b (walk between seeds) or class_b (between classes).")
        seed_a = _check_seed("seed", seed_a)
        frames = _check_int("frames", frames, MIN_FRAMES, MAX_FRAMES, "Request between 2 and 64 frames.")
        names = model.served.class_names
        start_class = _resolve_class(names, class_a)

        # Draw seed_a's latent vector and class exactly as generate() does for count=1.
        rng = np.random.default_rng(seed_a)
        latent_a = rng.standard_normal((1, model.latent_dim)).astype(np.float32)
        if start_class is None:
            start_class = int(rng.integers(0, model.num_classes))
        steps = np.linspace(0.0, 1.0, frames)

        if seed_b is not None:
            seed_b = _check_seed("seed_b", seed_b)
            latent_b = np.random.default_rng(seed_b).standard_normal((1, model.latent_dim)).astype(np.float32)
            latent = np.concatenate([_slerp(latent_a[0], latent_b[0], t)[None] for t in steps]).astype(np.float32)
            labels = np.full(frames, start_class, dtype=np.int32)
            images = self._run(model, latent, labels)
        else:
            end_class = _resolve_class(names, class_b)
            if end_class is None:
                end_class = int(rng.integers(0, model.num_classes))
            if model.mix is None:
                raise GenerationError(
                    f"The served export {model.served.path} has no 'mix' signature, so it cannot walk between "
                    "classes. Walk between seeds instead, or serve an export written by the current trainer."
                )
            weights = np.zeros((frames, model.num_classes), dtype=np.float32)
            weights[:, start_class] += (1.0 - steps).astype(np.float32)
            weights[:, end_class] += steps.astype(np.float32)
            latent = np.repeat(latent_a, frames, axis=0)
            labels = np.where(steps < 0.5, start_class, end_class).astype(np.int32)
            images = self._run_mix(model, latent, weights)

        return _generation(to_uint8(images), labels, seed_a, model, 0.0, None)


# Metadata for rendered files.


def generation_metadata(generation: Generation) -> dict[str, str]:
    """Describe `generation` as text for PNG chunks or a GIF comment, enough to reproduce it."""
    from importlib import metadata

    try:
        version = metadata.version("cifar-gan-bot")
    except metadata.PackageNotFoundError:
        version = "unknown"
    model = generation.model
    info = {
        "Software": f"cifar-gan-bot {version}",
        "seed": str(generation.seed),
        "classes": ", ".join(generation.class_names),
        "export step": str(model.step),
        "export kimg": f"{model.kimg:g}",
        "export sha256": model.sha256,
        "preset": model.preset,
    }
    if generation.variation > 0:
        info["variation"] = f"{generation.variation:g}"
        info["variation seed"] = str(generation.variation_seed)
    return info


# Helpers.


def _read_manifest_file(path: Path) -> _ManifestRead:
    stat_key = _stat_key(path)
    content = path.read_bytes()
    return _ManifestRead(path=path, stat_key=stat_key, content=content, digest=hashlib.sha256(content).hexdigest())


def _stat_key(path: Path) -> tuple:
    stat = path.stat()
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def _parse_manifest(read: _ManifestRead) -> Manifest:
    # Parse the bytes already read, so the digest and the parsed manifest describe the same content.
    try:
        data = json.loads(read.content)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ExportError(f"not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ExportError("not a JSON object")
    return Manifest.from_dict(data, read.path.parent)


def _with_description(model: _LoadedModel, manifest: Manifest) -> _LoadedModel:
    """Return `model` with the metrics and dataset that `manifest` gives for the same export files."""
    served = dataclasses.replace(model.served, metrics=dict(manifest.metrics), dataset=manifest.dataset)
    return dataclasses.replace(model, served=served)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no message"


def _resolve_class(class_names: tuple[str, ...], value: str | int) -> int | None:
    choices = ", ".join([*class_names, "random"])
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        index = int(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if text == "random":
            return None
        lowered = [name.lower() for name in class_names]
        if text in lowered:
            return lowered.index(text)
        if not (text.isascii() and text.isdigit()):
            suggestion = difflib.get_close_matches(text, [*lowered, "random"], n=1)
            hint = ""
            if suggestion:
                match = suggestion[0]
                hint = f" Did you mean '{class_names[lowered.index(match)] if match != 'random' else match}'?"
            raise GenerationError(f"Unknown class '{value}'.{hint} Classes: {choices}.")
        index = int(text)
    else:
        raise GenerationError(f"Unknown class {value!r}. Give a class name or index. Classes: {choices}.")
    if not 0 <= index < len(class_names):
        raise GenerationError(f"Class index {index} is out of range 0..{len(class_names) - 1}. Classes: {choices}.")
    return index


def _check_int(name: str, value, low: int, high: int, advice: str) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise GenerationError(f"Invalid {name} {value!r}: expected a whole number in {low}..{high}. {advice}") from None
    if not low <= number <= high:
        raise GenerationError(f"{name.capitalize()} {number} is out of range {low}..{high}. {advice}")
    return number


def _check_seed(name: str, value) -> int:
    return _check_int(name, value, 0, GenerationService.MAX_SEED, "Use a seed from 0 to 2**63 - 1.")


def _check_variation(value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise GenerationError(f"Invalid variation {value!r}: expected a number in 0..{MAX_VARIATION:g}.") from None
    if not (math.isfinite(number) and 0.0 <= number <= MAX_VARIATION):
        raise GenerationError(f"Variation {value!r} is out of range 0..{MAX_VARIATION:g}.")
    return number


def _draw_seed() -> int:
    return secrets.randbelow(GenerationService.MAX_DRAWN_SEED + 1)


def _slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Interpolate between latent vectors `a` and `b` along the great circle, t in [0, 1]."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    cosine = np.dot(a64, b64) / (np.linalg.norm(a64) * np.linalg.norm(b64))
    angle = math.acos(float(np.clip(cosine, -1.0, 1.0)))
    if angle < 1e-6:
        return (1.0 - t) * a64 + t * b64  # nearly parallel: slerp equals lerp
    return (math.sin((1.0 - t) * angle) * a64 + math.sin(t * angle) * b64) / math.sin(angle)


def _generation(images, labels, seed, model: _LoadedModel, variation, variation_seed) -> Generation:
    names = model.served.class_names
    labels = tuple(int(label) for label in labels)
    return Generation(
        images=images,
        labels=labels,
        class_names=tuple(names[label] for label in labels),
        seed=seed,
        model=model.served,
        variation=variation,
        variation_seed=variation_seed,
    )
