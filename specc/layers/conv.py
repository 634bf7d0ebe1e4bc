"""Convolutions over channels-last inputs: conv1d, conv2d, conv3d, conv2d_transpose,
depthwise_conv2d, separable_conv1d, separable_conv2d.

Kernels are stored by the frameworks in different layouts (Keras [*window, in, out], PyTorch
[out, in, *window]); the parameter counts below do not depend on it. Window sizes, `same` and
explicit padding follow `specc.layers.window`.
"""

from typing import ClassVar, Literal

from pydantic import ValidationInfo, field_validator

from specc.errors import ShapeError, mismatch
from specc.layers.activation import OptionalActivation
from specc.layers.args import Flag, NonNegativeFloat, PerAxis, PositiveInt, invalid
from specc.layers.base import Backend, ParamCount, Shape, fmt_shape, numel, require_known
from specc.layers.initializers import BIAS_INIT_HINTS, INIT_HINTS, BiasInitializer, Initializer
from specc.layers.window import CausalPadding, Padding, SpatialLayer, Window

# Framework spellings shared by every convolution, for "did you mean".
WINDOW_HINTS: dict[str, str] = {
    "kernel_size": "kernel",
    "strides": "stride",
    "use_bias": "bias",
    **INIT_HINTS,
    **BIAS_INIT_HINTS,
}


def _in_channels(layer: SpatialLayer, shape: Shape) -> int:
    """The input's channel count, after checking its layout: weights depend on it."""
    layer.spatial_input(shape)
    return require_known(shape, -1, "input channels (last axis)")


class Conv(SpatialLayer):
    """A convolution with `filters` output channels (shared by conv1d, conv2d and conv3d).

    `groups` splits input and output channels into that many independent convolutions, so
    both `filters` and the input channels must be multiples of it. `l1` / `l2` penalize the
    kernel as in `dense`.
    """

    filters: PositiveInt
    kernel: PerAxis
    stride: PerAxis = 1
    padding: Padding = "valid"
    dilation: PerAxis = 1
    groups: PositiveInt = 1
    activation: OptionalActivation = None
    bias: Flag = True
    l1: NonNegativeFloat = 0.0
    l2: NonNegativeFloat = 0.0
    init: Initializer = "glorot_uniform"
    bias_init: BiasInitializer = "zeros"

    hints: ClassVar[dict[str, str]] = {
        **WINDOW_HINTS,
        "out_channels": "filters",
        "dilation_rate": "dilation",
        "kernel_regularizer": "l2",
    }

    @field_validator("groups")
    @classmethod
    def _groups_divide_filters(cls, groups: int, info: ValidationInfo) -> int:
        filters = info.data.get("filters")
        if filters is not None and filters % groups:
            raise invalid(
                f"groups={groups} must divide filters={filters}",
                f"filters a multiple of {groups}",
                filters,
            )
        return groups

    @property
    def window(self) -> Window:
        return Window.of(self.rank, self.kernel, self.stride, self.padding, self.dilation)

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        channels = _in_channels(self, shape)
        if channels % self.groups:
            raise ShapeError(
                mismatch(
                    f"groups={self.groups} must divide the input channels {fmt_shape(shape)}",
                    f"channels a multiple of {self.groups}",
                    channels,
                )
            )
        return (*self.window.output(shape), self.filters)

    def params(self, inputs: list[Shape], backend: Backend) -> ParamCount:
        per_filter = self.window.taps() * _in_channels(self, inputs[0]) // self.groups
        return ParamCount(self.filters * (per_filter + (1 if self.bias else 0)))

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        positions = numel(output[:-1])
        if positions is None:
            return None
        per_output = self.window.taps() * _in_channels(self, inputs[0]) // self.groups
        return 2 * positions * self.filters * per_output


class Conv1D(Conv):
    """Over [time, channels]. `padding=causal` pads dilation*(kernel-1) zeros before the
    sequence only, so that step t sees steps ≤ t (WaveNet, TCN); the output has
    ceil(time / stride) steps."""

    kind: Literal["conv1d"] = "conv1d"
    padding: CausalPadding = "valid"
    rank = 1


class Conv2D(Conv):
    """Over [height, width, channels]."""

    kind: Literal["conv2d"] = "conv2d"
    rank = 2


class Conv3D(Conv):
    """Over [depth, height, width, channels] (volumes, or video as [time, height, width,
    channels])."""

    kind: Literal["conv3d"] = "conv3d"
    rank = 3


