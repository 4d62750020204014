"""Generator and discriminator networks for 32x32 images.

The `resnet` kind is the class-conditional SNGAN/BigGAN recipe for CIFAR-10:
residual blocks with conditional batch normalization in G, and a projection
discriminator (Miyato and Koyama, 2018) whose every weight is spectrally
normalized (Miyato et al., 2018). The `dense` kind is the original fully
connected, unconditional GAN, kept as a baseline.

Both networks take `(inputs, labels)` so the training loop treats them alike;
the dense networks ignore the labels.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from gan.config import IMAGE_SIZE, ModelConfig


# Spectral normalization.


def _spectral_norm(matrix: tf.Tensor, u: tf.Variable, training: bool) -> tf.Tensor:
    """Return the largest singular value of `matrix` by one power iteration.

    `matrix` has shape (fan_in, fan_out) and `u` shape (1, fan_out). The
    estimate of the right singular vector `u` is carried between steps and
    updated only while training.
    """
    matrix = tf.cast(matrix, tf.float32)
    v = tf.math.l2_normalize(tf.matmul(u, matrix, transpose_b=True), epsilon=1e-12)
    u_new = tf.math.l2_normalize(tf.matmul(v, matrix), epsilon=1e-12)
    u_new = tf.stop_gradient(u_new)
    v = tf.stop_gradient(v)
    if training:
        u.assign(u_new)
    return tf.reduce_sum(tf.matmul(v, matrix) * u_new)


class _SpectralNormMixin:
    def _add_u(self, fan_out: int) -> None:
        self.u = self.add_weight(
            name="sn_u",
            shape=(1, fan_out),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
            trainable=False,
            aggregation="mean",
        )

    def _normalized(self, weight, fan_out: int, training: bool):
        sigma = _spectral_norm(tf.reshape(weight, (-1, fan_out)), self.u, training)
        return weight / tf.cast(sigma, weight.dtype)


class SNConv2D(_SpectralNormMixin, keras.layers.Layer):
    """A 2-D convolution whose kernel is divided by its spectral norm."""

    def __init__(self, filters: int, kernel_size: int = 3, spectral_norm: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.spectral_norm = spectral_norm

    def build(self, input_shape):
        fan_in = int(input_shape[-1])
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, self.kernel_size, fan_in, self.filters),
            initializer=keras.initializers.GlorotUniform(),
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
        if self.spectral_norm:
            self._add_u(self.filters)

    def call(self, inputs, training=False):
        kernel = self.kernel
        if self.spectral_norm:
            kernel = self._normalized(kernel, self.filters, training)
        kernel = tf.cast(kernel, inputs.dtype)
        outputs = tf.nn.conv2d(inputs, kernel, strides=1, padding="SAME")
        return outputs + tf.cast(self.bias, inputs.dtype)


class SNDense(_SpectralNormMixin, keras.layers.Layer):
    """A fully connected layer whose kernel is divided by its spectral norm."""

    def __init__(self, units: int, spectral_norm: bool = True, use_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.spectral_norm = spectral_norm
        self.use_bias = use_bias

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel",
            shape=(int(input_shape[-1]), self.units),
            initializer=keras.initializers.GlorotUniform(),
        )
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        if self.spectral_norm:
            self._add_u(self.units)

    def call(self, inputs, training=False):
        kernel = self.kernel
        if self.spectral_norm:
            kernel = self._normalized(kernel, self.units, training)
        outputs = tf.matmul(inputs, tf.cast(kernel, inputs.dtype))
        if self.use_bias:
            outputs = outputs + tf.cast(self.bias, inputs.dtype)
        return outputs


class SNEmbedding(_SpectralNormMixin, keras.layers.Layer):
    """A class embedding table, spectrally normalized as (num_classes, dim)."""

    def __init__(self, num_classes: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.dim = dim

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.num_classes, self.dim),
            initializer=keras.initializers.GlorotUniform(),
        )
        self._add_u(self.dim)

    def call(self, labels, training=False):
        table = self._normalized(self.embeddings, self.dim, training)
        return tf.gather(table, tf.cast(labels, tf.int32))


# Generator.


class ConditionalBatchNorm(keras.layers.Layer):
    """Batch normalization whose scale and shift are looked up per class."""

    def __init__(self, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.norm = keras.layers.BatchNormalization(center=False, scale=False, momentum=0.9, epsilon=1e-5)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=(self.num_classes, channels), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(self.num_classes, channels), initializer="zeros")
        self.norm.build(input_shape)

    def call(self, inputs, labels, training=False):
        normalized = self.norm(inputs, training=training)
        gamma, beta = self._lookup(self.gamma, labels), self._lookup(self.beta, labels)
        gamma = tf.cast(gamma, normalized.dtype)[:, None, None, :]
        beta = tf.cast(beta, normalized.dtype)[:, None, None, :]
        return normalized * gamma + beta

    @staticmethod
    def _lookup(table, labels):
        # Labels are class indices [N], or class weights [N, num_classes] that
        # mix the classes' scales and shifts (used for walks between classes).
        if labels.shape.rank == 2:
            return tf.matmul(tf.cast(labels, table.dtype), table)
        return tf.gather(table, tf.cast(labels, tf.int32))  # Keras casts call arguments to float.


def _upsample(x):
    return tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)


def _downsample(x):
    return tf.nn.avg_pool2d(x, ksize=2, strides=2, padding="VALID")


class GeneratorBlock(keras.layers.Layer):
    """Residual block that doubles the resolution: CBN, ReLU, up, conv, CBN, ReLU, conv."""

    def __init__(self, channels: int, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.norm1 = ConditionalBatchNorm(num_classes)
        self.conv1 = SNConv2D(channels, 3, spectral_norm=False)
        self.norm2 = ConditionalBatchNorm(num_classes)
        self.conv2 = SNConv2D(channels, 3, spectral_norm=False)
        self.shortcut = SNConv2D(channels, 1, spectral_norm=False)

    def call(self, inputs, labels, training=False):
        h = tf.nn.relu(self.norm1(inputs, labels, training=training))
        h = self.conv1(_upsample(h))
        h = tf.nn.relu(self.norm2(h, labels, training=training))
        h = self.conv2(h)
        return h + self.shortcut(_upsample(inputs))


class ResNetGenerator(keras.Model):
    """Class-conditional generator: latent vector and class label to a 32x32 RGB image in [-1, 1]."""

    def __init__(self, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        channels = config.g_channels
        self.project = SNDense(4 * 4 * channels, spectral_norm=False)
        self.blocks = [GeneratorBlock(channels, config.num_classes, name=f"block{i}") for i in range(3)]
        self.final_norm = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
        self.to_rgb = SNConv2D(3, 3, spectral_norm=False)

    def call(self, inputs, training=False):
        latent, labels = inputs
        h = tf.reshape(self.project(latent), (-1, 4, 4, self.config.g_channels))
        for block in self.blocks:
            h = block(h, labels, training=training)
        h = tf.nn.relu(self.final_norm(h, training=training))
        return tf.cast(tf.tanh(self.to_rgb(h)), tf.float32)


# Discriminator.


class DiscriminatorBlock(keras.layers.Layer):
    """Residual block of D: (ReLU,) conv, ReLU, conv, optional 2x2 average pooling."""

    def __init__(self, channels: int, downsample: bool, first: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.downsample = downsample
        self.first = first
        self.conv1 = SNConv2D(channels, 3)
        self.conv2 = SNConv2D(channels, 3)
        self.learned_shortcut = first or downsample
        if self.learned_shortcut:
            self.shortcut = SNConv2D(channels, 1)

    def call(self, inputs, training=False):
        h = inputs if self.first else tf.nn.relu(inputs)
        h = self.conv1(h, training=training)
        h = self.conv2(tf.nn.relu(h), training=training)
        if self.downsample:
            h = _downsample(h)

        skip = inputs
        if self.first:
            # The first block pools before its 1x1 convolution, as SNGAN does, to save compute.
            skip = self.shortcut(_downsample(skip), training=training)
        elif self.learned_shortcut:
            skip = self.shortcut(skip, training=training)
            if self.downsample:
                skip = _downsample(skip)
        return h + skip


class ProjectionDiscriminator(keras.Model):
    """Class-conditional critic: an image and its label to one unbounded score."""

    def __init__(self, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        channels = config.d_channels
        self.blocks = [
            DiscriminatorBlock(channels, downsample=True, first=True, name="block0"),  # 32 -> 16
            DiscriminatorBlock(channels, downsample=True, name="block1"),  # 16 -> 8
            DiscriminatorBlock(channels, downsample=False, name="block2"),
            DiscriminatorBlock(channels, downsample=False, name="block3"),
        ]
        self.linear = SNDense(1)
        self.embed = SNEmbedding(config.num_classes, channels)

    def call(self, inputs, training=False):
        images, labels = inputs
        h = images
        for block in self.blocks:
            h = block(h, training=training)
        features = tf.reduce_sum(tf.nn.relu(h), axis=(1, 2))
        features = tf.cast(features, tf.float32)
        score = self.linear(features, training=training)[:, 0]
        projection = tf.reduce_sum(self.embed(labels, training=training) * features, axis=1)
        return score + projection


class DenseGenerator(keras.Model):
    """The original fully connected generator: z (100) -> 256 -> 512 -> 1024 -> 3072, tanh."""

    def __init__(self, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.hidden = [keras.layers.Dense(units) for units in (256, 512, 1024)]
        self.out = keras.layers.Dense(IMAGE_SIZE * IMAGE_SIZE * 3, activation="tanh")

    def call(self, inputs, training=False):
        latent, _labels = inputs
        h = latent
        for layer in self.hidden:
            h = tf.nn.leaky_relu(layer(h), alpha=0.2)
        images = tf.reshape(self.out(h), (-1, IMAGE_SIZE, IMAGE_SIZE, 3))
        return tf.cast(images, tf.float32)


class DenseDiscriminator(keras.Model):
    """The original fully connected discriminator: 3072 -> 512 -> 256 -> 1."""

    def __init__(self, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.hidden = [keras.layers.Dense(units) for units in (512, 256)]
        self.out = keras.layers.Dense(1)

    def call(self, inputs, training=False):
        images, _labels = inputs
        h = tf.reshape(images, (-1, IMAGE_SIZE * IMAGE_SIZE * 3))
        for layer in self.hidden:
            h = tf.nn.leaky_relu(layer(h), alpha=0.2)
        return tf.cast(self.out(h)[:, 0], tf.float32)


def build_generator(config: ModelConfig, name: str = "generator") -> keras.Model:
    """Create a generator for `config` with all its weights built."""
    cls = ResNetGenerator if config.kind == "resnet" else DenseGenerator
    model = cls(config, name=name)
    model((tf.zeros((1, config.latent_dim)), tf.zeros((1,), tf.int32)), training=False)
    return model


def build_discriminator(config: ModelConfig, name: str = "discriminator") -> keras.Model:
    """Create a discriminator for `config` with all its weights built."""
    cls = ProjectionDiscriminator if config.kind == "resnet" else DenseDiscriminator
    model = cls(config, name=name)
    model((tf.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3)), tf.zeros((1,), tf.int32)), training=False)
    return model
