"""The GPUs TensorFlow sees and their peak memory, for `specc bench` (imports tensorflow)."""

from __future__ import annotations

import tensorflow as tf


def gpu_count() -> int:
    return len(tf.config.list_physical_devices("GPU"))


def peak_gpu_mib() -> float | None:
    """The most memory the run held on the first GPU, in MiB; None off the GPU."""
    gpus = tf.config.list_logical_devices("GPU")
    if not gpus:
        return None
    device = gpus[0].name.removeprefix("/device:")
    return tf.config.experimental.get_memory_info(device)["peak"] / 2**20
