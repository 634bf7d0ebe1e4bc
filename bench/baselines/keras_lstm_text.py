"""Hand-written Keras baseline: the LSTM text classifier (bench/specs/lstm_text.spec),
Adam, batch 64, 200-token sequences."""

from __future__ import annotations

import numpy as np

from keras_fit import keras, time_fit, use_device

BATCH_SIZE = 64
SAMPLES = 19200  # as the spec's synthetic(n): the same data held in memory
VOCAB, MAX_LEN = 20000, 200


def benchmark(steps: int, warmup: int, device: str = "cpu") -> float:
    """Samples per second over `steps` training steps after `warmup` untimed ones."""
    use_device(device)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(MAX_LEN,), dtype="int64"),
        keras.layers.Embedding(VOCAB, 128),
        keras.layers.LSTM(128),
        keras.layers.Dense(2),
    ])
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, VOCAB, (SAMPLES, MAX_LEN))
    labels = rng.integers(0, 2, SAMPLES)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return time_fit(model, tokens, labels, loss, BATCH_SIZE, steps, warmup)


if __name__ == "__main__":
    print(f"{benchmark(steps=10, warmup=5):.0f} samples/s")
