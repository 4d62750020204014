"""Image quality metrics on any feature network.

With the project's own CIFAR-10 classifier (the default, no download) the
metrics are named for what they are: `fd_cifar` (Fréchet distance) and
`kid_cifar` (kernel distance) on the classifier's penultimate features,
`class_match` (share of images generated for class c that the classifier
labels c) and `classifier_score` (the Inception Score formula on the
classifier's softmax). These are not comparable with published FID and IS,
which use Inception-v3; `InceptionNetwork` computes those when the user has
the Inception-v3 weights on disk.

A network is anything with `predict(uint8 images) -> (probabilities, features)`
and a `name` used as the metric prefix.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gan.data import file_digest
from gan.images import to_uint8

log = logging.getLogger(__name__)

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


# Distances.


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a feature matrix (one row per image)."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between two Gaussians: |mu1-mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    tr((S1 S2)^(1/2)) equals tr((A S2 A)^(1/2)) with A = S1^(1/2); that matrix
    is symmetric, so a symmetric eigendecomposition computes it stably.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    values, vectors = np.linalg.eigh(sigma1)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = root1 @ sigma2 @ root1
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    distance = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_root
    return float(max(distance, 0.0))


def kernel_distance(features1, features2, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> tuple[float, float]:
    """Unbiased squared MMD with the cubic polynomial kernel (KID); mean and standard deviation over subsets.

    k(x, y) = (x.y / d + 1)^3, as Bińkowski et al. (2018) define KID. Each
    subset draws `subset_size` rows (without replacement) from each set.
    """
    features1 = np.asarray(features1, np.float64)
    features2 = np.asarray(features2, np.float64)
    size = min(subset_size, len(features1), len(features2))
    dim = features1.shape[1]
    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(subsets):
        x = features1[rng.choice(len(features1), size, replace=False)]
        y = features2[rng.choice(len(features2), size, replace=False)]
        kxx = (x @ x.T / dim + 1) ** 3
        kyy = (y @ y.T / dim + 1) ** 3
        kxy = (x @ y.T / dim + 1) ** 3
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (size * (size - 1))
        estimates.append(within - 2.0 * kxy.mean())
    return float(np.mean(estimates)), float(np.std(estimates))


def class_match(probabilities: np.ndarray, intended: np.ndarray, num_classes: int) -> tuple[float, list[float]]:
    """Share of images the network assigns to their intended class: average over classes, and per class."""
    predicted = np.argmax(probabilities, axis=1)
    per_class = []
    for label in range(num_classes):
        mask = intended == label
        per_class.append(float(np.mean(predicted[mask] == label)) if mask.any() else float("nan"))
    return float(np.nanmean(per_class)), per_class


def classifier_score(probabilities: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Compute the Inception Score formula, exp(E_x KL(p(y|x) || p(y))): mean and std over splits."""
    probabilities = np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)
    scores = []
    for part in np.array_split(probabilities, splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = np.sum(part * (np.log(part) - np.log(marginal)), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


# Feature networks.


class ClassifierNetwork:
    """The project's CIFAR-10 classifier as a feature network."""

    name = "cifar"

    def __init__(self, path: Path | None = None):
        from gan.classifier import SHIPPED_CLASSIFIER, classifier_hash, load_classifier

        path = Path(path) if path else SHIPPED_CLASSIFIER
        self.classifier = load_classifier(path)
        self.digest = classifier_hash(path)
        self.info = self.classifier.info

    def predict(self, images: np.ndarray, batch_size: int = 500):
        return self.classifier.predict(images, batch_size)


class InceptionNetwork:
    """Inception-v3 from a weights file the user provides, for the standard FID and Inception Score.

    `path` is a Keras model file (`.keras` or `.h5`) of Inception-v3 with its
    ImageNet classification top. Features are the 2048-d global average pool
    before the top, probabilities its softmax; images are resized to 299x299
    bilinearly. NOTE: the Keras ImageNet weights differ slightly from the TF
    graph that published FIDs use, so expect small offsets from those numbers.
    """

    name = "inception"

    def __init__(self, path: Path, input_size: int = 299):
        import keras

        self.path = Path(path)
        model = keras.models.load_model(str(self.path), compile=False)
        pool = next((layer for layer in reversed(model.layers) if isinstance(layer, keras.layers.GlobalAveragePooling2D)), None)
        if pool is None:
            raise ValueError(f"{path} has no global average pooling layer; expected Inception-v3 with its top")
        self.model = keras.Model(model.inputs, [model.outputs[0], pool.output])
        self.input_size = input_size
        self.digest = file_digest(self.path)

    def predict(self, images: np.ndarray, batch_size: int = 100):
        import tensorflow as tf

        probabilities, features = [], []
        for start in range(0, len(images), batch_size):
            batch = tf.cast(images[start : start + batch_size], tf.float32)
            batch = tf.image.resize(batch, (self.input_size, self.input_size), method="bilinear") / 127.5 - 1.0
            outputs, pooled = self.model(batch, training=False)
            probabilities.append(np.asarray(outputs))
            features.append(np.asarray(pooled))
        return np.concatenate(probabilities), np.concatenate(features).astype(np.float64)


# Reference statistics.


@dataclass
class Reference:
    """Statistics of real images in one network's feature space."""

    mu: np.ndarray
    sigma: np.ndarray
    features: np.ndarray  # a random subset, for the kernel distance


def reference_statistics(network, dataset, cache_dir: Path | None, data_digest: str, max_kid_features: int = 10000) -> Reference:
    """Compute (or load from the cache) real-data statistics keyed by data and network digests."""
    cache_file = None
    if cache_dir is not None:
        key = hashlib.sha256(f"{data_digest}:{network.digest}:{len(dataset)}".encode()).hexdigest()[:20]
        cache_file = Path(cache_dir) / f"reference-{network.name}-{key}.npz"
        if cache_file.is_file():
            try:
                with np.load(cache_file) as cached:
                    return Reference(cached["mu"], cached["sigma"], cached["features"])
            except (OSError, ValueError, KeyError) as error:
                log.warning("Ignoring unreadable statistics cache %s: %s", cache_file, error)

    _, features = network.predict(dataset.images)
    mu, sigma = feature_statistics(features)
    rng = np.random.default_rng(0)
    subset = features[rng.choice(len(features), min(max_kid_features, len(features)), replace=False)]
    reference = Reference(mu, sigma, subset)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(temporary, mu=mu, sigma=sigma, features=subset)
        os.replace(temporary, cache_file)
    return reference


def dataset_digest(dataset) -> str:
    """Hash of a dataset's pixels and labels (cheap relative to the feature pass)."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(dataset.images).tobytes())
    digest.update(np.ascontiguousarray(dataset.labels).tobytes())
    return digest.hexdigest()


# Evaluation.


def score_images(network, images: np.ndarray, intended: np.ndarray | None, reference: Reference, num_classes: int) -> dict:
    """Compute all metrics of one image set against the real-data reference."""
    probabilities, features = network.predict(images)
    mu, sigma = feature_statistics(features)
    kid, kid_std = kernel_distance(features, reference.features)
    result = {
        f"fd_{network.name}": round(frechet_distance(mu, sigma, reference.mu, reference.sigma), 4),
        f"kid_{network.name}": round(kid, 6),
        f"kid_{network.name}_std": round(kid_std, 6),
    }
    score, score_std = classifier_score(probabilities)
    result[f"{'inception' if network.name == 'inception' else 'classifier'}_score"] = round(score, 4)
    result[f"{'inception' if network.name == 'inception' else 'classifier'}_score_std"] = round(score_std, 4)
    if intended is not None and network.name != "inception":
        mean, per_class = class_match(probabilities, intended, num_classes)
        result["class_match"] = round(mean, 4)
        result["class_match_per_class"] = [round(v, 4) for v in per_class]
    return result


def generate_images(manifest, count: int, batch: int = 500, seed: int = 2024) -> tuple[np.ndarray, np.ndarray | None]:
    """Generate `count` images from an export, an equal share of every class; return images and intended labels.

    Unconditional exports (the dense baseline) get no intended labels.
    """
    import tensorflow as tf

    serve = tf.saved_model.load(str(manifest.path)).signatures["serving_default"]
    num_classes = len(manifest.class_names)
    conditional = manifest.model.conditional
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for start in range(0, count, batch):
        size = min(batch, count - start)
        chunk_labels = (np.arange(start, start + size) % num_classes).astype(np.int32)
        latent = rng.standard_normal((size, manifest.model.latent_dim)).astype(np.float32)
        output = serve(latent=tf.constant(latent), label=tf.constant(chunk_labels))["images"].numpy()
        images.append(to_uint8(output))
        labels.append(chunk_labels)
    return np.concatenate(images), (np.concatenate(labels) if conditional else None)
