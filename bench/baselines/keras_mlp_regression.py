"""Hand-written Keras baseline: the MLP regression (bench/specs/mlp_regression.spec),
64 -> 256 -> 256 -> 1, mean squared error, Adam, batch 1024."""

from __future__ import annotations

import numpy as np

from keras_fit import keras, time_fit, use_device

BATCH_SIZE = 1024
SAMPLES = 307200  # as the spec's synthetic(n): the same data held in memory


def benchmark(steps: int, warmup: int, device: str = "cpu") -> float:
    """Samples per second over `steps` training steps after `warmup` untimed ones."""
    use_device(device)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(64,)),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(1),
    ])
    rng = np.random.default_rng(0)
    features = rng.standard_normal((SAMPLES, 64), dtype=np.float32)
    targets = rng.standard_normal((SAMPLES, 1), dtype=np.float32)
    return time_fit(model, features, targets, "mse", BATCH_SIZE, steps, warmup)


if __name__ == "__main__":
    print(f"{benchmark(steps=200, warmup=5):.0f} samples/s")
