"""Quality metrics: distances, class match, cached statistics, the evaluate CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cifar_fixtures import small_archive  # noqa: F401
from gan import metrics
from gan.config import CIFAR10_CLASSES, PRESETS
from gan.data import load_dataset
from gan.exports import read_manifest, write_export
from gan.models import build_generator

ROOT = Path(__file__).resolve().parents[1]


def test_frechet_distance_self_is_zero():
    features = np.random.default_rng(0).standard_normal((2000, 16))
    mu, sigma = metrics.feature_statistics(features)
    assert metrics.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_grows_with_shift():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((2000, 16))
    mu, sigma = metrics.feature_statistics(base)
    distances = []
    for shift in (0.1, 0.5, 1.0):
        mu2, sigma2 = metrics.feature_statistics(base + shift)
        distances.append(metrics.frechet_distance(mu, sigma, mu2, sigma2))
    assert distances[0] < distances[1] < distances[2]
    assert distances[2] == pytest.approx(16.0, rel=1e-6)  # |shift|^2 summed over 16 dimensions


def test_frechet_distance_matches_closed_form():
    # Diagonal covariances: tr(S1 + S2 - 2 sqrt(S1 S2)) = sum (s1 - s2)^2 for standard deviations s.
    s1, s2 = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 1.0])
    expected = np.sum((s1 - s2) ** 2)
    assert metrics.frechet_distance(np.zeros(3), np.diag(s1**2), np.zeros(3), np.diag(s2**2)) == pytest.approx(expected)


def test_kernel_distance_unbiased_same_distribution():
    rng = np.random.default_rng(1)
    first, second = rng.standard_normal((3000, 32)), rng.standard_normal((3000, 32))
    mean, std = metrics.kernel_distance(first, second, subsets=50, subset_size=500)
    assert abs(mean) < 3 * std / np.sqrt(50) + 1e-3


def test_kernel_distance_detects_shift():
    rng = np.random.default_rng(2)
    first, second = rng.standard_normal((2000, 32)), rng.standard_normal((2000, 32)) + 0.5
    mean, std = metrics.kernel_distance(first, second, subsets=20, subset_size=500)
    assert mean > 10 * std


def test_class_match_perfect_predictions():
    labels = np.array([0, 1, 2, 2, 1])
    probabilities = np.eye(3)[labels]
    mean, per_class = metrics.class_match(probabilities, labels, 3)
    assert mean == 1.0
    assert per_class == [1.0, 1.0, 1.0]


def test_classifier_score_bounds():
    confident = np.eye(10)[np.arange(1000) % 10]
    uniform = np.full((1000, 10), 0.1)
    assert metrics.classifier_score(confident)[0] == pytest.approx(10.0, rel=1e-3)
    assert metrics.classifier_score(uniform)[0] == pytest.approx(1.0, rel=1e-6)


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory, small_archive):
    from gan.classifier import train_classifier

    out = tmp_path_factory.mktemp("classifier")
    train, test = load_dataset(small_archive, "train"), load_dataset(small_archive, "test")
    train_classifier(train, test, out, epochs=1, batch_size=20, width=8)
    return out


def test_class_match_full_for_correct_real_images(tiny_classifier, small_archive):
    network = metrics.ClassifierNetwork(tiny_classifier)
    test = load_dataset(small_archive, "test")
    probabilities, _ = network.predict(test.images)
    correct = np.argmax(probabilities, axis=1) == test.labels
    assert correct.any()
    mean, _ = metrics.class_match(probabilities[correct], test.labels[correct], 10)
    assert mean == 1.0


class _CountingNetwork:
    """Wraps a network and counts feature passes, to see cache hits."""

    name = "cifar"

    def __init__(self, inner, digest=None):
        self.inner = inner
        self.digest = digest or inner.digest
        self.calls = 0

    def predict(self, images, batch_size=500):
        self.calls += 1
        return self.inner.predict(images, batch_size)


def test_reference_statistics_cached_and_invalidated(tiny_classifier, small_archive, tmp_path):
    dataset = load_dataset(small_archive)
    network = _CountingNetwork(metrics.ClassifierNetwork(tiny_classifier))
    digest = metrics.dataset_digest(dataset)
    first = metrics.reference_statistics(network, dataset, tmp_path, digest)
    second = metrics.reference_statistics(network, dataset, tmp_path, digest)
    assert network.calls == 1
    np.testing.assert_array_equal(first.mu, second.mu)

    changed_data = dataset.images.copy()
    changed_data[0, 0, 0, 0] ^= 1
    metrics.reference_statistics(network, dataset, tmp_path, metrics.dataset_digest(type(dataset)(changed_data, dataset.labels, dataset.class_names, "x")))
    assert network.calls == 2

    other_network = _CountingNetwork(network.inner, digest="another-classifier")
    metrics.reference_statistics(other_network, dataset, tmp_path, digest)
    assert other_network.calls == 1


def test_inception_path_with_stand_in_network(tmp_path, small_archive):
    import keras

    inputs = keras.Input((75, 75, 3))
    x = keras.layers.Conv2D(4, 3, strides=4)(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(pooled)
    path = tmp_path / "stand_in.keras"
    keras.Model(inputs, outputs).save(path)

    network = metrics.InceptionNetwork(path, input_size=75)
    dataset = load_dataset(small_archive)
    probabilities, features = network.predict(dataset.images[:30])
    assert probabilities.shape == (30, 10)
    assert features.shape == (30, 4)


def test_evaluate_cli_writes_json_and_manifest(tmp_path, tiny_classifier, small_archive):
    run = tmp_path / "run"
    write_export(build_generator(PRESETS["tiny"]), PRESETS["tiny"], CIFAR10_CLASSES, run / "exports", step=3, kimg=0.2)
    out = tmp_path / "metrics.json"
    command = [sys.executable, "-m", "gan.cli.evaluate", "--run", str(run), "--data", str(small_archive), "--classifier", str(tiny_classifier), "--num-images", "40", "--json", str(out)]
    env = {"GAN_DATA_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    written = json.loads(out.read_text())
    manifest = read_manifest(run / "exports" / "latest.json")
    best = read_manifest(run / "exports" / "best.json")
    assert written["num_images"] == 40
    assert "fd_cifar" in written["floor"]
    assert manifest.metrics["fd_cifar"] == written["fd_cifar"]
    assert best.path == manifest.path
    assert "fd_cifar" in result.stdout


def test_evaluate_cli_missing_run(tmp_path):
    command = [sys.executable, "-m", "gan.cli.evaluate", "--run", str(tmp_path / "nope")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 1
    assert "error: run directory not found" in result.stderr


def test_training_evaluation_keeps_best(tmp_path, tiny_classifier, small_archive):
    from gan.config import TrainConfig
    from gan.evaluation import Evaluator
    from gan.training import Trainer

    dataset = load_dataset(small_archive)
    config = TrainConfig(model=PRESETS["tiny"], data=str(small_archive), batch_size=8, eval_images=40)
    trainer = Trainer(config, tmp_path / "run", dataset)
    trainer.prepare_run_dir(resume=False)
    trainer._evaluator = Evaluator(metrics.ClassifierNetwork(tiny_classifier), dataset, cache_dir=tmp_path / "stats")
    trainer.export()
    result = trainer.evaluate_latest()
    best = read_manifest(tmp_path / "run" / "exports" / "best.json")
    latest = read_manifest(tmp_path / "run" / "exports" / "latest.json")
    assert best.path == latest.path
    assert best.metrics["fd_cifar"] == result["fd_cifar"]
    assert latest.metrics["fd_cifar"] == result["fd_cifar"]
