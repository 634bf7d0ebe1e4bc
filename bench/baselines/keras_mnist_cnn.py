"""Hand-written Keras baseline: the Keras MNIST convnet (bench/specs/mnist_cnn.spec),
Adam, batch 128."""

from __future__ import annotations

import numpy as np

from keras_fit import keras, time_fit, use_device

BATCH_SIZE = 128
SAMPLES = 38400  # as the spec's synthetic(n): the same data held in memory


def benchmark(steps: int, warmup: int, device: str = "cpu") -> float:
    """Samples per second over `steps` training steps after `warmup` untimed ones."""
    use_device(device)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10),
    ])
    rng = np.random.default_rng(0)
    images = rng.standard_normal((SAMPLES, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, SAMPLES)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return time_fit(model, images, labels, loss, BATCH_SIZE, steps, warmup)


if __name__ == "__main__":
    print(f"{benchmark(steps=50, warmup=5):.0f} samples/s")
