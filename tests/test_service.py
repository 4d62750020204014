"""Tests of the generation service against real exports of the tiny preset."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from gan.config import CIFAR10_CLASSES, PRESETS
from gan.exports import (
    BEST,
    EXPORT_INFO,
    LATEST,
    atomic_write_json,
    hash_export,
    read_export_info,
    read_manifest,
    update_manifest_metrics,
    write_export,
)
from gan.models import build_generator
from gan.service import (
    GenerationError,
    GenerationService,
    ModelUnavailable,
    generation_metadata,
)

SERVICE_LOGGER = "gan.service"


# Fixtures and helpers.


@pytest.fixture(scope="module")
def export_pool(tmp_path_factory, tiny_run_dir, tiny_generator):
    """Source exports to publish into test run directories: two weight sets and one that outputs NaN."""
    pool = tmp_path_factory.mktemp("pool")
    other = write_export(
        build_generator(PRESETS["tiny"]), PRESETS["tiny"], CIFAR10_CLASSES, pool / "other", step=1, kimg=1.0
    )

    # Export the shared generator with a NaN output bias, then restore the bias.
    bias = tiny_generator.to_rgb.bias
    saved_bias = bias.numpy()
    try:
        bias.assign(np.full(3, np.nan, dtype=np.float32))
        nan = write_export(tiny_generator, PRESETS["tiny"], CIFAR10_CLASSES, pool / "nan", step=1, kimg=1.0)
    finally:
        bias.assign(saved_bias)
    return {
        "first": read_manifest(tiny_run_dir / "exports" / LATEST).path,
        "other": other.path,
        "nan": nan.path,
    }


def publish(
    run_dir: Path,
    source: Path,
    step: int,
    manifest_name: str = LATEST,
    sha256: str | None = None,
    class_names: tuple[str, ...] | None = None,
) -> Path:
    """Copy an export into `run_dir` as step `step` and point the manifest at it, as the trainer does.

    `sha256` replaces the correct hash in the manifest, `class_names` the export's class names.
    """
    exports = run_dir / "exports"
    target = exports / f"generator-step{step}"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    info = json.loads((target / EXPORT_INFO).read_text())
    info.update(step=step, kimg=step * 0.064)
    if class_names is not None:
        info["class_names"] = list(class_names)
    atomic_write_json(target / EXPORT_INFO, info)

    manifest = read_export_info(target)
    manifest.sha256 = sha256 if sha256 is not None else hash_export(target)
    atomic_write_json(exports / manifest_name, manifest.to_dict(exports))
    return target


def bump_mtime(path: Path) -> None:
    """Change a file's mtime without changing its content, as a rewrite with the same bytes would."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def error_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == SERVICE_LOGGER and r.levelno >= logging.ERROR]


@pytest.fixture
def run_dir(tmp_path, export_pool) -> Path:
    run_dir = tmp_path / "run"
    publish(run_dir, export_pool["first"], step=100)
    return run_dir


@pytest.fixture
def service(run_dir):
    service = GenerationService(run_dir=run_dir, poll_interval=600)  # polled by hand in these tests
    service.start()
    yield service
    service.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory, export_pool):
    """One started service on a run directory, for tests that change neither."""
    run_dir = tmp_path_factory.mktemp("shared-run")
    publish(run_dir, export_pool["first"], step=100)
    service = GenerationService(run_dir=run_dir, poll_interval=600)
    service.start()
    yield service
    service.close()


def mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.float64) - b.astype(np.float64))))


# Generation.


def test_generate_shape_and_dtype(shared):
    result = shared.generate(count=6, seed=1)
    assert result.images.shape == (6, 32, 32, 3)
    assert result.images.dtype == np.uint8
    assert len(result.labels) == 6
    assert len(result.class_names) == 6


def test_generate_same_seed_identical(shared):
    first = shared.generate("cat", count=8, seed=123)
    second = shared.generate("cat", count=8, seed=123)
    assert np.array_equal(first.images, second.images)


