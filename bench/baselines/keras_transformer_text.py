"""Hand-written Keras baseline: the transformer-encoder classifier
(bench/specs/transformer_text.spec), written as keras.io's "Text classification with
Transformer" example writes it: token + learned position embeddings, then four post-norm
encoder blocks (MultiHeadAttention, 4 heads of 64; feed-forward 1024; dropout 0.1; layer norm
epsilon 1e-5 as the spec's), mean over time, a dense head. Adam, batch 64, 256 tokens."""

from __future__ import annotations

import numpy as np

from keras_fit import keras, time_fit, use_device

BATCH_SIZE = 64
SAMPLES = 19200  # as the spec's synthetic(n): the same data held in memory
VOCAB, MAX_LEN, DIM, HEADS, FF, DROPOUT = 20000, 256, 256, 4, 1024, 0.1


class TokenAndPositionEmbedding(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.tokens = keras.layers.Embedding(VOCAB, DIM)
        self.positions = keras.layers.Embedding(MAX_LEN, DIM)

    def call(self, x):
        positions = keras.ops.arange(keras.ops.shape(x)[-1])
        return self.tokens(x) + self.positions(positions)


class TransformerBlock(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.attention = keras.layers.MultiHeadAttention(HEADS, DIM // HEADS, dropout=DROPOUT)
        self.feed_forward = keras.Sequential([
            keras.layers.Dense(FF, activation="relu"),
            keras.layers.Dropout(DROPOUT),
            keras.layers.Dense(DIM),
        ])
        self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5)
        self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5)
        self.dropout1 = keras.layers.Dropout(DROPOUT)
        self.dropout2 = keras.layers.Dropout(DROPOUT)

    def call(self, x, training=False):
        attended = self.attention(x, x, training=training)
        x = self.norm1(x + self.dropout1(attended, training=training))
        fed = self.feed_forward(x, training=training)
        return self.norm2(x + self.dropout2(fed, training=training))


def benchmark(steps: int, warmup: int, device: str = "cpu") -> float:
    """Samples per second over `steps` training steps after `warmup` untimed ones."""
    use_device(device)
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(MAX_LEN,), dtype="int64")
    x = TokenAndPositionEmbedding()(inputs)
    for _ in range(4):
        x = TransformerBlock()(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, VOCAB, (SAMPLES, MAX_LEN))
    labels = rng.integers(0, 2, SAMPLES)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return time_fit(model, tokens, labels, loss, BATCH_SIZE, steps, warmup)


if __name__ == "__main__":
    print(f"{benchmark(steps=5, warmup=2):.1f} samples/s")
