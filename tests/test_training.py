"""Models and the training loop on the tiny preset: shapes, steps, exact resume, exports."""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from cifar_fixtures import real_cifar_archive, small_archive  # noqa: F401
from gan.config import CIFAR10_CLASSES, PRESETS, TrainConfig
from gan.data import load_dataset
from gan.exports import ExportError, hash_export, load_export_weights, read_manifest, write_export
from gan.models import build_discriminator, build_generator
from gan.training import Trainer, TrainingError

TINY = PRESETS["tiny"]


def tiny_config(archive, **overrides) -> TrainConfig:
    values = dict(model=TINY, data=str(archive), batch_size=8, total_kimg=1.0, tick_kimg=0.016, snapshot_kimg=0.5)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def dataset(small_archive):
    return load_dataset(small_archive)


@pytest.mark.parametrize("preset", ["tiny", "dense"])
def test_generator_output_shape_every_class(preset):
    config = PRESETS[preset]
    generator = build_generator(config)
    labels = tf.range(config.num_classes)
    images = generator((tf.random.normal((config.num_classes, config.latent_dim)), labels), training=False)
    assert images.shape == (10, 32, 32, 3)
    assert float(tf.reduce_max(tf.abs(images))) <= 1.0


@pytest.mark.parametrize("preset", ["tiny", "dense"])
def test_discriminator_output_shape(preset):
    config = PRESETS[preset]
    scores = build_discriminator(config)((tf.zeros((4, 32, 32, 3)), tf.constant([0, 3, 7, 9])), training=False)
    assert scores.shape == (4,)


def test_generator_class_changes_image():
    generator = build_generator(TINY)
    latent = tf.random.normal((1, TINY.latent_dim))
    cat = generator((latent, tf.constant([3])), training=False)
    dog = generator((latent, tf.constant([5])), training=False)
    # Freshly built conditional BN starts at identity; perturb one class's shift.
    norm = generator.blocks[0].norm1
    norm.beta.assign(norm.beta + tf.one_hot([5], TINY.num_classes)[0][:, None] * 0.5)
    dog_after = generator((latent, tf.constant([5])), training=False)
    assert np.allclose(cat.numpy(), dog.numpy())
    assert not np.allclose(dog.numpy(), dog_after.numpy())


def test_step_changes_weights_finite_losses(dataset, tmp_path):
    trainer = Trainer(tiny_config(dataset.source), tmp_path / "run", dataset)
    trainer.prepare_run_dir(resume=False)
    before_g = [w.numpy().copy() for w in trainer.generator.trainable_variables]
    before_d = [w.numpy().copy() for w in trainer.discriminator.trainable_variables]
    losses = trainer.run_steps(trainer.make_iterator(), 1)
    assert np.isfinite(losses["loss_d"])
    assert np.isfinite(losses["loss_g"])
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(before_g, trainer.generator.trainable_variables))
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(before_d, trainer.discriminator.trainable_variables))


def test_train_step_traces_once(dataset, tmp_path):
    trainer = Trainer(tiny_config(dataset.source), tmp_path / "run", dataset)
    trainer.prepare_run_dir(resume=False)
    trainer.run_steps(trainer.make_iterator(), 3)
    assert trainer.trace_count == 1


def _all_weights(trainer: Trainer) -> list[np.ndarray]:
    models = (trainer.generator, trainer.discriminator, trainer.generator_ema)
    weights = [w.numpy() for model in models for w in model.weights]
    weights += [v.numpy() for v in trainer.optimizer_g.variables + trainer.optimizer_d.variables]
    return weights


def test_resume_matches_straight_run(dataset, tmp_path):
    config = tiny_config(dataset.source)

    straight = Trainer(config, tmp_path / "straight", dataset)
    straight.prepare_run_dir(resume=False)
    straight.run_steps(straight.make_iterator(), 4)

    first = Trainer(config, tmp_path / "resumed", dataset)
    first.prepare_run_dir(resume=False)
    first.run_steps(first.make_iterator(), 2)
    first.save_checkpoint()

    second = Trainer(config, tmp_path / "resumed", dataset)
    second.prepare_run_dir(resume=True)
    assert int(second.step.numpy()) == 2
    second.run_steps(second.make_iterator(), 2)

    for expected, actual in zip(_all_weights(straight), _all_weights(second)):
        np.testing.assert_array_equal(expected, actual)


