"""The training recipe of `transformer_text`: its settings, loss, metrics, optimizer
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
epochs = 4
batch_size = 64
seed = 0
device = "auto"  # auto: CUDA when present, else the CPU
precision = "auto"  # auto: bf16 autocast on CUDA when supported, else fp32
compile_model = "auto"  # auto: torch.compile on CUDA only
grad_clip = 1.0  # max global gradient norm; None: no clipping
grad_accum = 1  # micro-batches per optimizer step
# optimizer: adamw (torch.optim's update: epsilon is added to the bias-corrected root of
# the second moment, outside the square root)
learning_rate = 0.0003
beta1, beta2 = 0.9, 0.999
epsilon = 1e-08
weight_decay = 0.01  # decoupled: weights shrink by lr * weight_decay per step
# learning-rate schedule, set every optimizer step: linear warm-up over warmup_epochs,
# then cosine decay to min_lr at the last step
warmup_epochs = 1.0
min_lr = 0.0
patience = None  # no early stopping
min_delta = 0.0
monitor = "val_loss"  # its best epoch gives best.pt, which the test metrics use
checkpoint_every = 1  # epochs
checkpoint_keep = 3  # newest epoch checkpoints kept, besides best.pt
log_every = 50  # optimizer steps between progress updates and finite-loss checks
spec_hash = "6606e20687387f92"  # a checkpoint of another network is not resumed
# what training takes, as specc estimated it from the model's shapes: parameters 5.31 MiB,
# gradients 5.31 MiB, adamw state 10.6 MiB, step scratch 9.77 MiB,
# activations of a batch of 64 at fp32 379 MiB, activation gradients 3.12 MiB, data 153 MiB
memory_needed = 594067232  # 567 MiB
max_memory = None  # refuse runs above this (e.g. "2GB"); None: above the device's free memory
# -----------------------------------------------------------------------------


def compute_loss(outputs, targets):
    """The spec's loss of a batch's outputs against its targets, in float32."""
    # cross_entropy on `dense_1`
    loss = F.cross_entropy(outputs[0].float(), targets[0], label_smoothing=0.1)
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
    return torch.optim.AdamW(
        model.parameters(), lr=learning_rate, betas=(beta1, beta2), eps=epsilon,
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
