"""Activations, as layers (`relu()`) and as the `activation=` argument of weighted layers.

Both forms mean the same function. As an argument an activation takes its defaults:
`leaky_relu` has slope 0.01 (PyTorch's; Keras's layer default is 0.3, so its backend must
say 0.01), `softmax` runs along the last axis, `gelu` is the exact (erf) form in both
frameworks, `elu` has alpha 1, `silu` is x * sigmoid(x) (Keras's `swish`).
"""

from typing import ClassVar, Literal, get_args

from pydantic import field_validator

from specc.layers.args import Int, NonNegativeFloat, invalid
from specc.layers.base import Layer, Shape, resolve_axis

Activation = Literal["relu", "gelu", "sigmoid", "tanh", "softmax", "silu", "elu", "leaky_relu"]
ACTIVATIONS: tuple[str, ...] = get_args(Activation)


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
)
