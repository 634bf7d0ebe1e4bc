"""How every hand-written Keras baseline trains and is timed: model.compile + model.fit on
in-memory NumPy arrays, as the keras.io examples do (Adam, lr 1e-3; Keras's defaults
otherwise, XLA included where Keras turns it on).

fit runs `warmup` + `steps` batches as one epoch. A callback notes the clock when the first
timed batch begins and again at the end of the epoch, where Keras has read the logs back
(which waits for the last step). It implements no per-batch *end* hook, so Keras keeps
dispatching batches without a host sync, as it does with no callback at all.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no start-up banner on stderr

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402


def use_device(device: str) -> None:
    """Keep TensorFlow on the CPU unless `device` asks for CUDA; call before building."""
    if not device.startswith("cuda"):
        tf.config.set_visible_devices([], "GPU")


class StepTimer(keras.callbacks.Callback):
    """Seconds from the start of batch `warmup` to the end of the epoch."""

    def __init__(self, warmup: int):
        super().__init__()
        self.warmup = warmup
        self.start = self.seconds = None

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.warmup:
            self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start


def time_fit(model, x, y, loss, batch_size, steps, warmup) -> float:
    """Compile `model` with Adam and `loss`, fit `warmup` + `steps` batches of (`x`, `y`);
    return the samples per second of the `steps` timed batches."""
    if (warmup + steps) * batch_size > len(x):
        raise ValueError(f"{warmup + steps} steps of {batch_size} need more than {len(x)} "
                         "samples")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss=loss)
    timer = StepTimer(warmup)
    model.fit(x, y, batch_size=batch_size, epochs=1, steps_per_epoch=warmup + steps,
              callbacks=[timer], verbose=0)
    return steps * batch_size / timer.seconds
