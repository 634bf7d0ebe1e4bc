"""Hand-written PyTorch baseline: the LSTM text classifier (bench/specs/lstm_text.spec),
Adam, batch 64, 200-token sequences."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from torch_loop import time_steps

BATCH_SIZE = 64
SAMPLES = 19200  # as the spec's synthetic(n): the same data held in memory
VOCAB, MAX_LEN = 20000, 200


class LstmText(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 128)
        self.lstm = nn.LSTM(128, 128, batch_first=True)
        self.fc = nn.Linear(128, 2)

    def forward(self, tokens):
        _, (h_n, _) = self.lstm(self.embedding(tokens))
        return self.fc(h_n[-1])  # the last time step's hidden state


def benchmark(steps: int, warmup: int, device: str = "cpu",
              compiled: bool | None = None) -> float:
    """Samples per second over `steps` training steps after `warmup` untimed ones;
    `compiled`: torch.compile the model (None: on CUDA only)."""
    torch.manual_seed(0)
    tokens = torch.randint(0, VOCAB, (SAMPLES, MAX_LEN))
    labels = torch.randint(0, 2, (SAMPLES,))
    return time_steps(LstmText(), tokens, labels, F.cross_entropy, BATCH_SIZE, steps,
                      warmup, device, compiled)


if __name__ == "__main__":
    print(f"{benchmark(steps=10, warmup=5):.0f} samples/s")
