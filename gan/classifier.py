"""A small CIFAR-10 classifier: the feature network of the quality metrics.

The standard FID needs Inception-v3 weights, which machines without internet
access cannot download. This project trains its own classifier on the
training split only and measures generated images in its penultimate-layer
features instead. The network is a narrow ResNet (channels 32-64-128-256, batch
normalization, two residual blocks, pooling before every widening), small
enough to train on two CPU cores in well under an hour.

    gan-train-classifier --data ../data/cifar-10-python.tar.gz --out gan/pretrained/classifier
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SHIPPED_CLASSIFIER = Path(__file__).resolve().parent / "pretrained" / "classifier"
WEIGHTS_FILE = "classifier.weights.h5"
INFO_FILE = "classifier.json"
FEATURE_DIM = 256


def build_classifier(num_classes: int = 10, width: int = 32):
    """Return a Keras model mapping images in [-1, 1] to (logits, penultimate features)."""
    import keras
    from keras import layers

    def conv_bn(x, filters):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        return layers.ReLU()(x)

    def residual(x, filters):
        return layers.Add()([x, conv_bn(conv_bn(x, filters), filters)])

    inputs = keras.Input((32, 32, 3))
    x = conv_bn(inputs, width)
    x = layers.MaxPooling2D()(x)  # 16x16
    x = conv_bn(x, width * 2)
    x = residual(x, width * 2)
    x = layers.MaxPooling2D()(x)  # 8x8
    x = conv_bn(x, width * 4)
    x = residual(x, width * 4)
    x = layers.MaxPooling2D()(x)  # 4x4
    x = conv_bn(x, width * 8)
    features = layers.GlobalMaxPooling2D(name="features")(x)
    logits = layers.Dense(num_classes, name="logits")(features)
    # The 0.125 logit scale of fast CIFAR-10 ResNets keeps early training stable.
    logits = layers.Rescaling(0.125)(logits)
    return keras.Model(inputs, [logits, features], name="classifier")


@dataclass
class TrainedClassifier:
    model: object
    info: dict

    def predict(self, images_uint8: np.ndarray, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
        """Return (softmax probabilities, features) for uint8 images, in batches to bound memory."""
        import tensorflow as tf

        probabilities, features = [], []
        for start in range(0, len(images_uint8), batch_size):
            batch = tf.cast(images_uint8[start : start + batch_size], tf.float32) / 127.5 - 1.0
            logits, feats = self._forward(batch)
            probabilities.append(tf.nn.softmax(logits).numpy())
            features.append(feats.numpy())
        return np.concatenate(probabilities), np.concatenate(features).astype(np.float64)

    def _forward(self, batch):
        import tensorflow as tf

        if not hasattr(self, "_compiled"):
            self._compiled = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)
        return self._compiled(batch)


def load_classifier(path: Path = SHIPPED_CLASSIFIER) -> TrainedClassifier:
    """Load the classifier weights and their recorded test accuracy."""
    path = Path(path)
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"No classifier at {path}. Train one with gan-train-classifier --data PATH --out {path}.")
    info = json.loads((path / INFO_FILE).read_text())
    model = build_classifier(info.get("num_classes", 10), info.get("width", 32))
    model.load_weights(str(weights))
    return TrainedClassifier(model, info)


def classifier_hash(path: Path = SHIPPED_CLASSIFIER) -> str:
    from gan.data import md5_of

    return md5_of(Path(path) / WEIGHTS_FILE)


def train_classifier(train, test, out: Path, epochs: int = 12, batch_size: int = 256, width: int = 32, seed: int = 0) -> dict:
    """Train on `train` (a Dataset), report accuracy on `test`, save weights and info to `out`.

    One-cycle learning rate with SGD and Nesterov momentum, label smoothing,
    random crops (4 px padding) and flips.
    """
    import keras
    import tensorflow as tf

    from gan.exports import atomic_write_json

    keras.utils.set_random_seed(seed)
    model = build_classifier(len(train.class_names), width)
    steps_per_epoch = len(train) // batch_size
    total_steps = epochs * steps_per_epoch
    schedule = keras.optimizers.schedules.LearningRateSchedule

    class OneCycle(schedule):
        def __call__(self, step):
            progress = tf.cast(step, tf.float32) / total_steps
            warm = 0.25
            return 0.4 * tf.where(progress < warm, progress / warm, tf.maximum(0.0, (1.0 - progress) / (1.0 - warm)))

    optimizer = keras.optimizers.SGD(learning_rate=OneCycle(), momentum=0.9, nesterov=True, weight_decay=5e-4 * batch_size / 512)
    loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2)
    num_classes = len(train.class_names)

    def augment(images, labels):
        images = tf.cast(images, tf.float32) / 127.5 - 1.0
        images = tf.image.random_flip_left_right(images)
        padded = tf.pad(images, [[0, 0], [4, 4], [4, 4], [0, 0]], mode="REFLECT")
        images = tf.image.random_crop(padded, tf.shape(images))
        return images, tf.one_hot(labels, num_classes)

    pipeline = (
        tf.data.Dataset.from_tensor_slices((train.images, train.labels))
        .shuffle(len(train), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size, drop_remainder=True)
        .map(augment, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )

    @tf.function
    def train_step(images, targets):
        with tf.GradientTape() as tape:
            logits, _ = model(images, training=True)
            loss = loss_fn(targets, logits)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    trained = TrainedClassifier(model, {})
    started = time.perf_counter()
    for epoch in range(epochs):
        losses = [float(train_step(images, targets)) for images, targets in pipeline]
        accuracy = _accuracy(trained, test)
        log.info("epoch %d/%d  loss %.3f  test accuracy %.4f  %.0f s", epoch + 1, epochs, np.mean(losses), accuracy, time.perf_counter() - started)

    info = {
        "test_accuracy": round(float(_accuracy(trained, test)), 4),
        "epochs": epochs,
        "width": width,
        "num_classes": num_classes,
        "class_names": list(train.class_names),
        "train_seconds": round(time.perf_counter() - started, 1),
        "trained_on": train.source,
        "feature_dim": FEATURE_DIM * width // 32,
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_weights(str(out / WEIGHTS_FILE))
    atomic_write_json(out / INFO_FILE, info)
    return info


def _accuracy(classifier: TrainedClassifier, test) -> float:
    probabilities, _ = classifier.predict(test.images)
    return float(np.mean(np.argmax(probabilities, axis=1) == test.labels))
