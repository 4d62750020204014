"""The training loop: hinge-loss GAN with EMA generator, DiffAugment, checkpoints and exports.

    from gan.training import Trainer
    trainer = Trainer(config, run_dir, dataset)   # or Trainer.resume(run_dir, dataset)
    trainer.train()

Progress is counted in kimg, thousands of real images shown to D. The run
directory layout (config.json, checkpoints/, exports/, samples/, status.json,
logs/) is documented in the README; exports and status.json are written
atomically because the bot reads them while training runs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np

from gan.config import TrainConfig
from gan.data import Dataset, make_pipeline
from gan.exports import atomic_write_bytes, atomic_write_json, write_export

log = logging.getLogger(__name__)

STATUS_FILE = "status.json"
CONFIG_FILE = "config.json"
LOSS_HISTORY_LENGTH = 500  # ticks kept in status.json for the loss curve
SAMPLE_COLUMNS = 10


class TrainingError(Exception):
    """Raised when a run cannot start or continue. The message states why and what to do."""


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def select_strategy():
    """Pick the tf.distribute strategy for the visible hardware.

    Several workers in `TF_CONFIG` -> MultiWorkerMirroredStrategy; several
    GPUs (or logical CPUs set up by the caller) -> MirroredStrategy; otherwise
    the default strategy, which runs on the one GPU or the CPU.
    """
    import tensorflow as tf

    cluster = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}").get("cluster", {})
    if len(cluster.get("worker", [])) > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    cpus = tf.config.list_logical_devices("CPU")
    if not gpus and len(cpus) > 1:
        return tf.distribute.MirroredStrategy([d.name for d in cpus])
    return tf.distribute.get_strategy()


class Trainer:
    """Owns the networks, optimizers, EMA generator and run directory of one training run."""

    def __init__(self, config: TrainConfig, run_dir: Path, dataset: Dataset, strategy=None):
        import keras
        import tensorflow as tf

        from gan.augment import parse_policy
        from gan.models import build_discriminator, build_generator

        self.config = config
        self.run_dir = Path(run_dir)
        self.dataset = dataset
        self.strategy = strategy or select_strategy()
        self.replicas = self.strategy.num_replicas_in_sync
        if config.batch_size % self.replicas:
            raise TrainingError(f"--batch {config.batch_size} does not divide across {self.replicas} replicas; use a multiple of {self.replicas}.")
        if tuple(dataset.class_names) != tuple(config.class_names):
            raise TrainingError(f"The data has classes {list(dataset.class_names)}, but the run was configured for {list(config.class_names)}.")
        self.policy = parse_policy(config.diffaugment)
        self.trace_count = 0  # Python-side count of train-step traces, to detect retracing

        # Construct networks, initialized from the run's seed.
        keras.utils.set_random_seed(config.seed)
        if config.mixed_precision:
            keras.mixed_precision.set_dtype_policy("mixed_float16")
        with self.strategy.scope():
            self.generator = build_generator(config.model, "generator")
            self.discriminator = build_discriminator(config.model, "discriminator")
            self.generator_ema = build_generator(config.model, "generator_ema")
            for target, source in zip(self.generator_ema.weights, self.generator.weights):
                target.assign(source)

            self.optimizer_g = self._optimizer(config.lr_g)
            self.optimizer_d = self._optimizer(config.lr_d)
            self.optimizer_g.build(self.generator.trainable_variables)
            self.optimizer_d.build(self.discriminator.trainable_variables)

            # The step and image counters are the only random state: every random
            # draw is a stateless function of (seed, step), so restoring them
            # restores the random streams exactly.
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.images_seen = tf.Variable(0, dtype=tf.int64, trainable=False, name="images_seen")

        self.checkpoint = tf.train.Checkpoint(
            generator=_variable_group(self.generator.weights),
            discriminator=_variable_group(self.discriminator.weights),
            generator_ema=_variable_group(self.generator_ema.weights),
            optimizer_g=_variable_group(self.optimizer_g.variables),
            optimizer_d=_variable_group(self.optimizer_d.variables),
            step=self.step,
            images_seen=self.images_seen,
        )
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.run_dir / "checkpoints"), max_to_keep=config.keep_checkpoints)
        self._train_step = None
        self._warmup_step = None  # D-only step for the first config.g_warmup_kimg
        self.step_parts: dict = {}  # filled when the train step is built
        self._summary_writer = None
        self._snapshot_step: int | None = None
        self._evaluator = None  # built on first use; False when no classifier is available
        self._stop_signal: int | None = None
        self.loss_history: deque = deque(maxlen=LOSS_HISTORY_LENGTH)
        self.status: dict = {}

    def _optimizer(self, learning_rate: float):
        import keras

        optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=self.config.beta_1, beta_2=self.config.beta_2)
        if self.config.mixed_precision:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    @property
    def kimg(self) -> float:
        return int(self.images_seen.numpy()) / 1000.0

    # Run directory.

    def prepare_run_dir(self, resume: bool) -> None:
        """Create the run directory, or check that it can be resumed, and restore the newest checkpoint."""
        config_path = self.run_dir / CONFIG_FILE
        try:
            for sub in ("checkpoints", "exports", "samples", "logs"):
                (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
            probe = self.run_dir / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise TrainingError(f"Cannot write to the output directory {self.run_dir}: {error.strerror}. Choose another --out.") from None

        has_checkpoint = self.manager.latest_checkpoint is not None
        if resume:
            if not config_path.is_file():
                raise TrainingError(f"Nothing to resume in {self.run_dir}: {CONFIG_FILE} is missing. Start a new run without --resume.")
            stored = load_run_config(self.run_dir)
            problems = self.config.incompatible_with(stored)
            if problems:
                raise TrainingError(f"Cannot resume {self.run_dir} with a different configuration ({'; '.join(problems)}). Use the stored settings or a new --out.")
            if not has_checkpoint:
                raise TrainingError(f"No checkpoint to resume from in {self.run_dir / 'checkpoints'}. Check --out, or start a new run without --resume.")
            self._restore_newest_readable()
        elif has_checkpoint:
            raise TrainingError(f"{self.run_dir} already holds a training run. Pass --resume to continue it, or choose a new --out.")
        elif self.config.init_generator:
            self._init_generator()

        # The stored configuration changes only once the run can really continue.
        atomic_write_json(config_path, self.config.to_dict())
        self._load_status_history()

    def _restore_newest_readable(self) -> None:
        """Restore the newest checkpoint that reads back; skip (and log) corrupt ones."""
        import tensorflow as tf

        failures = []
        for path in reversed(self.manager.checkpoints):
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except (tf.errors.OpError, ValueError, AssertionError, IndexError, OSError) as error:
                message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                log.warning("Checkpoint %s is unreadable (%s); trying an older one", path, message)
                failures.append(f"{Path(path).name}: {message}")
                continue
            log.info("Resumed from %s at step %d (%.1f kimg)", path, int(self.step.numpy()), self.kimg)
            return
        raise TrainingError(
            f"Every checkpoint in {self.run_dir / 'checkpoints'} is unreadable ({'; '.join(failures) or 'none listed'}). "
            "Restore them from a backup, or start a new run without --resume."
        )

    def _init_generator(self) -> None:
        """Start G, the EMA generator and (when the export carries it) D from `config.init_generator` (a new run only)."""
        from gan.exports import ExportError, has_training_weights, load_export_weights, load_training_weights

        export = Path(self.config.init_generator)
        try:
            info = load_export_weights(self.generator_ema, export, self.config.model, self.config.class_names)
            with_d = has_training_weights(export)
            if with_d:
                load_training_weights(export, self.generator, self.discriminator)
        except ExportError as error:
            raise TrainingError(f"Cannot start from the export {self.config.init_generator}: {error}") from None
        if with_d:
            log.info("G, the EMA generator and D continue from %s (%.1f kimg of an earlier run); the optimizers start afresh", info.path, info.kimg)
            return
        for target, source in zip(self.generator.weights, self.generator_ema.weights):
            target.assign(source)
        log.info("G and the EMA generator start from %s (%.1f kimg of an earlier run); D starts from random weights", info.path, info.kimg)

    def _load_status_history(self) -> None:
        try:
            previous = json.loads((self.run_dir / STATUS_FILE).read_text())
        except (OSError, ValueError):
            return
        for entry in previous.get("loss_history", []):
            if entry.get("kimg", 0) <= self.kimg:
                self.loss_history.append(entry)
        for key in ("last_checkpoint", "last_export", "last_sample", "started"):
            if previous.get(key):
                self.status[key] = previous[key]

    # Train step.

    def _build_train_step(self):
        import tensorflow as tf

        from gan.augment import diff_augment

        config = self.config
        global_batch = config.batch_size
        local_batch = global_batch // self.replicas
        latent_dim = config.model.latent_dim
        num_classes = config.model.num_classes
        generator, discriminator = self.generator, self.discriminator

        def seed_for(purpose: int):
            # Stateless seed from (run seed, step, purpose, replica): distinct
            # draws everywhere, identical on resume.
            replica = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int64)
            return tf.stack([tf.constant(config.seed, tf.int64) * 1000003 + purpose * 97 + replica, self.step])

        def fake_inputs(purpose: int):
            latent = tf.random.stateless_normal([local_batch, latent_dim], seed=seed_for(purpose))
            labels = tf.random.stateless_uniform([local_batch], seed=seed_for(purpose + 1), maxval=num_classes, dtype=tf.int32)
            return latent, labels

        def augment(images, purpose: int):
            return diff_augment(images, self.policy, seed_for(purpose)) if self.policy else images

        def scaled(loss, optimizer):
            return optimizer.scale_loss(loss) if config.mixed_precision else loss

        def d_step(real_images, real_labels, index: int):
            # Sample random points in the latent space and random classes.
            latent, fake_labels = fake_inputs(10 * index + 1)
            fake_images = generator((latent, fake_labels), training=True)

            # Train the discriminator on augmented real and fake images in one batch.
            with tf.GradientTape() as tape:
                images = tf.concat([augment(tf.cast(real_images, tf.float32), 10 * index + 3), augment(fake_images, 10 * index + 4)], axis=0)
                labels = tf.concat([real_labels, fake_labels], axis=0)
                scores = discriminator((images, labels), training=True)
                real_scores, fake_scores = scores[:local_batch], scores[local_batch:]
                per_example = tf.nn.relu(1.0 - real_scores) + tf.nn.relu(1.0 + fake_scores)
                loss_d = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            gradients = tape.gradient(scaled(loss_d, self.optimizer_d), discriminator.trainable_variables)
            self.optimizer_d.apply_gradients(zip(gradients, discriminator.trainable_variables))
            return loss_d, tf.reduce_mean(real_scores), tf.reduce_mean(fake_scores)

        def g_step():
            # Train the generator to raise D's score of its augmented images.
            latent, fake_labels = fake_inputs(1001)
            with tf.GradientTape() as tape:
                fake_images = generator((latent, fake_labels), training=True)
                scores = discriminator((augment(fake_images, 1003), fake_labels), training=True)
                loss_g = tf.nn.compute_average_loss(-scores, global_batch_size=global_batch)
            gradients = tape.gradient(scaled(loss_g, self.optimizer_g), generator.trainable_variables)
            self.optimizer_g.apply_gradients(zip(gradients, generator.trainable_variables))
            return loss_g

        def update_ema():
            # The EMA generator's half-life ramps up with the images shown.
            ema_nimg = tf.constant(config.ema_kimg * 1000.0, tf.float32)
            if config.ema_rampup > 0:
                ema_nimg = tf.minimum(ema_nimg, tf.cast(self.images_seen, tf.float32) * config.ema_rampup)
            beta = tf.pow(0.5, global_batch / tf.maximum(ema_nimg, 1e-8))
            for ema_weight, weight in zip(self.generator_ema.weights, generator.weights):
                if weight.trainable:
                    ema_weight.assign(weight + (ema_weight - weight) * tf.cast(beta, weight.dtype))
                else:
                    ema_weight.assign(weight)

        # The parts of one step, for gan-bench to time them one by one.
        self.step_parts = {"d_step": d_step, "g_step": g_step, "augment": augment, "update_ema": update_ema}

        def d_steps(batches):
            """Run one D update per batch; return the mean D loss and the last update's real and fake scores."""
            results = [d_step(images, labels, i) for i, (images, labels) in enumerate(batches)]
            return tf.add_n([r[0] for r in results]) / len(results), results[-1][1], results[-1][2]

        def replica_step(batches):
            loss_d, real_score, fake_score = d_steps(batches)
            return loss_d, g_step(), real_score, fake_score

        def replica_d_step(batches):
            loss_d, real_score, fake_score = d_steps(batches)
            # No G update, so the reported G loss is the one D's fake scores imply: -E[D(G(z))].
            return loss_d, -fake_score / self.replicas, real_score, fake_score

        def make_step(per_replica):
            @tf.function
            def step(iterator):
                self.trace_count += 1
                batches = [next(iterator) for _ in range(config.d_steps)]
                losses = self.strategy.run(per_replica, args=(batches,))
                loss_d, loss_g, real_score, fake_score = (self.strategy.reduce("SUM" if i < 2 else "MEAN", v, axis=None) for i, v in enumerate(losses))

                self.images_seen.assign_add(global_batch * config.d_steps)
                update_ema()
                self.step.assign_add(1)
                return {"loss_d": loss_d, "loss_g": loss_g, "real_score": real_score, "fake_score": fake_score}

            return step

        # During the warm-up (config.g_warmup_kimg) only D trains.
        self._warmup_step = make_step(replica_d_step)
        return make_step(replica_step)

    def make_iterator(self):
        pipeline = make_pipeline(self.dataset, self.config.batch_size, self.config.seed, start_image=int(self.images_seen.numpy()))
        return iter(self.strategy.experimental_distribute_dataset(pipeline))

    def run_steps(self, iterator, count: int) -> dict:
        """Run `count` train steps and return the last step's losses as floats."""
        if self._train_step is None:
            self._train_step = self._build_train_step()
        losses = {}
        warmup_images = self.config.g_warmup_kimg * 1000.0
        for _ in range(count):
            warming_up = warmup_images > 0 and self.images_seen.numpy() < warmup_images
            if not warming_up and self.status.get("warmup"):
                log.info("Warm-up over at %.1f kimg: G trains from now on", self.kimg)
            self.status["warmup"] = bool(warming_up)
            losses = (self._warmup_step if warming_up else self._train_step)(iterator)
        return {k: float(v) for k, v in losses.items()}

    # Snapshots.

    def save_checkpoint(self) -> str:
        path = self.manager.save(checkpoint_number=int(self.step.numpy()))
        self.status["last_checkpoint"] = {"path": self._relative(path), "kimg": round(self.kimg, 3), "time": _now()}
        log.info("Saved checkpoint %s (%.1f kimg)", path, self.kimg)
        return path

    def export(self):
        manifest = write_export(
            self.generator_ema,
            self.config.model,
            self.config.class_names,
            self.run_dir / "exports",
            step=int(self.step.numpy()),
            kimg=self.kimg,
            dataset=self.dataset.source,
            training_models={"generator": self.generator, "discriminator": self.discriminator},
        )
        self.status["last_export"] = {"path": self._relative(manifest.path), "kimg": round(manifest.kimg, 3), "step": manifest.step, "time": manifest.created}
        return manifest

    def _relative(self, path) -> str:
        """Return `path` relative to the run directory, as status.json stores it, so the run can be moved."""
        return Path(os.path.relpath(Path(path).resolve(), self.run_dir.resolve())).as_posix()

    def sample_inputs(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the fixed latent vectors and labels of every sample grid, one row per class."""
        rng = np.random.default_rng(self.config.seed + 12345)
        rows = self.config.model.num_classes
        latent = rng.standard_normal((rows * SAMPLE_COLUMNS, self.config.model.latent_dim)).astype(np.float32)
        labels = np.repeat(np.arange(rows, dtype=np.int32), SAMPLE_COLUMNS)
        return latent, labels

    def save_samples(self) -> Path:
        import tensorflow as tf

        from gan.images import render_grid, to_uint8

        latent, labels = self.sample_inputs()
        images = self.generator_ema((tf.constant(latent), tf.constant(labels)), training=False).numpy()
        pixels = to_uint8(images)
        path = self.run_dir / "samples" / f"fakes{int(self.kimg):06d}.png"
        if path.exists():  # an earlier grid within the same kimg: keep both
            path = path.with_name(f"{path.stem}-step{int(self.step.numpy())}.png")
        png = render_grid(pixels, size=32, columns=SAMPLE_COLUMNS, metadata={"kimg": f"{self.kimg:.1f}", "step": str(int(self.step.numpy()))})
        atomic_write_bytes(path, png)
        self.status["last_sample"] = {"path": self._relative(path), "kimg": round(self.kimg, 3)}
        if self._summary_writer is not None:
            with self._summary_writer.as_default(step=int(self.images_seen.numpy())):
                tf.summary.image("samples", _grid_tensor(pixels, SAMPLE_COLUMNS), max_outputs=1)
        return path

    def save_real_samples(self) -> None:
        from gan.images import render_grid

        path = self.run_dir / "samples" / "reals.png"
        if path.exists():
            return
        rng = np.random.default_rng(self.config.seed)
        picks = []
        for label in range(len(self.config.class_names)):
            indices = np.flatnonzero(self.dataset.labels == label)
            if indices.size:
                picks.extend(rng.choice(indices, size=SAMPLE_COLUMNS, replace=indices.size < SAMPLE_COLUMNS))
        atomic_write_bytes(path, render_grid(self.dataset.images[picks], size=32, columns=SAMPLE_COLUMNS))

    def snapshot(self) -> None:
        """Save a checkpoint, an export and a sample grid, once per step."""
        step = int(self.step.numpy())
        if step == self._snapshot_step:
            return
        self._snapshot_step = step
        self.save_checkpoint()
        self.export()
        self.save_samples()

    def evaluate_latest(self) -> dict | None:
        """Score the newest export with the shipped classifier and update best.json; None when unavailable."""
        from gan.evaluation import Evaluator, record_metrics
        from gan.exports import read_manifest

        if self._evaluator is None:
            try:
                from gan.metrics import ClassifierNetwork

                self._evaluator = Evaluator(ClassifierNetwork(), self.dataset)
            except (FileNotFoundError, OSError, ValueError) as error:
                log.warning("Evaluation during training is off: %s", error)
                self._evaluator = False
        if not self._evaluator:
            return None
        exports_dir = self.run_dir / "exports"
        manifest = read_manifest(exports_dir / "latest.json")
        result = self._evaluator.evaluate(manifest, self.config.eval_images)
        record_metrics(exports_dir, manifest, result)
        log.info("Evaluated %s: fd_cifar %.3f, class_match %.3f", manifest.path.name, result["fd_cifar"], result.get("class_match", float("nan")))
        return result

    # Status.

    def write_status(self, state: str, img_per_sec: float | None = None, losses: dict | None = None, error: str | None = None) -> None:
        total = self.config.total_kimg
        remaining = max(total - self.kimg, 0.0)
        self.status.update(
            {
                "state": state,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "preset": self.config.model.preset,
                "run_dir": str(self.run_dir.resolve()),
                "updated": _now(),
                "step": int(self.step.numpy()),
                "kimg": round(self.kimg, 3),
                "total_kimg": total,
                "error": error,
            }
        )
        self.status.setdefault("started", _now())
        if img_per_sec:
            self.status["img_per_sec"] = round(img_per_sec, 2)
            self.status["sec_per_kimg"] = round(1000.0 / img_per_sec, 2)
            eta = remaining * 1000.0 / img_per_sec if state == "running" else 0.0
            self.status["eta_seconds"] = round(eta, 1) if np.isfinite(eta) else None
        if losses:
            self.status["losses"] = {k: (round(v, 4) if np.isfinite(v) else None) for k, v in losses.items()}
        self.status["loss_history"] = list(self.loss_history)
        atomic_write_json(self.run_dir / STATUS_FILE, self.status)

    # Train.

    def _request_stop(self, signum, _frame) -> None:
        if self._stop_signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self._stop_signal = signum
        hint = " (press Ctrl-C again to abort without saving)" if signum == signal.SIGINT else ""
        log.info("Received %s: stopping after this step%s", signal.Signals(signum).name, hint)

    def train(self, max_steps: int | None = None) -> str:
        """Train until `total_kimg` (or `max_steps` more steps, or a stop signal); return the final state."""
        import tensorflow as tf

        config = self.config
        self._summary_writer = tf.summary.create_file_writer(str(self.run_dir / "logs"))
        previous_handlers = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                previous_handlers[signum] = signal.signal(signum, self._request_stop)
            except ValueError:  # not the main thread: the caller handles stopping
                pass

        try:
            return self._train_loop(max_steps)
        except Exception as error:
            log.exception("Training failed at %.1f kimg", self.kimg)
            self.write_status("failed", error=f"{type(error).__name__}: {error}")
            raise
        finally:
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
            self._summary_writer.close()
            self._summary_writer = None

    def _train_loop(self, max_steps: int | None) -> str:
        import tensorflow as tf

        config = self.config
        self.save_real_samples()

        # Export sample images at the start, so a fresh run has something to show.
        if self.status.get("last_sample") is None:
            self.save_samples()
        self.write_status("running")

        if self.kimg >= config.total_kimg:
            log.info("Nothing to train: the run is at %.1f kimg of %g. Pass a larger --kimg to continue it.", self.kimg, config.total_kimg)
            self.write_status("finished")
            return "finished"

        iterator = self.make_iterator()
        steps_done = 0
        tick_start_time, tick_start_kimg = time.perf_counter(), self.kimg
        next_tick = (int(self.kimg / config.tick_kimg) + 1) * config.tick_kimg
        next_snapshot = (int(self.kimg / config.snapshot_kimg) + 1) * config.snapshot_kimg
        next_eval = (int(self.kimg / config.eval_kimg) + 1) * config.eval_kimg if config.eval_kimg > 0 else float("inf")
        progress = _ProgressLine(config.total_kimg) if sys.stderr.isatty() else None
        log.info("Training %s from %.1f to %g kimg, batch %d on %d replica(s)", config.model.preset, self.kimg, config.total_kimg, config.batch_size, self.replicas)
        if self.kimg < config.g_warmup_kimg:
            # G's batch-norm statistics still follow its batches; its trainable weights stay fixed.
            log.info("Warm-up: only D trains until %g kimg; loss_g shows -D(G(z)) meanwhile", config.g_warmup_kimg)
            if config.g_warmup_kimg >= config.total_kimg:
                log.warning("The warm-up (%g kimg) lasts the whole run (%g kimg), so G will not train; pass a larger --kimg or a smaller --g-warmup-kimg.", config.g_warmup_kimg, config.total_kimg)

        while self.kimg < config.total_kimg:
            losses = self.run_steps(iterator, 1)
            steps_done += 1
            if progress:
                progress.update(self.kimg, losses)

            # Tick: log line, TensorBoard scalars and status.json.
            if self.kimg >= next_tick or self._stop_signal is not None or (max_steps and steps_done >= max_steps):
                elapsed = time.perf_counter() - tick_start_time
                img_per_sec = (self.kimg - tick_start_kimg) * 1000.0 / max(elapsed, 1e-9)
                self.loss_history.append({"kimg": round(self.kimg, 3), **{k: (round(v, 4) if np.isfinite(v) else None) for k, v in losses.items()}})
                with self._summary_writer.as_default(step=int(self.images_seen.numpy())):
                    for name, value in losses.items():
                        tf.summary.scalar(f"loss/{name}", value)
                    tf.summary.scalar("speed/img_per_sec", img_per_sec)
                eta = (config.total_kimg - self.kimg) * 1000.0 / max(img_per_sec, 1e-9)
                if progress:
                    progress.clear()
                log.info(
                    "kimg %.1f/%g  step %d  %.1f img/s  %.2f sec/kimg  loss_d %.3f  loss_g %.3f  ETA %s",
                    self.kimg, config.total_kimg, int(self.step.numpy()), img_per_sec, 1000.0 / max(img_per_sec, 1e-9),
                    losses["loss_d"], losses["loss_g"], _format_duration(eta),
                )
                self.write_status("running", img_per_sec, losses)
                tick_start_time, tick_start_kimg = time.perf_counter(), self.kimg
                next_tick = (int(self.kimg / config.tick_kimg) + 1) * config.tick_kimg

            if not np.isfinite(losses["loss_d"]) or not np.isfinite(losses["loss_g"]):
                kept = "the last checkpoint is kept, so lower the learning rates and --resume" if self.manager.latest_checkpoint else "lower the learning rates and start again"
                raise TrainingError(f"Losses are not finite at {self.kimg:.1f} kimg ({losses}); {kept}.")

            # Snapshot: checkpoint, export and sample grid.
            if self.kimg >= next_snapshot:
                self.snapshot()
                self.write_status("running")
                next_snapshot = (int(self.kimg / config.snapshot_kimg) + 1) * config.snapshot_kimg

            # Evaluate the newest export and keep best.json.
            if config.eval_kimg > 0 and self.kimg >= next_eval:
                self.snapshot()
                self.evaluate_latest()
                next_eval = (int(self.kimg / config.eval_kimg) + 1) * config.eval_kimg

            if self._stop_signal is not None:
                self.snapshot()
                self.write_status("stopped")
                log.info("Stopped at %.1f kimg; resume with --resume", self.kimg)
                return "stopped"
            if max_steps and steps_done >= max_steps:
                break

        # Finish.
        if progress:
            progress.clear()
        self.snapshot()
        state = "finished" if self.kimg >= config.total_kimg else "stopped"
        self.write_status(state)
        log.info("Training %s at %.1f kimg", state, self.kimg)
        return state


def _variable_group(variables):
    """Group variables for tf.train.Checkpoint, keyed by their position.

    tf.train.Checkpoint does not follow the layer lists inside Keras 3 models,
    so tracking the models themselves would silently skip the residual blocks.
    The position in `model.weights` is fixed by the architecture, unlike the
    auto-numbered layer names, so it is a stable key across processes.
    """
    import tensorflow as tf

    return tf.train.Checkpoint(**{f"v{index:04d}": getattr(v, "value", v) for index, v in enumerate(variables)})


def _grid_tensor(pixels: np.ndarray, columns: int):
    rows = len(pixels) // columns
    grid = pixels[: rows * columns].reshape(rows, columns, *pixels.shape[1:])
    grid = grid.transpose(0, 2, 1, 3, 4).reshape(rows * pixels.shape[1], columns * pixels.shape[2], 3)
    return grid[None]


def _format_duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "unknown"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class _ProgressLine:
    """A one-line progress bar on a terminal, redrawn in place."""

    def __init__(self, total_kimg: float, width: int = 30):
        self.total = total_kimg
        self.width = width

    def update(self, kimg: float, losses: dict) -> None:
        done = int(self.width * min(kimg / self.total, 1.0))
        bar = "#" * done + "." * (self.width - done)
        sys.stderr.write(f"\r[{bar}] {kimg:.1f}/{self.total:.0f} kimg  loss_d {losses['loss_d']:.3f}  loss_g {losses['loss_g']:.3f} ")
        sys.stderr.flush()

    def clear(self) -> None:
        sys.stderr.write("\r" + " " * (self.width + 70) + "\r")
        sys.stderr.flush()


def load_run_config(run_dir: Path) -> TrainConfig:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise TrainingError(f"Nothing to resume in {run_dir}: {CONFIG_FILE} is missing. Start a new run without --resume.")
    try:
        return TrainConfig.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise TrainingError(f"Cannot read {path}: {error}. Is this a run directory?") from None