def test_generate_random_classes_reproducible(shared):
    first = shared.generate("random", count=16, seed=5)
    second = shared.generate("random", count=16, seed=5)
    assert first.labels == second.labels
    assert np.array_equal(first.images, second.images)
    assert len(set(first.labels)) > 1  # 16 draws from 10 classes are all equal with chance 1e-15


def test_generate_different_seeds_differ(shared):
    first = shared.generate("cat", count=4, seed=1)
    second = shared.generate("cat", count=4, seed=2)
    assert not np.array_equal(first.images, second.images)


def test_generate_fixed_class_labels(shared):
    result = shared.generate("Ship", count=3, seed=0)
    assert result.labels == (8, 8, 8)
    assert result.class_names == ("ship", "ship", "ship")


def test_generate_class_changes_image(shared):
    cat = shared.generate("cat", count=2, seed=9)
    dog = shared.generate("dog", count=2, seed=9)
    assert not np.array_equal(cat.images, dog.images)


def test_generate_draws_seed(shared):
    result = shared.generate(count=2)
    assert 0 <= result.seed <= GenerationService.MAX_SEED
    again = shared.generate(count=2, seed=result.seed)
    assert np.array_equal(result.images, again.images)


def test_drawn_seeds_fit_discord_options(shared):
    # Discord integer options stop at 2**53 - 1, so every drawn seed must be below it.
    seeds = [shared.generate(count=1).seed for _ in range(20)]
    variation_seeds = [shared.generate(count=1, seed=1, variation=0.1).variation_seed for _ in range(5)]
    assert max(seeds) <= 2**53 - 1
    assert max(variation_seeds) <= 2**53 - 1
    assert len(set(seeds)) == 20


def test_generate_prefix_matches_smaller_count(shared):
    small = shared.generate("bird", count=2, seed=77)
    large = shared.generate("bird", count=8, seed=77)
    assert np.abs(small.images.astype(int) - large.images[:2].astype(int)).max() <= 1


def test_generate_returns_served_model(shared):
    assert shared.generate(count=1, seed=3).model == shared.served


@pytest.mark.parametrize("count", [0, 65, -3])
def test_generate_count_out_of_range(shared, count):
    with pytest.raises(GenerationError, match=rf"Count {count} is out of range 1\.\.64"):
        shared.generate(count=count, seed=1)


@pytest.mark.parametrize("count", ["4", 2.0, True])
def test_generate_count_not_integer(shared, count):
    with pytest.raises(GenerationError, match="Invalid count"):
        shared.generate(count=count, seed=1)


@pytest.mark.parametrize("seed", [-1, 2**63])
def test_generate_seed_out_of_range(shared, seed):
    with pytest.raises(GenerationError, match=rf"Seed {seed} is out of range 0\.\."):
        shared.generate(count=1, seed=seed)


def test_generate_seed_max_accepted(shared):
    assert shared.generate(count=1, seed=2**63 - 1).seed == 2**63 - 1


# Classes.


@pytest.mark.parametrize(
    "value, expected",
    [("cat", 3), ("CAT", 3), (" truck ", 9), (3, 3), ("3", 3), (np.int64(0), 0), ("random", None), ("Random", None)],
)
def test_resolve_class_accepts(shared, value, expected):
    assert shared.resolve_class(value) == expected


def test_resolve_class_unknown_suggests(shared):
    with pytest.raises(GenerationError) as error:
        shared.resolve_class("kat")
    message = str(error.value)
    assert message.startswith("Unknown class 'kat'.")
    assert "Did you mean 'cat'?" in message
    assert "Classes: airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck, random." in message


def test_resolve_class_no_close_match(shared):
    with pytest.raises(GenerationError) as error:
        shared.resolve_class("zzzzzz")
    assert "Did you mean" not in str(error.value)


@pytest.mark.parametrize("value", [10, "10", -1])
def test_resolve_class_index_out_of_range(shared, value):
    with pytest.raises(GenerationError, match=r"out of range 0\.\.9"):
        shared.resolve_class(value)


