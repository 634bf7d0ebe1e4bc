"""The training sections of a model: loss, optimizer and schedule, metrics, augmentation, train.

Like layers, each kind is a frozen Pydantic model whose fields are its arguments in the order
LANGUAGE.md lists them, with the normative defaults. Backends read these fields; nothing here
knows a framework.
"""

from typing import Annotated, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from specc.backends.registry import BACKEND_NAMES, DEFAULT_BACKEND

Fraction = Annotated[float, Field(ge=0, lt=1)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
PositiveInt = Annotated[int, Field(gt=0)]


class Section(BaseModel):
    """Base of every training-section kind."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    kind: str
    hints: ClassVar[dict[str, str]] = {}


# --- losses -------------------------------------------------------------------------------
# `weight` scales a loss term when a model has several outputs.


class LossSection(Section):
    """Base of every loss kind."""

    # Its labels: `class_ids` (int), `binary` (0/1 or probabilities), `distributions`
    # (one-hot or probability rows over the last axis), `signs` (-1/1 or 0/1), `counts`
    # (>= 0) or `values` (any real number); and how the metrics read its output (`classes`:
    # argmax over the last axis, `binary`: a threshold per unit, `values`: regression).
    labels: ClassVar[str] = "values"
    task: ClassVar[str] = "values"


class CrossEntropy(LossSection):
    """Categorical cross-entropy over integer class labels."""

    kind: Literal["cross_entropy"] = "cross_entropy"
    from_logits: bool = True
    label_smoothing: Fraction = 0.0
    weight: NonNegativeFloat = 1.0
    labels: ClassVar[str] = "class_ids"
    task: ClassVar[str] = "classes"


class BinaryCrossEntropy(LossSection):
    kind: Literal["binary_cross_entropy"] = "binary_cross_entropy"
    from_logits: bool = True
    weight: NonNegativeFloat = 1.0
    labels: ClassVar[str] = "binary"
    task: ClassVar[str] = "binary"


class Mse(LossSection):
    kind: Literal["mse"] = "mse"
    weight: NonNegativeFloat = 1.0


class Mae(LossSection):
    kind: Literal["mae"] = "mae"
    weight: NonNegativeFloat = 1.0


class Huber(LossSection):
    kind: Literal["huber"] = "huber"
    delta: PositiveFloat = 1.0
    weight: NonNegativeFloat = 1.0


# The losses below compute what Keras's loss of the same name computes (keras.losses: the
# formula, its clipping at 1e-7, a mean over the batch and the output's positions); the
# PyTorch program computes the same. Each says which labels it takes (`labels`, read by the
# data check and the loader) and how the metrics read its output (`task`).


class CategoricalCrossEntropy(CrossEntropy):
    """Categorical cross-entropy over one-hot or probability labels [..., classes]."""

    kind: Literal["categorical_cross_entropy"] = "categorical_cross_entropy"  # type: ignore[assignment]
    labels: ClassVar[str] = "distributions"


class KlDivergence(LossSection):
    """Kullback-Leibler divergence of the output distribution from the label distribution,
    both clipped to [1e-7, 1]: the output is probabilities (a softmax's)."""

    kind: Literal["kl_divergence"] = "kl_divergence"
    weight: NonNegativeFloat = 1.0
    labels: ClassVar[str] = "distributions"
    task: ClassVar[str] = "classes"


class Poisson(LossSection):
    """Poisson negative log-likelihood, output - label * log(output + 1e-7): the output is a
    positive rate (e.g. through softplus), the labels counts >= 0."""

    kind: Literal["poisson"] = "poisson"
    weight: NonNegativeFloat = 1.0
    labels: ClassVar[str] = "counts"


class CosineSimilarity(LossSection):
    """The negative cosine similarity of output and label along the last axis (-1 when they
    point the same way)."""

    kind: Literal["cosine_similarity"] = "cosine_similarity"
    weight: NonNegativeFloat = 1.0


class LogCosh(LossSection):
    """log(cosh(output - label)), like mse near 0 and mae far from it."""

    kind: Literal["log_cosh"] = "log_cosh"
    weight: NonNegativeFloat = 1.0


class Hinge(LossSection):
    """max(1 - label * output, 0) over -1/1 labels; 0/1 labels are mapped to -1/1 first, as
    Keras does. The output is a score: positive means class 1, as a logit does."""

    kind: Literal["hinge"] = "hinge"
    weight: NonNegativeFloat = 1.0
    labels: ClassVar[str] = "signs"
    task: ClassVar[str] = "binary"
    from_logits: ClassVar[bool] = True


class SquaredHinge(Hinge):
    """max(1 - label * output, 0) squared; labels as `hinge` takes them."""

    kind: Literal["squared_hinge"] = "squared_hinge"  # type: ignore[assignment]


class BinaryFocal(LossSection):
    """Binary cross-entropy scaled by (1 - p_t)^gamma, p_t the probability given to the
    label (Keras's BinaryFocalCrossentropy); with `alpha`, class 1's terms are weighted by
    alpha and class 0's by 1 - alpha."""

    kind: Literal["binary_focal"] = "binary_focal"
    gamma: NonNegativeFloat = 2.0
    alpha: Annotated[float, Field(ge=0, le=1)] | None = None
    from_logits: bool = True
    weight: NonNegativeFloat = 1.0
    labels: ClassVar[str] = "binary"
    task: ClassVar[str] = "binary"


class CategoricalFocal(LossSection):
    """Categorical cross-entropy over one-hot or probability labels, each class's term
    scaled by alpha * (1 - p)^gamma (Keras's CategoricalFocalCrossentropy)."""

    kind: Literal["categorical_focal"] = "categorical_focal"
    gamma: NonNegativeFloat = 2.0
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.25
    from_logits: bool = True
    weight: NonNegativeFloat = 1.0
    labels: ClassVar[str] = "distributions"
    task: ClassVar[str] = "classes"


Loss = Annotated[
    Union[CrossEntropy, BinaryCrossEntropy, Mse, Mae, Huber, CategoricalCrossEntropy,
          KlDivergence, Poisson, CosineSimilarity, LogCosh, Hinge, SquaredHinge, BinaryFocal,
          CategoricalFocal],
    Field(discriminator="kind"),
]
LOSSES: dict[str, type[LossSection]] = {
    c.model_fields["kind"].default: c
    for c in (CrossEntropy, BinaryCrossEntropy, Mse, Mae, Huber, CategoricalCrossEntropy,
              KlDivergence, Poisson, CosineSimilarity, LogCosh, Hinge, SquaredHinge,
              BinaryFocal, CategoricalFocal)
}


# The names Keras and PyTorch give these losses, metrics and optimizers, which their users
# type: each points at specc's name for the same thing, never at a merely similar spelling.
# (Case is ignored: `Adam` and `SGD` need no entry.)
FRAMEWORK_NAMES: dict[str, str] = {
    "sparse_categorical_crossentropy": "cross_entropy",
    "sparse_categorical_cross_entropy": "cross_entropy",
    "crossentropy": "cross_entropy",
    "cross_entropy_loss": "cross_entropy",
    "nll_loss": "cross_entropy",
    "binary_crossentropy": "binary_cross_entropy",
    "bce": "binary_cross_entropy",
    "bce_with_logits": "binary_cross_entropy",
    "mean_squared_error": "mse",
    "mse_loss": "mse",
    "mean_absolute_error": "mae",
    "l1_loss": "mae",
    "huber_loss": "huber",
    "smooth_l1_loss": "huber",
    "sparse_categorical_accuracy": "accuracy",
    "categorical_accuracy": "accuracy",
    "binary_accuracy": "accuracy",
    "sparse_top_k_categorical_accuracy": "top_k_accuracy",
    "top_k_categorical_accuracy": "top_k_accuracy",
    "f1_score": "f1",
    "roc_auc": "auc",
    "auc_roc": "auc",
    "r2_score": "r2",
    "root_mean_squared_error": "rmse",
    "mean_absolute_percentage_error": "mape",
    "mean_io_u": "mean_iou",
    "balanced_accuracy_score": "balanced_accuracy",
    "adam_w": "adamw",
    "categorical_crossentropy": "categorical_cross_entropy",
    "kl_div": "kl_divergence",
    "kld": "kl_divergence",
    "kullback_leibler_divergence": "kl_divergence",
    "poisson_nll_loss": "poisson",
    "logcosh": "log_cosh",
    "binary_focal_crossentropy": "binary_focal",
    "categorical_focal_crossentropy": "categorical_focal",
    "n_adam": "nadam",
}
# Names with no counterpart in specc, which a similar spelling would point at wrongly (the
# nearest name to `focal` is `binary_focal`, which may not be the one meant): what to say
# instead.
FRAMEWORK_NOTES: dict[str, str] = {
    "focal": "say which: `binary_focal` (0/1 labels) or `categorical_focal` (one-hot labels)",
    "lion": "not supported: only one of the two frameworks has a Lion optimizer, so a spec "
    "cannot say it for both",
    "adafactor": "not supported: the two frameworks' Adafactor factor a weight over its last "
    "two axes, which are other axes of a convolution's kernel in each",
    "auc_pr": "the area under the precision-recall curve is `auc(curve=pr)`",
    "pr_auc": "the area under the precision-recall curve is `auc(curve=pr)`",
}

# --- learning-rate schedules --------------------------------------------------------------
# Units: `step(every)`, `exponential` and `plateau(patience)` count epochs; `cosine(warmup)`
# counts epochs but is evaluated every optimizer step; `one_cycle` spans the whole run and is
# evaluated every optimizer step.


class Constant(Section):
    kind: Literal["constant"] = "constant"


class Step(Section):
    """Multiply the rate by `gamma` every `every` epochs."""

    kind: Literal["step"] = "step"
    every: PositiveInt
    gamma: PositiveFloat = 0.1


class Exponential(Section):
    """Multiply the rate by `gamma` after each epoch."""

    kind: Literal["exponential"] = "exponential"
    gamma: PositiveFloat


class Cosine(Section):
    """Linear warm-up for `warmup` epochs, then cosine decay to `min_lr` at the last step."""

    kind: Literal["cosine"] = "cosine"
    warmup: NonNegativeFloat = 0
    min_lr: NonNegativeFloat = 0.0


class OneCycle(Section):
    """Rise to `max_lr` over the first 30% of steps, then anneal (PyTorch's OneCycleLR)."""

    kind: Literal["one_cycle"] = "one_cycle"
    max_lr: PositiveFloat


class Plateau(Section):
    """Multiply the rate by `factor` when `monitor` (val_loss, or any value an epoch reports)
    has not improved for `patience` epochs."""

    kind: Literal["plateau"] = "plateau"
    factor: Annotated[float, Field(gt=0, lt=1)] = 0.1
    patience: Annotated[int, Field(ge=0)] = 10
    monitor: str = "val_loss"


Schedule = Annotated[
    Union[Constant, Step, Exponential, Cosine, OneCycle, Plateau], Field(discriminator="kind")
]
SCHEDULES: dict[str, type[Section]] = {
    c.model_fields["kind"].default: c
    for c in (Constant, Step, Exponential, Cosine, OneCycle, Plateau)
}


# --- optimizers ---------------------------------------------------------------------------
# Epsilon is added to the root of the second moment (outside the square root), as PyTorch
# does; the TensorFlow backend realizes the same formula.


class Sgd(Section):
    kind: Literal["sgd"] = "sgd"
    lr: PositiveFloat = 0.01
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.0
    nesterov: bool = False
    weight_decay: NonNegativeFloat = 0.0
    schedule: Schedule = Constant()
    hints: ClassVar[dict[str, str]] = {"learning_rate": "lr"}


class Adam(Section):
    kind: Literal["adam"] = "adam"
    lr: PositiveFloat = 1e-3
    beta1: Annotated[float, Field(ge=0, lt=1)] = 0.9
    beta2: Annotated[float, Field(ge=0, lt=1)] = 0.999
    epsilon: PositiveFloat = 1e-8
    weight_decay: NonNegativeFloat = 0.0
    schedule: Schedule = Constant()
    hints: ClassVar[dict[str, str]] = {
        "learning_rate": "lr",
        "beta_1": "beta1",
        "beta_2": "beta2",
        "eps": "epsilon",
    }


class AdamW(Adam):
    """Adam with decoupled weight decay."""

    kind: Literal["adamw"] = "adamw"  # type: ignore[assignment]
    weight_decay: NonNegativeFloat = 0.01


class RmsProp(Section):
    kind: Literal["rmsprop"] = "rmsprop"
    lr: PositiveFloat = 1e-3
    rho: Annotated[float, Field(ge=0, lt=1)] = 0.9
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.0
    epsilon: PositiveFloat = 1e-8
    schedule: Schedule = Constant()
    hints: ClassVar[dict[str, str]] = {"learning_rate": "lr", "alpha": "rho", "eps": "epsilon"}


class Adagrad(Section):
    kind: Literal["adagrad"] = "adagrad"
    lr: PositiveFloat = 1e-2
    epsilon: PositiveFloat = 1e-10
    schedule: Schedule = Constant()
    hints: ClassVar[dict[str, str]] = {"learning_rate": "lr", "eps": "epsilon"}


class NAdam(Adam):
    """Adam with Nesterov momentum, as torch.optim.NAdam updates (its momentum schedule
    mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay)), and epsilon outside the root);
    torch's defaults."""

    kind: Literal["nadam"] = "nadam"  # type: ignore[assignment]
    lr: PositiveFloat = 2e-3
    momentum_decay: NonNegativeFloat = 4e-3


class Adamax(Adam):
    """Adam with the infinity norm: u = max(beta2 * u, |g| + epsilon), as torch.optim.Adamax
    updates; torch's defaults."""

    kind: Literal["adamax"] = "adamax"  # type: ignore[assignment]
    lr: PositiveFloat = 2e-3


Optimizer = Annotated[
    Union[Sgd, Adam, AdamW, RmsProp, Adagrad, NAdam, Adamax], Field(discriminator="kind")
]
OPTIMIZERS: dict[str, type[Section]] = {
    c.model_fields["kind"].default: c for c in (Sgd, Adam, AdamW, RmsProp, Adagrad, NAdam, Adamax)
}


# --- metrics ------------------------------------------------------------------------------
# precision, recall and f1 are binary when the output has one unit, macro-averaged otherwise.


class Accuracy(Section):
    kind: Literal["accuracy"] = "accuracy"


class TopKAccuracy(Section):
    kind: Literal["top_k_accuracy"] = "top_k_accuracy"
    k: PositiveInt = 5


class Precision(Section):
    kind: Literal["precision"] = "precision"


class Recall(Section):
    kind: Literal["recall"] = "recall"


class F1(Section):
    kind: Literal["f1"] = "f1"


class MaeMetric(Section):
    kind: Literal["mae"] = "mae"


class MseMetric(Section):
    kind: Literal["mse"] = "mse"


# These are computed over the whole split (never averaged over batches): auc from every
# sample's score, the others from summed counts.


class Auc(Section):
    """Area under the ROC curve (`curve=roc`), or under the precision-recall curve (`curve=pr`,
    as average precision), computed exactly from every sample's score: one-vs-rest and
    macro-averaged over the classes or units."""

    kind: Literal["auc"] = "auc"
    curve: Literal["roc", "pr"] = "roc"


class BalancedAccuracy(Section):
    """The mean over classes of each class's recall."""

    kind: Literal["balanced_accuracy"] = "balanced_accuracy"


class MeanIou(Section):
    """The mean over classes of each class's intersection over union."""

    kind: Literal["mean_iou"] = "mean_iou"


class ConfusionMatrix(Section):
    """Counts of each (label, prediction) pair; in results.json, not in the epoch lines."""

    kind: Literal["confusion_matrix"] = "confusion_matrix"


class R2(Section):
    """The coefficient of determination, averaged over the output's units."""

    kind: Literal["r2"] = "r2"


class Rmse(Section):
    kind: Literal["rmse"] = "rmse"


class Mape(Section):
    """Mean absolute percentage error, in percent."""

    kind: Literal["mape"] = "mape"


_METRIC_CLASSES = (Accuracy, TopKAccuracy, Precision, Recall, F1, MaeMetric, MseMetric, Auc,
                   BalancedAccuracy, MeanIou, ConfusionMatrix, R2, Rmse, Mape)
Metric = Annotated[Union[_METRIC_CLASSES], Field(discriminator="kind")]  # type: ignore[valid-type]
METRICS: dict[str, type[Section]] = {c.model_fields["kind"].default: c for c in _METRIC_CLASSES}
CLASSIFICATION_METRICS = frozenset({"accuracy", "top_k_accuracy", "precision", "recall", "f1",
                                    "auc", "balanced_accuracy", "mean_iou", "confusion_matrix"})
REGRESSION_METRICS = frozenset({"mae", "mse", "r2", "rmse", "mape"})
# Metrics whose value is a matrix: in results.json, not in the epoch lines or the monitor's.
MATRIX_METRICS = frozenset({"confusion_matrix"})


def metric_name(metric: Section) -> str:
    """The name a metric's values go under: its kind, but `auc_pr` for `auc(curve=pr)`."""
    return "auc_pr" if getattr(metric, "curve", "roc") == "pr" else metric.kind


# --- augmentation (training batches only; images in [height, width, channels]) -----------


class RandomFlip(Section):
    kind: Literal["random_flip"] = "random_flip"
    mode: Literal["horizontal", "vertical", "horizontal_and_vertical"] = "horizontal"


class RandomRotation(Section):
    """Rotate by an angle drawn uniformly from [-degrees, degrees]."""

    kind: Literal["random_rotation"] = "random_rotation"
    degrees: Annotated[float, Field(ge=0, le=180)]


class RandomTranslation(Section):
    """Shift by up to `fraction` of the height and width."""

    kind: Literal["random_translation"] = "random_translation"
    fraction: Annotated[float, Field(ge=0, le=1)]


class RandomZoom(Section):
    """Scale by a factor drawn uniformly from [1 - fraction, 1 + fraction]."""

    kind: Literal["random_zoom"] = "random_zoom"
    fraction: Annotated[float, Field(ge=0, lt=1)]


class RandomCrop(Section):
    """Pad by `padding` pixels on each side, then crop a random `size` window."""

    kind: Literal["random_crop"] = "random_crop"
    size: PositiveInt | list[PositiveInt]
    padding: Annotated[int, Field(ge=0)] = 0


Augmentation = Annotated[
    Union[RandomFlip, RandomRotation, RandomTranslation, RandomZoom, RandomCrop],
    Field(discriminator="kind"),
]
AUGMENTATIONS: dict[str, type[Section]] = {
    c.model_fields["kind"].default: c
    for c in (RandomFlip, RandomRotation, RandomTranslation, RandomZoom, RandomCrop)
}


# --- the train { } block ------------------------------------------------------------------


class EarlyStopping(Section):
    kind: Literal["early_stopping"] = "early_stopping"
    monitor: str = "val_loss"
    patience: Annotated[int, Field(ge=0)] = 5
    min_delta: NonNegativeFloat = 0.0


class Checkpoint(Section):
    """Save every `every` epochs; keep the newest `keep` checkpoints (and the best one)."""

    kind: Literal["checkpoint"] = "checkpoint"
    every: PositiveInt = 1
    keep: PositiveInt = 3


class TrainConfig(BaseModel):
    """The `train { }` keys with their defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    backend: Literal[BACKEND_NAMES] = DEFAULT_BACKEND  # type: ignore[valid-type]
    device: str = "auto"
    epochs: PositiveInt = 10
    batch_size: PositiveInt = 32
    # What batch_size counts when several processes train: each one's batch (the global batch
    # is batch_size x processes), or the global batch, split evenly between them.
    batch_size_is: Literal["per_process", "global"] = "per_process"
    seed: Annotated[int, Field(ge=0)] = 0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    compile: Literal["auto", True, False] = "auto"
    grad_clip: PositiveFloat | None = None
    # each gradient element clipped to [-grad_clip_value, grad_clip_value] (before grad_clip)
    grad_clip_value: PositiveFloat | None = None
    grad_accum: PositiveInt = 1
    # a moving average of the weights after each optimizer step, which validation, the test
    # metrics, best.pt and the export use: average = ema * average + (1 - ema) * weights
    ema: Annotated[float, Field(gt=0, lt=1)] | None = None
    # start from the weights of an earlier run: its checkpoint file, or its run directory
    # (RUN/checkpoints/best.SUFFIX); relative to the spec's folder. --resume comes first.
    init_from: str | None = None
    # with init_from: load the layers whose weights match by name and shape, and say which
    # did not (false: any layer that does not match is an error)
    init_partial: StrictBool = False
    # layers whose weights are not trained, by the names `specc check` shows
    freeze: tuple[str, ...] = ()
    early_stopping: EarlyStopping | None = None
    checkpoint: Checkpoint = Checkpoint()
    # event files in RUN/tensorboard when the program finds TensorBoard's writer; false:
    # none, and no TensorBoard code in train.py
    tensorboard: StrictBool = True
    # held-out splits of a classifier's data keep its class proportions; false: at random
    stratify: StrictBool = True
    # each training sample's loss term weighted by its class's weight, as Keras's
    # fit(class_weight=): `balanced` (n_samples / (classes * count), on the training split)
    # or one weight per class
    class_weight: Literal["balanced"] | list[NonNegativeFloat] | None = None

    hints: ClassVar[dict[str, str]] = {"batch": "batch_size", "lr": "optimizer lr="}

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
            return value
        raise ValueError(f"expected auto, cpu, cuda or cuda:N, got {value!r}")


# Settings in `train { }` that are written as calls rather than `key = value`.
TRAIN_CALLS: dict[str, type[Section]] = {"early_stopping": EarlyStopping, "checkpoint": Checkpoint}
