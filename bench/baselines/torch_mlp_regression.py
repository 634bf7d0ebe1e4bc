"""Hand-written PyTorch baseline: the MLP regression (bench/specs/mlp_regression.spec),
64 -> 256 -> 256 -> 1, mean squared error, Adam, batch 1024."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from torch_loop import time_steps

BATCH_SIZE = 1024
SAMPLES = 307200  # as the spec's synthetic(n): the same data held in memory


def benchmark(steps: int, warmup: int, device: str = "cpu",
              compiled: bool | None = None) -> float:
    """Samples per second over `steps` training steps after `warmup` untimed ones;
    `compiled`: torch.compile the model (None: on CUDA only)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(64, 256), nn.ReLU(),
        nn.Linear(256, 256), nn.ReLU(),
        nn.Linear(256, 1),
    )
    features = torch.randn(SAMPLES, 64)
    targets = torch.randn(SAMPLES, 1)
    return time_steps(model, features, targets, F.mse_loss, BATCH_SIZE, steps, warmup, device,
                      compiled)


if __name__ == "__main__":
    print(f"{benchmark(steps=200, warmup=5):.0f} samples/s")
