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


class CrossEntropy(Section):
    """Categorical cross-entropy over integer class labels."""

    kind: Literal["cross_entropy"] = "cross_entropy"
    from_logits: bool = True
    label_smoothing: Fraction = 0.0
    weight: NonNegativeFloat = 1.0


class BinaryCrossEntropy(Section):
    kind: Literal["binary_cross_entropy"] = "binary_cross_entropy"
    from_logits: bool = True
    weight: NonNegativeFloat = 1.0


class Mse(Section):
    kind: Literal["mse"] = "mse"
    weight: NonNegativeFloat = 1.0


class Mae(Section):
    kind: Literal["mae"] = "mae"
    weight: NonNegativeFloat = 1.0


class Huber(Section):
    kind: Literal["huber"] = "huber"
    delta: PositiveFloat = 1.0
    weight: NonNegativeFloat = 1.0


Loss = Annotated[
    Union[CrossEntropy, BinaryCrossEntropy, Mse, Mae, Huber], Field(discriminator="kind")
]
LOSSES: dict[str, type[Section]] = {
    c.model_fields["kind"].default: c for c in (CrossEntropy, BinaryCrossEntropy, Mse, Mae, Huber)
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
    "adam_w": "adamw",
}
# Names with no counterpart in specc, which a similar spelling would point at wrongly (the
# nearest name to `categorical_crossentropy` is `binary_cross_entropy`): what to say instead.
FRAMEWORK_NOTES: dict[str, str] = {
    "categorical_crossentropy": "one-hot labels are not supported; `cross_entropy` takes "
    "class ids, as Keras's sparse_categorical_crossentropy does",
    "categorical_cross_entropy": "one-hot labels are not supported; `cross_entropy` takes "
    "class ids, as Keras's sparse_categorical_crossentropy does",
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


Optimizer = Annotated[Union[Sgd, Adam, AdamW, RmsProp, Adagrad], Field(discriminator="kind")]
OPTIMIZERS: dict[str, type[Section]] = {
    c.model_fields["kind"].default: c for c in (Sgd, Adam, AdamW, RmsProp, Adagrad)
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


Metric = Annotated[
    Union[Accuracy, TopKAccuracy, Precision, Recall, F1, MaeMetric, MseMetric],
    Field(discriminator="kind"),
]
METRICS: dict[str, type[Section]] = {
    c.model_fields["kind"].default: c
    for c in (Accuracy, TopKAccuracy, Precision, Recall, F1, MaeMetric, MseMetric)
}
CLASSIFICATION_METRICS = frozenset({"accuracy", "top_k_accuracy", "precision", "recall", "f1"})


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

    hints: ClassVar[dict[str, str]] = {"batch": "batch_size", "lr": "optimizer lr="}

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
            return value
        raise ValueError(f"expected auto, cpu, cuda or cuda:N, got {value!r}")


# Settings in `train { }` that are written as calls rather than `key = value`.
TRAIN_CALLS: dict[str, type[Section]] = {"early_stopping": EarlyStopping, "checkpoint": Checkpoint}