class Conv2DTranspose(SpatialLayer):
    """The transpose (gradient) of a conv2d: upsamples [h, w, c] by `stride`.

    Output sizes are Keras's (see `specc.layers.window`): `valid` gives
    (n-1)*stride + max(kernel, stride), `same` gives n*stride; an explicit int padding crops
    that many from both sides of (n-1)*stride + kernel, PyTorch's meaning. `activation`,
    `bias`, `init` and `bias_init` extend the contract as in conv2d.
    """

    kind: Literal["conv2d_transpose"] = "conv2d_transpose"
    filters: PositiveInt
    kernel: PerAxis
    stride: PerAxis = 1
    padding: Padding = "valid"
    activation: OptionalActivation = None
    bias: Flag = True
    init: Initializer = "glorot_uniform"
    bias_init: BiasInitializer = "zeros"

    rank = 2
    hints: ClassVar[dict[str, str]] = {**WINDOW_HINTS, "out_channels": "filters"}

    @property
    def window(self) -> Window:
        return Window.of(self.rank, self.kernel, self.stride, self.padding)

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        _in_channels(self, shape)
        return (*self.window.transposed_output(shape), self.filters)

    def params(self, inputs: list[Shape], backend: Backend) -> ParamCount:
        per_filter = self.window.taps() * _in_channels(self, inputs[0])
        return ParamCount(self.filters * (per_filter + (1 if self.bias else 0)))

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        # Every input element is multiplied into a kernel-sized patch of every filter.
        elements = numel(inputs[0])
        if elements is None:
            return None
        return 2 * elements * self.window.taps() * self.filters


class DepthwiseConv2D(SpatialLayer):
    """One kernel per input channel (times `multiplier`): [h, w, c] → [h', w', c * multiplier].

    Extensions to the contract: `dilation` (as in conv2d), `activation`, `bias=true` (Keras's
    default; PyTorch's equivalent is a conv2d with groups = channels), `init`, `bias_init`.
    """

    kind: Literal["depthwise_conv2d"] = "depthwise_conv2d"
    kernel: PerAxis
    stride: PerAxis = 1
    padding: Padding = "valid"
    multiplier: PositiveInt = 1
    dilation: PerAxis = 1
    activation: OptionalActivation = None
    bias: Flag = True
    init: Initializer = "glorot_uniform"
    bias_init: BiasInitializer = "zeros"

    rank = 2
    hints: ClassVar[dict[str, str]] = {
        **WINDOW_HINTS,
        "dilation_rate": "dilation",
        "depth_multiplier": "multiplier",
        "depthwise_initializer": "init",
    }

    @property
    def window(self) -> Window:
        return Window.of(self.rank, self.kernel, self.stride, self.padding, self.dilation)

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        channels = _in_channels(self, shape)
        return (*self.window.output(shape), channels * self.multiplier)

    def params(self, inputs: list[Shape], backend: Backend) -> ParamCount:
        outputs = _in_channels(self, inputs[0]) * self.multiplier
        return ParamCount(outputs * (self.window.taps() + (1 if self.bias else 0)))

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        elements = numel(output)
        return None if elements is None else 2 * elements * self.window.taps()


class SeparableConv(SpatialLayer):
    """A depthwise convolution (one kernel per input channel, times `multiplier`) then a
    pointwise one (a 1x1 convolution to `filters` channels), with Keras's semantics: one bias,
    after the pointwise step, and `activation` after that. Parameters: channels * multiplier
    * kernel taps, plus channels * multiplier * filters, plus filters for the bias.

    Extensions to the issue's form: `dilation` (of the depthwise step, as in conv2d), `init`
    (both kernels) and `bias_init`.
    """

    filters: PositiveInt
    kernel: PerAxis
    stride: PerAxis = 1
    padding: Padding = "valid"
    multiplier: PositiveInt = 1
    activation: OptionalActivation = None
    bias: Flag = True
    dilation: PerAxis = 1
    init: Initializer = "glorot_uniform"
    bias_init: BiasInitializer = "zeros"

    hints: ClassVar[dict[str, str]] = {
        **WINDOW_HINTS,
        "dilation_rate": "dilation",
        "depth_multiplier": "multiplier",
        "depthwise_initializer": "init",
        "pointwise_initializer": "init",
    }

    @property
    def window(self) -> Window:
        return Window.of(self.rank, self.kernel, self.stride, self.padding, self.dilation)

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        _in_channels(self, shape)
        return (*self.window.output(shape), self.filters)

    def params(self, inputs: list[Shape], backend: Backend) -> ParamCount:
        middle = _in_channels(self, inputs[0]) * self.multiplier
        depthwise = middle * self.window.taps()
        return ParamCount(depthwise + middle * self.filters + (self.filters if self.bias else 0))

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        positions = numel(output[:-1])
        if positions is None:
            return None
        middle = _in_channels(self, inputs[0]) * self.multiplier
        return 2 * positions * middle * (self.window.taps() + self.filters)


class SeparableConv1D(SeparableConv):
    """Over [time, channels]."""

    kind: Literal["separable_conv1d"] = "separable_conv1d"
    rank = 1


class SeparableConv2D(SeparableConv):
    """Over [height, width, channels]."""

    kind: Literal["separable_conv2d"] = "separable_conv2d"
    rank = 2