def test_resolve_class_rejects_bool(shared):
    with pytest.raises(GenerationError):
        shared.resolve_class(True)


def test_class_names_from_manifest(shared):
    assert shared.class_names == CIFAR10_CLASSES


# Variations.


def test_variation_differs_but_close(shared):
    original = shared.generate("horse", count=8, seed=11)
    varied = shared.generate("horse", count=8, seed=11, variation=0.2, variation_seed=1)
    other = shared.generate("horse", count=8, seed=12)
    assert not np.array_equal(original.images, varied.images)
    assert mean_difference(original.images, varied.images) < 0.5 * mean_difference(original.images, other.images)


def test_variation_reproducible(shared):
    first = shared.generate("random", count=4, seed=11, variation=0.3, variation_seed=8)
    second = shared.generate("random", count=4, seed=11, variation=0.3, variation_seed=8)
    assert np.array_equal(first.images, second.images)
    assert first.labels == shared.generate("random", count=4, seed=11).labels


def test_variation_draws_seed(shared):
    result = shared.generate(count=2, seed=4, variation=0.3)
    assert result.variation_seed is not None
    again = shared.generate(count=2, seed=4, variation=0.3, variation_seed=result.variation_seed)
    assert np.array_equal(result.images, again.images)


@pytest.mark.parametrize("variation", [-0.1, 1.5, float("nan"), "much"])
def test_variation_out_of_range(shared, variation):
    with pytest.raises(GenerationError, match="ariation"):
        shared.generate(count=1, seed=1, variation=variation)


# Walks.


def test_walk_seeds_frame_count(shared):
    result = shared.walk(seed_a=1, seed_b=2, class_a="cat", frames=7)
    assert result.images.shape == (7, 32, 32, 3)
    assert result.labels == (3,) * 7


def test_walk_seeds_ends_match_generate(shared):
    result = shared.walk(seed_a=1, seed_b=2, class_a="cat", frames=5)
    start = shared.generate("cat", count=1, seed=1).images[0]
    end = shared.generate("cat", count=1, seed=2).images[0]
    assert np.abs(result.images[0].astype(int) - start.astype(int)).max() <= 1
    assert np.abs(result.images[-1].astype(int) - end.astype(int)).max() <= 1


def test_walk_seeds_random_class_from_seed(shared):
    result = shared.walk(seed_a=21, seed_b=22, frames=3)
    assert result.labels[0] == shared.generate(count=1, seed=21).labels[0]


def test_walk_frames_differ(shared):
    result = shared.walk(seed_a=1, seed_b=2, class_a="cat", frames=4)
    assert not np.array_equal(result.images[0], result.images[-1])


def test_walk_classes_frame_count(shared):
    result = shared.walk(seed_a=3, class_a="cat", class_b="dog", frames=6)
    assert result.images.shape == (6, 32, 32, 3)
    assert result.labels == (3, 3, 3, 5, 5, 5)


def test_walk_classes_ends_match_generate(shared):
    result = shared.walk(seed_a=3, class_a="cat", class_b="dog", frames=4)
    start = shared.generate("cat", count=1, seed=3).images[0]
    end = shared.generate("dog", count=1, seed=3).images[0]
    assert np.abs(result.images[0].astype(int) - start.astype(int)).max() <= 1
    assert np.abs(result.images[-1].astype(int) - end.astype(int)).max() <= 1


@pytest.mark.parametrize("targets", [{}, {"seed_b": 2, "class_b": "dog"}])
def test_walk_needs_one_target(shared, targets):
    with pytest.raises(GenerationError, match="exactly one walk target"):
        shared.walk(seed_a=1, **targets)


@pytest.mark.parametrize("frames", [1, 65])
def test_walk_frames_out_of_range(shared, frames):
    with pytest.raises(GenerationError, match=r"out of range 2\.\.64"):
        shared.walk(seed_a=1, seed_b=2, frames=frames)


def test_walk_unknown_class(shared):
    with pytest.raises(GenerationError, match="Did you mean 'dog'"):
        shared.walk(seed_a=1, class_a="cat", class_b="dgo")


