"""The training loop every hand-written PyTorch baseline shares, as an expert writes it.

The data sits in memory (on the device) for the whole run; each step gathers a batch from a
random permutation, then zero_grad(set_to_none=True) / forward / backward / step, with no
host sync inside the loop. The first `warmup` steps are not timed (allocations, cuDNN's
kernel search, torch.compile); the clock starts after them and stops once the last timed
step has finished (the loss is read back, which waits for it). That is the region the
generated train.py times as well, so the two samples/s figures compare.

On CUDA the baselines do what the generated programs do by default there: bf16 autocast and
torch.compile. On the CPU: fp32, eager. `compiled` chooses torch.compile either way
(bench/gpu/run_gpu.py times the baselines both eager and compiled on CUDA).
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import torch


def device_and_settings(device: str) -> tuple[torch.device, bool]:
    """The torch device for `device` ("cpu", "cuda" or "cuda:N") and whether it is CUDA."""
    device = torch.device(device)
    on_cuda = device.type == "cuda"
    if on_cuda:
        torch.backends.cudnn.benchmark = True  # fixed batch shapes: pick kernels once
    return device, on_cuda


def time_steps(model, inputs, targets, loss_fn, batch_size, steps, warmup, device,
               compiled: bool | None = None) -> float:
    """Train `model` for `warmup` + `steps` optimizer steps with Adam (lr 1e-3) on batches of
    (`inputs`, `targets`); return the samples per second of the `steps` timed steps.
    `compiled`: run the model through torch.compile (None: on CUDA only)."""
    device, on_cuda = device_and_settings(device)
    model = model.to(device)
    inputs, targets = inputs.to(device), targets.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=on_cuda)
    if compiled is None:
        compiled = on_cuda
    forward = torch.compile(model) if compiled else model
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_cuda else nullcontext()
    order = torch.randperm(len(inputs), device=device)
    if (warmup + steps) * batch_size > len(order):
        raise ValueError(f"{warmup + steps} steps of {batch_size} need more than "
                         f"{len(order)} samples")

    model.train()
    for step in range(warmup + steps):
        if step == warmup:
            if on_cuda:
                torch.cuda.synchronize(device)
            start = time.perf_counter()
        index = order[step * batch_size:(step + 1) * batch_size]
        x, y = inputs[index], targets[index]
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = loss_fn(forward(x), y)
        loss.backward()
        optimizer.step()
    loss.item()  # waits for the last step
    return steps * batch_size / (time.perf_counter() - start)
