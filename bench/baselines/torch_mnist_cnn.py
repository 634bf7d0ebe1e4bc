"""Hand-written PyTorch baseline: the Keras MNIST convnet (bench/specs/mnist_cnn.spec),
Adam, batch 128.

Images and weights are kept in channels_last memory format, as PyTorch's performance tuning
guide advises for convnets: on this CPU (oneDNN) it trains faster than the default NCHW
layout (bench/README.md has the numbers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from torch_loop import time_steps

BATCH_SIZE = 128
SAMPLES = 38400  # as the spec's synthetic(n): the same data held in memory


class MnistCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.fc1 = nn.Linear(64 * 3 * 3, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (B, 32, 13, 13)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (B, 64, 5, 5)
        x = F.relu(self.conv3(x))                   # (B, 64, 3, 3)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def benchmark(steps: int, warmup: int, device: str = "cpu",
              compiled: bool | None = None) -> float:
    """Samples per second over `steps` training steps after `warmup` untimed ones;
    `compiled`: torch.compile the model (None: on CUDA only)."""
    torch.manual_seed(0)
    images = torch.randn(SAMPLES, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (SAMPLES,))
    model = MnistCnn().to(memory_format=torch.channels_last)
    return time_steps(model, images, labels, F.cross_entropy, BATCH_SIZE, steps,
                      warmup, device, compiled)


if __name__ == "__main__":
    print(f"{benchmark(steps=50, warmup=5):.0f} samples/s")
