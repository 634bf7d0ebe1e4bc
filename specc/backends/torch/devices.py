"""The GPUs PyTorch sees and their peak memory, for `specc bench` (imports torch)."""

from __future__ import annotations

import torch


def gpu_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def peak_gpu_mib() -> float | None:
    """The most memory the run's tensors held on any GPU, in MiB; None off the GPU."""
    if not torch.cuda.is_initialized():
        return None
    return max(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count())) / 2**20
