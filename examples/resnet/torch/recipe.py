"""The training recipe of `resnet`: its settings, loss, metrics, optimizer
and learning-rate schedule.

The settings below are the spec's train { }, optimizer and schedule: edit them here.
train.py trains with this module (its command line overrides epochs, device and
max_memory). Importing it does nothing else, so that a notebook can `import recipe` too.
"""

import math

import torch
import torch.nn.functional as F

# -----------------------------------------------------------------------------
# settings: the spec's train { }, optimizer and schedule (train.py's command line overrides
# epochs, device and max_memory)
epochs = 15
batch_size = 64
seed = 0
device = "auto"  # auto: CUDA when present, else the CPU
precision = "auto"  # auto: bf16 autocast on CUDA when supported, else fp32
compile_model = "auto"  # auto: torch.compile on CUDA only
grad_clip = None  # max global gradient norm; None: no clipping
grad_accum = 1  # micro-batches per optimizer step
# optimizer: sgd (torch.optim.SGD's update: the momentum buffer holds gradients, not steps)
learning_rate = 0.05
momentum = 0.9
nesterov = False
weight_decay = 0.0001  # L2 penalty added to the gradient
# learning-rate schedule, set every optimizer step: linear warm-up over warmup_epochs,
# then cosine decay to min_lr at the last step
warmup_epochs = 0
min_lr = 0.0
patience = None  # no early stopping
min_delta = 0.0
monitor = "val_loss"  # its best epoch gives best.pt, which the test metrics use
checkpoint_every = 1  # epochs
checkpoint_keep = 3  # newest epoch checkpoints kept, besides best.pt
log_every = 50  # optimizer steps between progress updates and finite-loss checks
spec_hash = "78053ad07c32427d"  # a checkpoint of another network is not resumed
# what training takes, as specc estimated it from the model's shapes: parameters 170 KiB,
# gradients 168 KiB, sgd state 168 KiB, activations of a batch of 64 at fp32 6.28 MiB,
# activation gradients 256 KiB, data 927 KiB
memory_needed = 8308872  # 7.92 MiB
max_memory = None  # refuse runs above this (e.g. "2GB"); None: above the device's free memory
# -----------------------------------------------------------------------------


def compute_loss(outputs, targets):
    """The spec's loss of a batch's outputs against its targets, in float32."""
    # cross_entropy on `dense_1`
    loss = F.cross_entropy(outputs[0].float(), targets[0])
    return loss


def batch_statistics(outputs, targets):
    """Sums over one batch that the metrics are computed from; they stay on the device.
    The metrics are about `dense_1`, the first output with a loss."""
    output = outputs[0].float()  # [samples, classes]
    labels = targets[0]
    predicted = output.argmax(-1)
    sums = {"count": len(labels)}
    sums["correct"] = (predicted == labels).sum()
    return sums


def metric_values(totals):
    """The metrics from a split's summed statistics (numpy)."""
    return {
        "accuracy": float(totals["correct"] / totals["count"]),
    }


def make_optimizer(model, fused=False):
    """The spec's optimizer over `model`'s parameters; `fused` (on CUDA) updates every
    parameter in one kernel launch."""
    return torch.optim.SGD(
        model.parameters(), lr=learning_rate, momentum=momentum, nesterov=nesterov,
        weight_decay=weight_decay, fused=fused,
    )


schedule_state = {}  # nothing to remember: the rate is a function of epoch and step


def learning_rate_at(epoch, step, steps_per_epoch, total_steps):
    """The rate for optimizer step `step` (counted over the run) in `epoch` (from 0), of a
    run of `total_steps` steps, `steps_per_epoch` an epoch."""
    warmup_steps = round(warmup_epochs * steps_per_epoch)
    if step < warmup_steps:
        return learning_rate * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - 1 - warmup_steps))
    return min_lr + (learning_rate - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
