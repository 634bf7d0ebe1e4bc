"""The training recipe of `linear_regression`: its settings, loss, metrics, optimizer
and learning-rate schedule.

The settings below are the spec's train { }, optimizer and schedule: edit them here.
train.py trains with this module (its command line overrides epochs, device and
max_memory). Importing it does nothing else, so that a notebook can `import recipe` too.
"""


import keras
import tensorflow as tf

# -----------------------------------------------------------------------------
# settings: the spec's train { }, optimizer and schedule (train.py's command line overrides
# epochs, device and max_memory)
epochs = 100
batch_size = 32
seed = 0
device = "auto"  # auto: a GPU when TensorFlow sees one, else the CPU
precision = "auto"  # auto: mixed bf16 on a GPU that has it, else fp32
compile_model = "auto"  # XLA-compile the steps (jit_compile); auto: on a GPU only
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
monitor = "val_loss"  # its best epoch gives best.npz, which the test metrics use
checkpoint_every = 1  # epochs
checkpoint_keep = 3  # newest epoch checkpoints kept, besides best.npz
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
    loss = tf.reduce_mean(tf.square(tf.cast(outputs[0], tf.float32) - targets[0]))
    return loss


def batch_statistics(outputs, targets):
    """Sums over one batch that the metrics are computed from; they stay on the device.
    The metrics are about `dense_1`, the first output with a loss."""
    error = tf.cast(outputs[0], tf.float32) - targets[0]
    sums = {"count": tf.size(error, out_type=tf.int64)}
    sums["absolute_error"] = tf.reduce_sum(tf.cast(tf.abs(error), tf.float64))
    return sums


def metric_values(totals):
    """The metrics from a split's summed statistics (numpy)."""
    return {
        "mae": float(totals["absolute_error"] / totals["count"]),
    }


class TorchSGD(keras.optimizers.Optimizer):
    """SGD as torch.optim.SGD updates a weight p with gradient g, which is what the spec's
    sgd means:

        g = g + weight_decay * p          (an L2 penalty)
        b = momentum * b + g              (the momentum buffer; 0 before the first step)
        p = p - lr * (g + momentum * b)   (nesterov), or p - lr * b

    keras.optimizers.SGD keeps lr * b in its buffer instead, which differs as soon as the
    learning rate changes.
    """

    def __init__(self, learning_rate, momentum=0.0, nesterov=False, weight_decay=0.0,
                 clip_norm=None, name="sgd"):
        super().__init__(learning_rate=learning_rate, name=name)
        self.momentum, self.nesterov = momentum, nesterov
        self.l2, self.clip_norm = weight_decay, clip_norm

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        if self.momentum:
            self.buffers = [self.add_variable_from_reference(v, "momentum") for v in variables]

    def apply(self, grads, trainable_variables=None):
        """Clip the gradients to a global norm of clip_norm the way
        torch.nn.utils.clip_grad_norm_ does (Keras's global_clipnorm leaves out its 1e-6),
        then update. An embedding's gradient (IndexedSlices: the rows looked up) is made
        dense first: torch.optim updates every row, moments included, at every step."""
        grads = [tf.convert_to_tensor(grad) if isinstance(grad, tf.IndexedSlices) else grad
                 for grad in grads]
        if self.clip_norm is not None:
            norm = tf.linalg.global_norm(grads)
            scale = tf.minimum(1.0, self.clip_norm / (norm + 1e-6))
            grads = [None if grad is None else grad * scale for grad in grads]
        return super().apply(grads, trainable_variables)

    def update_step(self, gradient, variable, learning_rate):
        lr = tf.cast(learning_rate, variable.dtype)
        if self.l2:
            gradient = gradient + self.l2 * variable
        if self.momentum:
            buffer = self.buffers[self._get_variable_index(variable)]
            self.assign(buffer, self.momentum * buffer + gradient)
            gradient = gradient + self.momentum * buffer if self.nesterov else buffer
        self.assign_sub(variable, lr * gradient)



def make_optimizer(model, loss_scale=False):
    """The spec's optimizer for `model`'s trainable variables, built: its variables exist
    before a resume fills them. With `loss_scale` (fp16, whose gradients underflow without)
    the loss is scaled up, a step whose gradients overflow is skipped, and the scale adapts,
    as torch's GradScaler does."""
    optimizer = TorchSGD(learning_rate, momentum, nesterov, weight_decay, clip_norm=grad_clip)
    if loss_scale:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)
    return optimizer


schedule_state = {}  # nothing to remember: the rate is a function of epoch and step


def learning_rate_at(epoch, step, steps_per_epoch, total_steps):
    """The rate for optimizer step `step` (counted over the run) in `epoch` (from 0), of a
    run of `total_steps` steps, `steps_per_epoch` an epoch."""
    return learning_rate
