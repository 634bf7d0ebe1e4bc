"""The training recipe of `logistic_regression`: its settings, loss, metrics, optimizer
and learning-rate schedule.

The settings below are the spec's train { }, optimizer and schedule: edit them here.
train.py trains with this module (its command line overrides epochs, device and
max_memory). Importing it does nothing else, so that a notebook can `import recipe` too.
"""


import numpy as np
import torch
import torch.nn.functional as F

# -----------------------------------------------------------------------------
# settings: the spec's train { }, optimizer and schedule (train.py's command line overrides
# epochs, device and max_memory)
epochs = 30
batch_size = 32
seed = 0
device = "auto"  # auto: CUDA when present, else the CPU
precision = "auto"  # auto: bf16 autocast on CUDA when supported, else fp32
compile_model = "auto"  # auto: torch.compile on CUDA only
grad_clip = None  # max global gradient norm; None: no clipping
grad_accum = 1  # micro-batches per optimizer step
# optimizer: adam (torch.optim's update: epsilon is added to the bias-corrected root of
# the second moment, outside the square root)
learning_rate = 0.01
beta1, beta2 = 0.9, 0.999
epsilon = 1e-08
weight_decay = 0.0  # L2 penalty added to the gradient
# learning-rate schedule: constant
patience = None  # no early stopping
min_delta = 0.0
monitor = "val_loss"  # its best epoch gives best.pt, which the test metrics use
checkpoint_every = 1  # epochs
checkpoint_keep = 3  # newest epoch checkpoints kept, besides best.pt
log_every = 50  # optimizer steps between progress updates and finite-loss checks
spec_hash = "05cbfafd6fab96b1"  # a checkpoint of another network is not resumed
# what training takes, as specc estimated it from the model's shapes: parameters 124 B,
# gradients 124 B, adam state 248 B, step scratch 248 B,
# activations of a batch of 32 at fp32 3.88 KiB, activation gradients 3.75 KiB, data 138 KiB
memory_needed = 149664  # 146 KiB
max_memory = None  # refuse runs above this (e.g. "2GB"); None: above the device's free memory
# -----------------------------------------------------------------------------


def compute_loss(outputs, targets):
    """The spec's loss of a batch's outputs against its targets, in float32."""
    # binary_cross_entropy on `dense_1`
    loss = F.binary_cross_entropy_with_logits(outputs[0].float(), targets[0])
    return loss


def batch_statistics(outputs, targets):
    """Sums over one batch that the metrics are computed from; they stay on the device.
    The metrics are about `dense_1`, the first output with a loss."""
    output = outputs[0].float()
    predicted = output > 0  # a positive logit is a probability above 0.5
    actual = targets[0] > 0.5
    sums = {"count": actual.numel()}
    sums["correct"] = (predicted == actual).sum()
    # per unit: true positives, positive predictions, positive labels
    sums["true_positives"] = (predicted & actual).flatten(0, -2).sum(0)
    sums["predicted"] = predicted.flatten(0, -2).sum(0)
    sums["actual"] = actual.flatten(0, -2).sum(0)
    return sums


def metric_values(totals):
    """The metrics from a split's summed statistics (numpy). Precision, recall and
    f1 are binary for one unit, macro-averaged over classes (or units) otherwise."""
    true_positives = totals["true_positives"]
    predicted = totals["predicted"]  # per class: how often it was predicted
    actual = totals["actual"]  # per class: how often it was the label
    return {
        "accuracy": float(totals["correct"] / totals["count"]),
        "precision": float(np.mean(true_positives / np.maximum(predicted, 1))),
        "recall": float(np.mean(true_positives / np.maximum(actual, 1))),
    }


def make_optimizer(model, fused=False):
    """The spec's optimizer over `model`'s parameters; `fused` (on CUDA) updates every
    parameter in one kernel launch."""
    return torch.optim.Adam(
        model.parameters(), lr=learning_rate, betas=(beta1, beta2), eps=epsilon,
        weight_decay=weight_decay, fused=fused,
    )


schedule_state = {}  # nothing to remember: the rate is a function of epoch and step


def learning_rate_at(epoch, step, steps_per_epoch, total_steps):
    """The rate for optimizer step `step` (counted over the run) in `epoch` (from 0), of a
    run of `total_steps` steps, `steps_per_epoch` an epoch."""
    return learning_rate
