"""Device set-up shared by the trainer and the generation service."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_configured = False


def configure_devices(gpu_memory_mb: int | None = None) -> str:
    """Turn on GPU memory growth (and an optional cap) and return the device to use.

    TensorFlow takes all GPU memory by default; growth lets the bot and the
    training script share one GPU. Must run before TensorFlow first touches a
    GPU; later calls return the same device without changing anything. On a
    machine without a GPU this only returns "/CPU:0".
    """
    import tensorflow as tf

    global _configured
    gpus = tf.config.list_physical_devices("GPU")
    if gpus and not _configured:
        for gpu in gpus:
            try:
                if gpu_memory_mb:
                    tf.config.set_logical_device_configuration(
                        gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=int(gpu_memory_mb))]
                    )
                else:
                    tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError as error:
                # TensorFlow refuses once the GPU is initialized; the earlier setting stays.
                log.warning("Could not configure %s: %s", gpu.name, error)
    _configured = True
    device = "/GPU:0" if gpus else "/CPU:0"
    return device
