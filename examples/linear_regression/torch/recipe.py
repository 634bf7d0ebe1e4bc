"""The training recipe of `linear_regression`: its settings, loss, metrics, optimizer
and learning-rate schedule.

The settings below are the spec's train { }, optimizer and schedule: edit them here.
train.py trains with this module (its command line overrides epochs, device and
max_memory). Importing it does nothing else, so that a notebook can `import recipe` too.
"""


import torch
import torch.nn.functional as F

# -----------------------------------------------------------------------------
# settings: the spec's train { }, optimizer and schedule (train.py's command line overrides
# epochs, device and max_memory)
epochs = 100
batch_size = 32
seed = 0
device = "auto"  # auto: CUDA when present, else the CPU
precision = "auto"  # auto: bf16 autocast on CUDA when supported, else fp32
compile_model = "auto"  # auto: torch.compile on CUDA only
grad_clip = None  # max global gradient norm; None: no clipping
grad_accum = 1  # micro-batches per optimizer step
# optimizer: sgd (torch.optim.SGD's update: the momentum buffer holds gradients, not steps)
learning_rate = 0.05
momentum = 0.0
nesterov = False
weight_decay = 0.0  # L2 penalty added to the gradient
# learning-rate schedule: constant
patience = None  # no early stopping
min_delta = 0.0
monitor = "val_loss"  # its best epoch gives best.pt, which the test metrics use
checkpoint_every = 1  # epochs
checkpoint_keep = 3  # newest epoch checkpoints kept, besides best.pt
log_every = 50  # optimizer steps between progress updates and finite-loss checks
spec_hash = "feaad79eeeef885a"  # a checkpoint of another network is not resumed
# what training takes, as specc estimated it from the model's shapes: parameters 44 B,
# gradients 44 B, sgd state 0 B, activations of a batch of 32 at fp32 1.38 KiB,
# activation gradients 1.25 KiB, data 38 KiB
memory_needed = 41672  # 40.7 KiB
max_memory = None  # refuse runs above this (e.g. "2GB"); None: above the device's free memory
# -----------------------------------------------------------------------------


def compute_loss(outputs, targets):
    """The spec's loss of a batch's outputs against its targets, in float32."""
    # mse on `dense_1`
    loss = F.mse_loss(outputs[0].float(), targets[0])
    return loss


def batch_statistics(outputs, targets):
    """Sums over one batch that the metrics are computed from; they stay on the device.
    The metrics are about `dense_1`, the first output with a loss."""
    error = outputs[0].float() - targets[0]
    sums = {"count": error.numel()}
    sums["absolute_error"] = error.abs().sum().double()
    return sums


def metric_values(totals):
    """The metrics from a split's summed statistics (numpy)."""
    return {
        "mae": float(totals["absolute_error"] / totals["count"]),
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
    return learning_rate
