"""Activations, as layers (`relu()`) and as the `activation=` argument of weighted layers.

Both forms mean the same function. As an argument an activation takes its defaults:
`leaky_relu` has slope 0.01 (PyTorch's; Keras's layer default is 0.3, so its backend must
say 0.01), `softmax` runs along the last axis, `gelu` is the exact (erf) form in both
frameworks, `elu` has alpha 1, `silu` is x * sigmoid(x) (Keras's `swish`). `softplus` is
log(1 + exp(x)), `softsign` x / (1 + |x|), `selu` the self-normalizing ELU (both frameworks'
constants), `mish` x * tanh(softplus(x)), `hard_sigmoid` relu6(x + 3) / 6 (PyTorch's, and Keras
3's), `hard_swish` x * hard_sigmoid(x), `exponential` exp(x).

As `activation=` values two more names are accepted: `swish`, another name of `silu`, and
`linear`, which is no activation (as `none`).

`prelu()` is a layer only: its negative slopes are weights.
"""

from typing import Annotated, ClassVar, Literal, get_args

from pydantic import BeforeValidator, field_validator

from specc.layers.args import Flag, Float, Int, NonNegativeFloat, invalid
from specc.layers.base import Backend, Layer, ParamCount, Shape, require_known, resolve_axis

ActivationKind = Literal[
    "relu", "gelu", "sigmoid", "tanh", "softmax", "silu", "elu", "leaky_relu", "softplus",
    "softsign", "selu", "mish", "hard_sigmoid", "hard_swish", "exponential",
]
ACTIVATIONS: tuple[str, ...] = get_args(ActivationKind)
# Other names of the same functions, as `activation=` values: Keras's and the literature's.
ACTIVATION_ALIASES: dict[str, str | None] = {"swish": "silu", "linear": None}


def _canonical(name: object) -> object:
    """An alias replaced by the activation's own name (`linear` by none)."""
    return ACTIVATION_ALIASES.get(name, name) if isinstance(name, str) else name


# The types of an `activation=` argument: one that must name a function, and one that may be
# none (or `linear`).
Activation = Annotated[ActivationKind, BeforeValidator(_canonical)]
OptionalActivation = Annotated[ActivationKind | None, BeforeValidator(_canonical)]


class ActivationLayer(Layer):
    """An activation applied to every element (softmax: along one axis); no parameters."""

    def output_shape(self, inputs: list[Shape]) -> Shape:
        return inputs[0]


class Relu(ActivationLayer):
    kind: Literal["relu"] = "relu"


class Gelu(ActivationLayer):
    kind: Literal["gelu"] = "gelu"


class Sigmoid(ActivationLayer):
    kind: Literal["sigmoid"] = "sigmoid"


class Tanh(ActivationLayer):
    kind: Literal["tanh"] = "tanh"


class Softmax(ActivationLayer):
    """Softmax along `axis`, which counts the batch as axis 0 as both frameworks do: -1 (the
    default) is the last axis, 1 the first axis written in the spec's shapes."""

    kind: Literal["softmax"] = "softmax"
    axis: Int = -1

    hints: ClassVar[dict[str, str]] = {"dim": "axis"}

    @field_validator("axis")
    @classmethod
    def _not_batch(cls, axis: int) -> int:
        if axis == 0:
            raise invalid("softmax cannot run across the batch", "a non-zero axis", "axis 0")
        return axis

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        resolve_axis(self.axis, shape)
        return shape


class Silu(ActivationLayer):
    kind: Literal["silu"] = "silu"


class Elu(ActivationLayer):
    kind: Literal["elu"] = "elu"


class Softplus(ActivationLayer):
    kind: Literal["softplus"] = "softplus"


class Softsign(ActivationLayer):
    kind: Literal["softsign"] = "softsign"


class Selu(ActivationLayer):
    kind: Literal["selu"] = "selu"


class Mish(ActivationLayer):
    kind: Literal["mish"] = "mish"


class HardSigmoid(ActivationLayer):
    kind: Literal["hard_sigmoid"] = "hard_sigmoid"


class HardSwish(ActivationLayer):
    kind: Literal["hard_swish"] = "hard_swish"


class Exponential(ActivationLayer):
    kind: Literal["exponential"] = "exponential"


class LeakyRelu(ActivationLayer):
    """x for x ≥ 0, slope * x below; `slope` is both frameworks' `negative_slope`."""

    kind: Literal["leaky_relu"] = "leaky_relu"
    slope: NonNegativeFloat = 0.01

    hints: ClassVar[dict[str, str]] = {"negative_slope": "slope", "alpha": "slope"}


ACTIVATION_LAYERS: tuple[type[ActivationLayer], ...] = (
    Relu,
    Gelu,
    Sigmoid,
    Tanh,
    Softmax,
    Silu,
    Elu,
    LeakyRelu,
    Softplus,
    Softsign,
    Selu,
    Mish,
    HardSigmoid,
    HardSwish,
    Exponential,
)


class PReLU(Layer):
    """x for x ≥ 0, alpha * x below, alpha learned: one per channel (the last axis), or one
    for the whole input with `shared=true`, starting at `alpha` (0.25, PyTorch's; Keras's
    own PReLU starts at zeros with one alpha per element, so its backend passes both a
    Constant(0.25) initializer and shared_axes for every axis but the channels).
    """

    kind: Literal["prelu"] = "prelu"
    alpha: Float = 0.25
    shared: Flag = False

    hints: ClassVar[dict[str, str]] = {
        "init": "alpha",
        "alpha_initializer": "alpha",
        "num_parameters": "shared",
        "shared_axes": "shared",
    }

    def alphas(self, shape: Shape) -> int:
        """How many alphas the layer learns on an input of `shape`."""
        return 1 if self.shared else require_known(shape, -1, "channels")

    def output_shape(self, inputs: list[Shape]) -> Shape:
        self.alphas(inputs[0])
        return inputs[0]

    def params(self, inputs: list[Shape], backend: Backend) -> ParamCount:
        return ParamCount(self.alphas(inputs[0]))