def test_generation_metadata_fields(shared):
    metadata = generation_metadata(shared.generate("cat", count=2, seed=42))
    assert metadata["seed"] == "42"
    assert metadata["classes"] == "cat, cat"
    assert metadata["export step"] == "100"
    assert metadata["Software"].startswith("cifar-gan-bot")


# Loading.


def test_start_serves_run_manifest(shared):
    served = shared.served
    assert served.source == "run"
    assert served.step == 100
    assert served.kimg == pytest.approx(6.4)
    assert served.preset == "tiny"
    assert served.sha256 == hash_export(Path(served.path))
    assert served.loaded_at.tzinfo is not None


def test_start_reports_device(shared):
    assert shared.device in ("/CPU:0", "/GPU:0")


def test_start_missing_run_dir(tmp_path):
    with pytest.raises(ModelUnavailable, match="not found.*gan-train"):
        GenerationService(run_dir=tmp_path / "nowhere").start()


def test_start_run_without_export(tmp_path):
    with pytest.raises(ModelUnavailable, match="has no export yet"):
        GenerationService(run_dir=tmp_path).start()


def test_start_manifest_names_missing_export(run_dir):
    shutil.rmtree(run_dir / "exports" / "generator-step100")
    with pytest.raises(ModelUnavailable, match="not found"):
        GenerationService(run_dir=run_dir).start()


def test_start_sha256_mismatch(run_dir, export_pool):
    publish(run_dir, export_pool["first"], step=100, sha256="0" * 64)
    with pytest.raises(ModelUnavailable, match="sha256 mismatch"):
        GenerationService(run_dir=run_dir).start()


def test_start_malformed_manifest(run_dir):
    (run_dir / "exports" / LATEST).write_text("{not json")
    with pytest.raises(ModelUnavailable, match="not valid JSON"):
        GenerationService(run_dir=run_dir).start()


def test_start_failed_can_retry(tmp_path, export_pool):
    service = GenerationService(run_dir=tmp_path, poll_interval=600)
    with pytest.raises(ModelUnavailable):
        service.start()
    publish(tmp_path, export_pool["first"], step=100)
    service.start()
    assert service.served.step == 100
    service.close()


def test_start_twice_rejected(shared):
    with pytest.raises(RuntimeError):
        shared.start()


def test_best_manifest_served(run_dir, export_pool):
    publish(run_dir, export_pool["other"], step=50, manifest_name=BEST)
    service = GenerationService(run_dir=run_dir, manifest="best", poll_interval=600)
    service.start()
    assert service.served.step == 50
    service.close()


def test_best_falls_back_to_latest(run_dir):
    service = GenerationService(run_dir=run_dir, manifest="best", poll_interval=600)
    service.start()
    assert service.served.step == 100
    service.close()


def test_export_path_records_hash(export_pool):
    service = GenerationService(export_path=export_pool["other"])
    service.start()
    assert service.served.source == "export"
    assert service.served.sha256 == hash_export(export_pool["other"])
    service.close()


def test_export_path_missing(tmp_path):
    with pytest.raises(ModelUnavailable, match="not found"):
        GenerationService(export_path=tmp_path / "nowhere").start()


def test_export_path_run_dir_hint(run_dir):
    with pytest.raises(ModelUnavailable, match="looks like a run directory"):
        GenerationService(export_path=run_dir).start()


def test_export_path_truncated_variables(tmp_path, export_pool):
    export = tmp_path / "export"
    shutil.copytree(export_pool["first"], export)
    data = export / "variables" / "variables.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(ModelUnavailable, match="TensorFlow failed to load it"):
        GenerationService(export_path=export).start()


def test_pretrained_missing(tmp_path):
    with pytest.raises(ModelUnavailable) as error:
        GenerationService(pretrained_dir=tmp_path).start()
    message = str(error.value)
    assert "no pretrained model is shipped" in message
    assert "gan-train --data PATH --preset small --out runs/NAME" in message
    assert "GAN_RUN_DIR" in message


