"""Normalization over the last (channels / features) axis: batchnorm and layernorm.

The frameworks spell the same numbers differently, so the arguments are fixed here once:
`momentum` is the weight of the NEW batch statistic in the running average (PyTorch's
meaning; Keras's `momentum` is 1 - this), and `epsilon` defaults to 1e-5 for both layers
(PyTorch's; Keras defaults to 1e-3, so its backend must pass it).
"""

from typing import ClassVar, Literal

from specc.layers.args import PositiveFloat, UnitInterval
from specc.layers.base import Backend, Layer, ParamCount, Shape, numel, require_known


def _features(shape: Shape) -> int:
    return require_known(shape, -1, "features (last axis)")


class BatchNorm(Layer):
    """Normalizes each channel over the batch (and spatial / time axes) with batch
    statistics while training and running averages at inference.

    Parameters: a scale and a shift per channel (trainable) and the running mean and
    variance (non-trainable; PyTorch buffers, Keras non-trainable weights) — 2C + 2C on both.
    """

    kind: Literal["batchnorm"] = "batchnorm"
    momentum: UnitInterval = 0.1
    epsilon: PositiveFloat = 1e-5

    hints: ClassVar[dict[str, str]] = {"eps": "epsilon"}
    moves_state: ClassVar[bool] = True  # the running mean and variance

    def output_shape(self, inputs: list[Shape]) -> Shape:
        _features(inputs[0])
        return inputs[0]

    def params(self, inputs: list[Shape], backend: Backend) -> ParamCount:
        channels = _features(inputs[0])
        return ParamCount(2 * channels, 2 * channels)

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        # Inference: a scale and a shift per element (the statistics fold into them).
        elements = numel(output)
        return None if elements is None else 2 * elements


class LayerNorm(Layer):
    """Normalizes each position over its last axis, then scales and shifts (2 * features)."""

    kind: Literal["layernorm"] = "layernorm"
    epsilon: PositiveFloat = 1e-5

    hints: ClassVar[dict[str, str]] = {"eps": "epsilon", "layer_norm_eps": "epsilon"}

    def output_shape(self, inputs: list[Shape]) -> Shape:
        _features(inputs[0])
        return inputs[0]

    def params(self, inputs: list[Shape], backend: Backend) -> ParamCount:
        return ParamCount(2 * _features(inputs[0]))

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        # Mean, variance, normalize, scale and shift: about five operations per element.
        elements = numel(output)
        return None if elements is None else 5 * elements