def test_resume_incompatible_config_rejected(dataset, tmp_path):
    trainer = Trainer(tiny_config(dataset.source), tmp_path / "run", dataset)
    trainer.prepare_run_dir(resume=False)
    trainer.save_checkpoint()
    other = Trainer(tiny_config(dataset.source, batch_size=16), tmp_path / "run", dataset)
    with pytest.raises(TrainingError, match="batch size 8 != 16"):
        other.prepare_run_dir(resume=True)


def test_existing_run_without_resume_rejected(dataset, tmp_path):
    trainer = Trainer(tiny_config(dataset.source), tmp_path / "run", dataset)
    trainer.prepare_run_dir(resume=False)
    trainer.save_checkpoint()
    with pytest.raises(TrainingError, match="--resume"):
        Trainer(tiny_config(dataset.source), tmp_path / "run", dataset).prepare_run_dir(resume=False)


def test_train_writes_run_directory(dataset, tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(tiny_config(dataset.source, total_kimg=0.064, snapshot_kimg=0.032), run, dataset)
    trainer.prepare_run_dir(resume=False)
    assert trainer.train() == "finished"

    status = json.loads((run / "status.json").read_text())
    manifest = read_manifest(run / "exports" / "latest.json")
    assert status["state"] == "finished"
    assert status["kimg"] == pytest.approx(0.064)
    assert (run / status["last_export"]["path"]).resolve() == manifest.path
    assert (run / status["last_sample"]["path"]).is_file()
    assert not Path(status["last_sample"]["path"]).is_absolute()
    assert manifest.sha256 == hash_export(manifest.path)
    assert manifest.class_names == dataset.class_names
    assert json.loads((run / "config.json").read_text())["model"]["preset"] == "tiny"
    assert list((run / "logs").iterdir())


def test_sample_grids_within_one_kimg_are_all_kept(dataset, tmp_path):
    trainer = Trainer(tiny_config(dataset.source), tmp_path / "run", dataset)
    trainer.prepare_run_dir(resume=False)
    iterator = trainer.make_iterator()
    first = trainer.save_samples()
    trainer.run_steps(iterator, 1)
    second = trainer.save_samples()
    assert first.name == "fakes000000.png"
    assert second.name == "fakes000000-step1.png"
    assert first.is_file()
    assert second.is_file()
    assert first.read_bytes() != second.read_bytes()
    assert trainer.status["last_sample"]["path"] == "samples/fakes000000-step1.png"


def test_export_serves_ema_generator(dataset, tmp_path):
    trainer = Trainer(tiny_config(dataset.source), tmp_path / "run", dataset)
    trainer.prepare_run_dir(resume=False)
    trainer.run_steps(trainer.make_iterator(), 2)
    manifest = trainer.export()
    serve = tf.saved_model.load(str(manifest.path)).signatures["serving_default"]
    latent = tf.random.normal((3, TINY.latent_dim))
    labels = tf.constant([1, 2, 3])
    exported = serve(latent=latent, label=labels)["images"].numpy()
    expected = trainer.generator_ema((latent, labels), training=False).numpy()
    np.testing.assert_allclose(exported, expected, atol=1e-6)


def test_manifest_reader_never_sees_partial_export(dataset, tmp_path):
    trainer = Trainer(tiny_config(dataset.source), tmp_path / "run", dataset)
    trainer.prepare_run_dir(resume=False)
    manifest_path = tmp_path / "run" / "exports" / "latest.json"
    trainer.export()
    failures: list[str] = []
    loads = []
    done = threading.Event()

    def reader():
        while not done.is_set():
            try:
                manifest = read_manifest(manifest_path)
                if hash_export(manifest.path) != manifest.sha256:
                    failures.append(f"hash mismatch for {manifest.path}")
                tf.saved_model.load(str(manifest.path))
                loads.append(manifest.step)
            except (ExportError, OSError) as error:
                failures.append(str(error))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(4):
            trainer.run_steps(trainer.make_iterator(), 1)
            trainer.export()
    finally:
        done.set()
        thread.join(timeout=60)
    assert failures == []
    assert len(loads) > 0


def test_two_logical_cpus_train(tmp_path, small_archive):
    import subprocess
    import sys

    run = tmp_path / "run"
    command = [sys.executable, "-m", "gan.cli.train", "--data", str(small_archive), "--preset", "tiny", "--out", str(run), "--batch", "8", "--kimg", "1", "--max-steps", "2", "--cpu-replicas", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "on 2 replica(s)" in result.stderr
    status = json.loads((run / "status.json").read_text())
    assert status["step"] == 2


def test_odd_batch_rejected_on_two_replicas(tmp_path, small_archive):
    import subprocess
    import sys

    command = [sys.executable, "-m", "gan.cli.train", "--data", str(small_archive), "--preset", "tiny", "--out", str(tmp_path / "run"), "--batch", "7", "--cpu-replicas", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 2
    assert "does not divide across 2 replicas" in result.stderr


def test_dense_preset_trains(dataset, tmp_path):
    config = dataclasses.replace(tiny_config(dataset.source), model=PRESETS["dense"])
    trainer = Trainer(config, tmp_path / "run", dataset)
    trainer.prepare_run_dir(resume=False)
    losses = trainer.run_steps(trainer.make_iterator(), 2)
    assert np.isfinite(losses["loss_g"])


def test_real_cifar10_steps(real_cifar_archive, tmp_path):
    dataset = load_dataset(real_cifar_archive)
    trainer = Trainer(tiny_config(str(real_cifar_archive), batch_size=16), tmp_path / "run", dataset)
    trainer.prepare_run_dir(resume=False)
    losses = trainer.run_steps(trainer.make_iterator(), 3)
    assert np.isfinite(losses["loss_d"])
    assert np.isfinite(losses["loss_g"])
    assert trainer.kimg == pytest.approx(0.048)


def test_manifest_path_outside_exports_rejected(tmp_path):
    manifest = tmp_path / "exports" / "latest.json"
    manifest.parent.mkdir()
    manifest.write_text(json.dumps({"format": 1, "path": "/etc", "step": 1, "kimg": 1, "created": "x", "model": TINY.to_dict(), "class_names": ["a"], "sha256": "0"}))
    with pytest.raises(ExportError, match="beside the manifest"):
        read_manifest(manifest)


# Starting a run from an export.


def test_load_export_weights_reproduces_the_export(tiny_generator, tmp_path):
    source = build_generator(TINY)
    for target, weight in zip(source.weights, tiny_generator.weights):
        target.assign(weight)
    # Batch-norm statistics away from their initial 0 and 1, so a skipped one shows.
    source((tf.random.normal((16, TINY.latent_dim)), tf.range(16) % 10), training=True)
    export = write_export(source, TINY, CIFAR10_CLASSES, tmp_path / "exports", step=1, kimg=0.1).path
    fresh = build_generator(TINY)
    load_export_weights(fresh, export, TINY, CIFAR10_CLASSES)
    for loaded, weight in zip(fresh.weights, source.weights):
        assert np.array_equal(loaded.numpy(), weight.numpy()), weight.path
    latent = tf.random.stateless_normal((10, TINY.latent_dim), seed=(1, 2))
    labels = tf.range(10)
    served = tf.saved_model.load(str(export)).signatures["serving_default"](latent=latent, label=labels)["images"]
    assert np.array_equal(fresh((latent, labels), training=False).numpy(), served.numpy())


def test_load_export_weights_rejects_another_preset(tiny_run_dir):
    export = read_manifest(tiny_run_dir / "exports" / "latest.json").path
    with pytest.raises(ExportError, match="choose a matching --preset"):
        load_export_weights(build_generator(PRESETS["small"]), export, PRESETS["small"], CIFAR10_CLASSES)


@pytest.mark.parametrize("damage", ["index", "data"])
def test_load_export_weights_rejects_damaged_variables(tiny_run_dir, tmp_path, damage):
    export = tmp_path / "broken"
    shutil.copytree(read_manifest(tiny_run_dir / "exports" / "latest.json").path, export)
    if damage == "index":
        (export / "variables" / "variables.index").write_bytes(b"not an index")
    else:
        (export / "variables" / "variables.data-00000-of-00001").unlink()
    generator = build_generator(TINY)
    before = [w.numpy().copy() for w in generator.weights]
    with pytest.raises(ExportError, match="unreadable"):
        load_export_weights(generator, export, TINY, CIFAR10_CLASSES)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, generator.weights))


def test_load_export_weights_rejects_a_run_dir(tiny_run_dir):
    with pytest.raises(ExportError, match="pass one export in it"):
        load_export_weights(build_generator(TINY), tiny_run_dir, TINY, CIFAR10_CLASSES)


def test_init_generator_then_d_only_warmup(dataset, tiny_generator, tiny_run_dir, tmp_path):
    export = read_manifest(tiny_run_dir / "exports" / "latest.json").path
    # Warm-up for 2 steps of 8 images, then normal steps.
    trainer = Trainer(tiny_config(dataset.source, init_generator=str(export), g_warmup_kimg=0.016, ema_rampup=0.0), tmp_path / "run", dataset)
    trainer.prepare_run_dir(resume=False)
    for loaded, source in zip(trainer.generator.weights, tiny_generator.weights):
        assert np.array_equal(loaded.numpy(), source.numpy())
    for ema, source in zip(trainer.generator_ema.weights, tiny_generator.weights):
        assert np.array_equal(ema.numpy(), source.numpy())

    iterator = trainer.make_iterator()
    start_g = [w.numpy().copy() for w in trainer.generator.trainable_variables]
    start_d = [w.numpy().copy() for w in trainer.discriminator.trainable_variables]
    losses = trainer.run_steps(iterator, 2)
    assert losses["loss_g"] == pytest.approx(-losses["fake_score"])
    assert trainer.status["warmup"] is True
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(start_g, trainer.generator.trainable_variables))
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(start_d, trainer.discriminator.trainable_variables))

    trainer.run_steps(iterator, 1)
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(start_g, trainer.generator.trainable_variables))
    assert trainer.status["warmup"] is False


