"""Hand-written PyTorch baseline: the transformer-encoder classifier
(bench/specs/transformer_text.spec): token + learned position embeddings, four post-norm
nn.TransformerEncoderLayer(256, 4 heads, ff 1024, dropout 0.1), mean over time, a linear
head. Adam, batch 64, 256-token sequences."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from torch_loop import time_steps

BATCH_SIZE = 64
SAMPLES = 19200  # as the spec's synthetic(n): the same data held in memory
VOCAB, MAX_LEN, DIM = 20000, 256, 256


class TransformerText(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, DIM)
        self.position = nn.Parameter(torch.empty(MAX_LEN, DIM).uniform_(-0.05, 0.05))
        layer = nn.TransformerEncoderLayer(DIM, nhead=4, dim_feedforward=1024, dropout=0.1,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=4, enable_nested_tensor=False)
        self.fc = nn.Linear(DIM, 2)

    def forward(self, tokens):
        x = self.embedding(tokens) + self.position
        x = self.encoder(x)
        return self.fc(x.mean(dim=1))


def benchmark(steps: int, warmup: int, device: str = "cpu",
              compiled: bool | None = None) -> float:
    """Samples per second over `steps` training steps after `warmup` untimed ones;
    `compiled`: torch.compile the model (None: on CUDA only)."""
    torch.manual_seed(0)
    tokens = torch.randint(0, VOCAB, (SAMPLES, MAX_LEN))
    labels = torch.randint(0, 2, (SAMPLES,))
    return time_steps(TransformerText(), tokens, labels, F.cross_entropy, BATCH_SIZE, steps,
                      warmup, device, compiled)


if __name__ == "__main__":
    print(f"{benchmark(steps=5, warmup=2):.1f} samples/s")