def test_pretrained_served(tmp_path, export_pool):
    package = tmp_path / "pretrained"
    publish(package, export_pool["first"], step=100)
    # The shipped layout: the manifest and the export directory side by side.
    shutil.move(package / "exports" / LATEST, package / LATEST)
    shutil.move(package / "exports" / "generator-step100", package / "generator-step100")
    manifest = json.loads((package / LATEST).read_text())
    manifest["path"] = "generator-step100"
    atomic_write_json(package / LATEST, manifest)

    service = GenerationService(pretrained_dir=package)
    service.start()
    assert service.served.source == "pretrained"
    assert service.served.step == 100
    service.close()


def test_generate_before_start_unavailable(run_dir):
    with pytest.raises(ModelUnavailable, match="start"):
        GenerationService(run_dir=run_dir).generate(count=1, seed=1)


# Hot reload.


def test_reload_swaps_new_export(service, run_dir, export_pool):
    before = service.generate("cat", count=2, seed=1).images
    publish(run_dir, export_pool["other"], step=200)
    assert service.check_for_update() is True
    assert service.served.step == 200
    assert service.last_reload_error is None
    assert not np.array_equal(service.generate(3, count=2, seed=1).images, before)
    assert service.generate("cat", count=1, seed=1).class_names == ("cat",)


def test_reload_unchanged_manifest(shared):
    bump_mtime(Path(shared.served.path).parent / LATEST)
    assert shared.check_for_update() is False
    assert shared.last_reload_error is None


def test_reload_metrics_refreshed(service, run_dir):
    exports = run_dir / "exports"
    update_manifest_metrics(exports / LATEST, exports / "generator-step100", {"fid": 42.0})
    assert service.check_for_update() is False
    assert service.served.metrics == {"fid": 42.0}


def test_reload_truncated_export_skipped(service, run_dir, export_pool, caplog):
    export = publish(run_dir, export_pool["other"], step=200)
    data = export / "variables" / "variables.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:100])
    manifest = read_export_info(export)
    manifest.sha256 = hash_export(export)  # the hash matches, so loading itself must fail
    atomic_write_json(run_dir / "exports" / LATEST, manifest.to_dict(run_dir / "exports"))

    with caplog.at_level(logging.ERROR, logger=SERVICE_LOGGER):
        for _ in range(3):
            assert service.check_for_update() is False
            bump_mtime(run_dir / "exports" / LATEST)
    assert service.served.step == 100
    assert len(error_records(caplog)) == 1
    assert "TensorFlow failed to load it" in service.last_reload_error
    assert service.last_reload_error_at is not None
    assert service.generate(count=2, seed=1).images.shape == (2, 32, 32, 3)


def test_reload_sha256_mismatch_skipped(service, run_dir, export_pool, caplog):
    publish(run_dir, export_pool["other"], step=200, sha256="f" * 64)
    with caplog.at_level(logging.ERROR, logger=SERVICE_LOGGER):
        for _ in range(3):
            assert service.check_for_update() is False
            bump_mtime(run_dir / "exports" / LATEST)
    assert service.served.step == 100
    assert len(error_records(caplog)) == 1
    assert "sha256 mismatch" in service.last_reload_error

    # The next good export clears the error.
    publish(run_dir, export_pool["other"], step=300)
    assert service.check_for_update() is True
    assert service.last_reload_error is None
    assert service.last_reload_error_at is None


def test_reload_missing_export_skipped(service, run_dir, export_pool):
    export = publish(run_dir, export_pool["other"], step=200)
    shutil.rmtree(export)
    assert service.check_for_update() is False
    assert service.served.step == 100
    assert "not found" in service.last_reload_error


def test_reload_nan_output_skipped(service, run_dir, export_pool):
    publish(run_dir, export_pool["nan"], step=200)
    assert service.check_for_update() is False
    assert service.served.step == 100
    assert "NaN" in service.last_reload_error


