"""DiffAugment: differentiable augmentations applied to every image D sees.

Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training"
(NeurIPS 2020): augmenting both real and generated images with the same
differentiable transforms keeps D from memorizing the training set while G
still receives gradients through the transforms. Images are in [-1, 1].

All randomness is stateless and comes from `seed`, a shape-[2] int64 tensor,
so a training step is reproducible from the step number alone.
"""

from __future__ import annotations

import tensorflow as tf

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str) -> tuple[str, ...]:
    """Split a comma-separated policy and check every name."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ValueError(f"Unknown DiffAugment policy {', '.join(unknown)!r}. Choose from {', '.join(POLICIES)}.")
    return names


def diff_augment(images: tf.Tensor, policy: tuple[str, ...], seed: tf.Tensor) -> tf.Tensor:
    """Apply the transforms named in `policy`, in order, with one draw per image."""
    for index, name in enumerate(policy):
        sub_seed = tf.stack([seed[0], seed[1] * 8 + index])
        if name == "color":
            images = _color(images, sub_seed)
        elif name == "translation":
            images = _translation(images, sub_seed)
        elif name == "cutout":
            images = _cutout(images, sub_seed)
    return images


def _uniform(shape, seed, salt, minval=0.0, maxval=1.0, dtype=tf.float32):
    return tf.random.stateless_uniform(shape, seed=tf.stack([seed[0] + salt, seed[1]]), minval=minval, maxval=maxval, dtype=dtype)


def _color(x, seed):
    batch = tf.shape(x)[0]
    brightness = _uniform([batch, 1, 1, 1], seed, 1, dtype=x.dtype) - 0.5
    x = x + brightness

    saturation = _uniform([batch, 1, 1, 1], seed, 2, dtype=x.dtype) * 2.0
    pixel_mean = tf.reduce_mean(x, axis=3, keepdims=True)
    x = (x - pixel_mean) * saturation + pixel_mean

    contrast = _uniform([batch, 1, 1, 1], seed, 3, dtype=x.dtype) + 0.5
    image_mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - image_mean) * contrast + image_mean


def _translation(x, seed, ratio: float = 0.125):
    """Shift each image by up to `ratio` of its size, filling with zeros."""
    batch, height, width = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    pad = int(round(x.shape[1] * ratio))
    shift_y = _uniform([batch, 1], seed, 4, -pad, pad + 1, tf.int32)
    shift_x = _uniform([batch, 1], seed, 5, -pad, pad + 1, tf.int32)

    padded = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    rows = tf.range(height)[None, :] + pad + shift_y
    cols = tf.range(width)[None, :] + pad + shift_x
    x = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(x, cols, axis=2, batch_dims=1)


def _cutout(x, seed, ratio: float = 0.5):
    """Zero one square of `ratio` times the image size at a random place in each image."""
    batch, height, width = tf.shape(x)[0], x.shape[1], x.shape[2]
    half = int(round(height * ratio)) // 2
    center_y = _uniform([batch, 1, 1], seed, 6, 0, height, tf.int32)
    center_x = _uniform([batch, 1, 1], seed, 7, 0, width, tf.int32)

    rows = tf.range(height)[None, :, None]
    cols = tf.range(width)[None, None, :]
    inside = (tf.abs(rows - center_y) < half) & (tf.abs(cols - center_x) < half)
    mask = tf.cast(~inside, x.dtype)[..., None]
    return x * mask