def test_init_generator_from_a_missing_export(dataset, tmp_path):
    trainer = Trainer(tiny_config(dataset.source, init_generator=str(tmp_path / "nothing")), tmp_path / "run", dataset)
    with pytest.raises(TrainingError, match="export.json is missing"):
        trainer.prepare_run_dir(resume=False)


def test_init_generator_continues_g_and_d(dataset, tmp_path):
    source = Trainer(tiny_config(dataset.source), tmp_path / "source", dataset)
    source.prepare_run_dir(resume=False)
    source.run_steps(source.make_iterator(), 2)
    export = source.export().path
    assert (export / "training" / "discriminator.weights.h5").is_file()

    follower = Trainer(tiny_config(dataset.source, init_generator=str(export), ema_rampup=0.0), tmp_path / "follower", dataset)
    follower.prepare_run_dir(resume=False)
    for model in ("generator", "discriminator", "generator_ema"):
        for loaded, original in zip(getattr(follower, model).weights, getattr(source, model).weights):
            assert np.array_equal(loaded.numpy(), original.numpy()), f"{model}: {original.path}"
    # Raw G and its EMA differ after two steps, so the raw one really came from training/.
    assert any(not np.array_equal(a.numpy(), b.numpy()) for a, b in zip(follower.generator.weights, follower.generator_ema.weights))
