"""The training recipe of `digits_cnn`: its settings, loss, metrics, optimizer
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
epochs = 20
batch_size = 64
seed = 0
device = "auto"  # auto: a GPU when TensorFlow sees one, else the CPU
precision = "auto"  # auto: mixed bf16 on a GPU that has it, else fp32
compile_model = "auto"  # XLA-compile the steps (jit_compile); auto: on a GPU only
grad_clip = None  # max global gradient norm; None: no clipping
grad_accum = 1  # micro-batches per optimizer step
# optimizer: adam (torch.optim's update: epsilon is added to the bias-corrected root of
# the second moment, outside the square root)
learning_rate = 0.001
beta1, beta2 = 0.9, 0.999
epsilon = 1e-08
weight_decay = 0.0  # L2 penalty added to the gradient
# learning-rate schedule: constant
patience = None  # no early stopping
min_delta = 0.0
monitor = "val_loss"  # its best epoch gives best.npz, which the test metrics use
checkpoint_every = 1  # epochs
checkpoint_keep = 3  # newest epoch checkpoints kept, besides best.npz
log_every = 50  # optimizer steps between progress updates and finite-loss checks
spec_hash = "20550cc7e2ca0bb7"  # a checkpoint of another network is not resumed
# what training takes, as specc estimated it from the model's shapes: parameters 591 KiB,
# gradients 591 KiB, adam state 1.15 MiB, step scratch 1 MiB,
# activations of a batch of 64 at fp32 2.8 MiB, activation gradients 1 MiB, data 927 KiB
memory_needed = 8403184  # 8.01 MiB
max_memory = None  # refuse runs above this (e.g. "2GB"); None: above the device's free memory
# -----------------------------------------------------------------------------


def cross_entropy(scores, labels, label_smoothing=0.0):
    """Mean cross-entropy of class scores [..., classes] against integer labels [...], as
    torch's F.cross_entropy: the label's -log softmax, or with label smoothing s,
    (1 - s) times that plus s times the mean of -log softmax over the classes."""
    scores = tf.reshape(scores, [-1, scores.shape[-1]])  # a sequence's positions are samples
    labels = tf.reshape(labels, [-1])
    if not label_smoothing:
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, scores))
    log_probabilities = tf.nn.log_softmax(scores)
    picked = -tf.gather(log_probabilities, labels, batch_dims=1)
    spread = -tf.reduce_mean(log_probabilities, axis=-1)
    return tf.reduce_mean((1 - label_smoothing) * picked + label_smoothing * spread)


def compute_loss(outputs, targets):
    """The spec's loss of a batch's outputs against its targets, in float32."""
    # cross_entropy on `dense_2`
    loss = cross_entropy(tf.cast(outputs[0], tf.float32), targets[0])
    return loss


def count_true(condition, axis=None):
    """How many elements of a boolean tensor are true (along `axis`), as int64."""
    return tf.reduce_sum(tf.cast(condition, tf.int64), axis=axis)


def batch_statistics(outputs, targets):
    """Sums over one batch that the metrics are computed from; they stay on the device.
    The metrics are about `dense_2`, the first output with a loss."""
    output = tf.cast(outputs[0], tf.float32)
    labels = targets[0]
    predicted = tf.argmax(output, axis=-1)
    sums = {"count": tf.size(labels, out_type=tf.int64)}
    sums["correct"] = count_true(predicted == labels)
    return sums


def metric_values(totals):
    """The metrics from a split's summed statistics (numpy)."""
    return {
        "accuracy": float(totals["correct"] / totals["count"]),
    }


class TorchAdam(keras.optimizers.Optimizer):
    """Adam as torch.optim.Adam (decoupled=False) and torch.optim.AdamW (decoupled=True)
    update a weight p with gradient g at step t, which is what the spec's adam and adamw mean:

        g = g + weight_decay * p               (adam: an L2 penalty)
        p = p - lr * weight_decay * p          (adamw: decoupled decay, before the update)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + epsilon)

    keras.optimizers.Adam adds epsilon to sqrt(v) before the bias correction instead (the
    paper's "epsilon hat"), which differs wherever v is small.
    """

    def __init__(self, learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.0,
                 decoupled=False, clip_norm=None, name="adam"):
        super().__init__(learning_rate=learning_rate, name=name)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.decay, self.decoupled, self.clip_norm = weight_decay, decoupled, clip_norm

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.m = [self.add_variable_from_reference(v, "m") for v in variables]
        self.v = [self.add_variable_from_reference(v, "v") for v in variables]

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
        index = self._get_variable_index(variable)
        m, v = self.m[index], self.v[index]
        lr = tf.cast(learning_rate, variable.dtype)
        if self.decoupled:
            self.assign_sub(variable, lr * self.decay * variable)
        elif self.decay:
            gradient = gradient + self.decay * variable
        self.assign_add(m, (1 - self.beta1) * (gradient - m))
        self.assign(v, self.beta2 * v + (1 - self.beta2) * tf.square(gradient))
        # The bias corrections in float64, as torch computes them (in Python).
        t = tf.cast(self.iterations + 1, tf.float64)
        correction1 = tf.cast(1 - tf.pow(tf.constant(self.beta1, tf.float64), t), variable.dtype)
        correction2 = tf.cast(tf.sqrt(1 - tf.pow(tf.constant(self.beta2, tf.float64), t)),
                              variable.dtype)
        denominator = tf.sqrt(v) / correction2 + self.epsilon
        self.assign_sub(variable, lr / correction1 * m / denominator)



def make_optimizer(model, loss_scale=False):
    """The spec's optimizer for `model`'s trainable variables, built: its variables exist
    before a resume fills them. With `loss_scale` (fp16, whose gradients underflow without)
    the loss is scaled up, a step whose gradients overflow is skipped, and the scale adapts,
    as torch's GradScaler does."""
    optimizer = TorchAdam(learning_rate, beta1, beta2, epsilon, weight_decay,
                          clip_norm=grad_clip)
    if loss_scale:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)
    return optimizer


schedule_state = {}  # nothing to remember: the rate is a function of epoch and step


def learning_rate_at(epoch, step, steps_per_epoch, total_steps):
    """The rate for optimizer step `step` (counted over the run) in `epoch` (from 0), of a
    run of `total_steps` steps, `steps_per_epoch` an epoch."""
    return learning_rate