def test_reload_malformed_manifest_logged_once(service, run_dir, caplog):
    manifest = run_dir / "exports" / LATEST
    with caplog.at_level(logging.ERROR, logger=SERVICE_LOGGER):
        manifest.write_text('{"format": 1, "path": "generator-step100"')
        assert service.check_for_update() is False
        manifest.write_text('{"format": 1, "path": "generator-step100"')
        assert service.check_for_update() is False
    assert len(error_records(caplog)) == 1
    assert "invalid" in service.last_reload_error
    assert service.served.step == 100


def test_reload_new_failure_logged_again(service, run_dir, export_pool, caplog):
    manifest = run_dir / "exports" / LATEST
    with caplog.at_level(logging.ERROR, logger=SERVICE_LOGGER):
        manifest.write_text("{broken")
        service.check_for_update()
        publish(run_dir, export_pool["other"], step=200, sha256="f" * 64)
        service.check_for_update()
        manifest.write_text("{broken")
        service.check_for_update()
    assert len(error_records(caplog)) == 3


def test_reload_manifest_changed_during_load(service, run_dir, export_pool, monkeypatch):
    original_load = service._load
    loaded_steps = []

    def load_while_trainer_publishes(manifest, source):
        loaded = original_load(manifest, source)
        if not loaded_steps:
            publish(run_dir, export_pool["first"], step=300)
        loaded_steps.append(manifest.step)
        return loaded

    monkeypatch.setattr(service, "_load", load_while_trainer_publishes)
    publish(run_dir, export_pool["other"], step=200)
    assert service.check_for_update() is True
    assert service.served.step == 300
    assert loaded_steps == [200, 300]


def test_reload_manifest_broken_during_load(service, run_dir, export_pool, monkeypatch):
    original_load = service._load

    def load_while_manifest_breaks(manifest, source):
        loaded = original_load(manifest, source)
        (run_dir / "exports" / LATEST).write_text("{broken")
        return loaded

    monkeypatch.setattr(service, "_load", load_while_manifest_breaks)
    publish(run_dir, export_pool["other"], step=200)
    assert service.check_for_update() is False
    assert service.served.step == 100


def test_reload_while_generating(run_dir, export_pool):
    service = GenerationService(run_dir=run_dir, poll_interval=0.05)
    service.start()
    errors: list[BaseException] = []
    images_by_step: dict[int, set[bytes]] = {}
    stop = threading.Event()

    def generate_in_loop():
        while not stop.is_set():
            try:
                result = service.generate("random", count=4, seed=7)
                images_by_step.setdefault(result.model.step, set()).add(result.images.tobytes())
            except BaseException as error:  # the test fails on any error, so collect them all
                errors.append(error)

    def wait_until_generated(step: int) -> bool:
        """Wait up to 15 s for a request served by the export of `step`."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if step in images_by_step:
                return True
            time.sleep(0.02)
        return False

    worker = threading.Thread(target=generate_in_loop, daemon=True)
    started = time.monotonic()
    worker.start()
    try:
        publish(run_dir, export_pool["other"], step=200)
        assert wait_until_generated(200)
        publish(run_dir, export_pool["first"], step=300)
        assert wait_until_generated(300)
        time.sleep(max(0.0, 2.0 - (time.monotonic() - started)))  # at least 2 s of requests in all
    finally:
        stop.set()
        worker.join(timeout=15)
        poller = service._poller
        service.close()
    assert not worker.is_alive()
    assert errors == []
    assert sorted(images_by_step) == [100, 200, 300]
    # One seed gives one image set per export, so no request mixed two exports.
    assert all(len(images) == 1 for images in images_by_step.values())
    assert service.last_reload_error is None
    assert not poller.is_alive()
    service.close()  # a second close is a no-op


def test_reload_changed_classes_rejected(service, run_dir, export_pool):
    publish(run_dir, export_pool["first"], step=300, class_names=tuple(f"c{i}" for i in range(10)))
    assert service.check_for_update() is False
    assert service.served.step == 100
    assert "restart the bot" in service.last_reload_error


def test_resolve_class_superscript_digit(shared):
    with pytest.raises(GenerationError, match="Unknown class"):
        shared.resolve_class("²")
