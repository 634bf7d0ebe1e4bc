"""Core layers: dense, dropout and its variants (training-time noise), and the layers that
only rearrange elements.

FLOPs of weighted layers count multiply-adds as 2 and leave out bias additions and fused
activations, as published model costs do; layers that only move elements count 0.
"""

from math import prod
from typing import ClassVar, Literal

from pydantic import field_validator

from specc.errors import ShapeError, mismatch
from specc.layers.activation import OptionalActivation
from specc.layers.args import Flag, Int, NonNegativeFloat, PositiveInt, Rate, invalid
from specc.layers.base import (
    Backend,
    Layer,
    ParamCount,
    Shape,
    fmt_shape,
    numel,
    require_known,
    require_rank,
)
from specc.layers.initializers import BIAS_INIT_HINTS, INIT_HINTS, BiasInitializer, Initializer
from specc.layers.window import LAYOUTS


class Dense(Layer):
    """A fully connected layer on the last axis; any leading axes are kept (as Keras does,
    and as PyTorch's Linear does), so [time, features] → [time, units].

    `l1` / `l2` add weight penalties on the kernel to the loss (Keras's kernel_regularizer;
    the PyTorch backend adds the same terms to its loss).
    """

    kind: Literal["dense"] = "dense"
    units: PositiveInt
    activation: OptionalActivation = None
    bias: Flag = True
    l1: NonNegativeFloat = 0.0
    l2: NonNegativeFloat = 0.0
    init: Initializer = "glorot_uniform"
    bias_init: BiasInitializer = "zeros"

    hints: ClassVar[dict[str, str]] = {
        "out_features": "units",
        "use_bias": "bias",
        **INIT_HINTS,
        **BIAS_INIT_HINTS,
    }

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        require_known(shape, -1, "input features (last axis)")
        return (*shape[:-1], self.units)

    def params(self, inputs: list[Shape], backend: Backend) -> ParamCount:
        features = require_known(inputs[0], -1, "input features (last axis)")
        return ParamCount(features * self.units + (self.units if self.bias else 0))

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        rows = numel(output[:-1])
        features = inputs[0][-1]
        return None if rows is None or features is None else 2 * rows * features * self.units


class TrainingOnly(Layer):
    """A layer that acts only while training (a dropout, a noise) and is the identity at
    inference: its output has its input's shape and costs no FLOPs worth counting."""

    def output_shape(self, inputs: list[Shape]) -> Shape:
        return inputs[0]

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        return 0


class Dropout(TrainingOnly):
    """Zeroes each element with probability `rate` while training (survivors are scaled by
    1 / (1 - rate)); the identity at inference."""

    kind: Literal["dropout"] = "dropout"
    rate: Rate

    hints: ClassVar[dict[str, str]] = {"p": "rate"}
    accepts = "any"
    produces = "same"


class SpatialDropout(TrainingOnly):
    """Zeroes whole channels with probability `rate` while training (the same channels at
    every position of a sample; survivors are scaled by 1 / (1 - rate)), for inputs whose
    neighbouring positions are correlated; the identity at inference. Keras's
    SpatialDropout1D/2D, PyTorch's Dropout1d/2d."""

    rate: Rate

    rank: ClassVar[int]
    hints: ClassVar[dict[str, str]] = {"p": "rate"}

    def output_shape(self, inputs: list[Shape]) -> Shape:
        require_rank(self.kind, inputs[0], self.rank + 1, LAYOUTS[self.rank])
        return inputs[0]


class SpatialDropout1D(SpatialDropout):
    """Over [time, channels]."""

    kind: Literal["spatial_dropout1d"] = "spatial_dropout1d"
    rank = 1


class SpatialDropout2D(SpatialDropout):
    """Over [height, width, channels]."""

    kind: Literal["spatial_dropout2d"] = "spatial_dropout2d"
    rank = 2


class GaussianNoise(TrainingOnly):
    """Adds N(0, stddev²) noise to every element while training; the identity at inference."""

    kind: Literal["gaussian_noise"] = "gaussian_noise"
    stddev: NonNegativeFloat

    hints: ClassVar[dict[str, str]] = {"std": "stddev"}


class GaussianDropout(TrainingOnly):
    """Multiplies every element by N(1, rate / (1 - rate)) noise while training (Keras's
    GaussianDropout: the variance multiplicative dropout of `rate` has); the identity at
    inference."""

    kind: Literal["gaussian_dropout"] = "gaussian_dropout"
    rate: Rate

    hints: ClassVar[dict[str, str]] = {"p": "rate"}


class AlphaDropout(TrainingOnly):
    """Dropout for self-normalizing (selu) networks: dropped elements take selu's negative
    saturation value and an affine map keeps the mean and variance, while training (Keras's
    AlphaDropout, PyTorch's AlphaDropout); the identity at inference."""

    kind: Literal["alpha_dropout"] = "alpha_dropout"
    rate: Rate

    hints: ClassVar[dict[str, str]] = {"p": "rate"}


class Flatten(Layer):
    """All non-batch axes into one, in channels-last (row-major) order — the order the spec's
    shapes describe, so a PyTorch backend must flatten NHWC, not NCHW."""

    kind: Literal["flatten"] = "flatten"

    accepts = "any"
    produces = "same"

    def output_shape(self, inputs: list[Shape]) -> Shape:
        return (numel(inputs[0]),)

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        return 0


class Reshape(Layer):
    """Reshape to `shape`, which excludes the batch and may hold one -1 (inferred), e.g.
    `reshape([7, 7, 64])` or `reshape([-1, 16])`. Elements keep their row-major order."""

    kind: Literal["reshape"] = "reshape"
    shape: list[Int]

    hints: ClassVar[dict[str, str]] = {"target_shape": "shape"}
    accepts = "any"
    produces = "same"

    @field_validator("shape")
    @classmethod
    def _one_inferred(cls, shape: list[int]) -> list[int]:
        if not shape:
            raise invalid("reshape needs a target shape", "at least one dimension", "[]")
        if any(d == 0 or d < -1 for d in shape):
            raise invalid(
                "reshape dimensions must be positive, or -1 for one inferred dimension",
                "sizes > 0 and at most one -1",
                shape,
            )
        if shape.count(-1) > 1:
            raise invalid("reshape can infer only one dimension", "at most one -1", shape)
        return shape

    def output_shape(self, inputs: list[Shape]) -> Shape:
        total = numel(inputs[0])
        known = prod(d for d in self.shape if d != -1)
        if total is None:
            # Only the run knows; -1 stays unknown, and the other sizes are taken on trust.
            return tuple(None if d == -1 else d for d in self.shape)
        if -1 in self.shape:
            if total % known:
                raise ShapeError(self._mismatch(inputs[0], f"a multiple of {known}", total))
            return tuple(total // known if d == -1 else d for d in self.shape)
        if total != known:
            raise ShapeError(self._mismatch(inputs[0], f"{known} elements", total))
        return tuple(self.shape)

    def _mismatch(self, shape: Shape, expected: str, total: int) -> str:
        return mismatch(
            f"target {self.shape} does not fit the input {fmt_shape(shape)}",
            expected,
            f"{total} elements",
        )

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        return 0


class Permute(Layer):
    """Reorder the non-batch axes, numbered from 1 as in Keras's Permute: `permute([2, 1])`
    turns [time, features] into [features, time]."""

    kind: Literal["permute"] = "permute"
    axes: list[PositiveInt]

    hints: ClassVar[dict[str, str]] = {"dims": "axes"}
    accepts = "any"
    produces = "same"

    @field_validator("axes")
    @classmethod
    def _is_permutation(cls, axes: list[int]) -> list[int]:
        if sorted(axes) != list(range(1, len(axes) + 1)):
            expected = f"each of 1..{len(axes)} once" if axes else "a non-empty list"
            raise invalid(
                "permute axes must list every non-batch axis once, numbered from 1",
                expected,
                axes,
            )
        return axes

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        if len(shape) != len(self.axes):
            raise ShapeError(
                mismatch(
                    f"axes {self.axes} must name every axis of the input {fmt_shape(shape)}",
                    f"{len(shape)} axes",
                    len(self.axes),
                )
            )
        return tuple(shape[a - 1] for a in self.axes)

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        return 0


class Identity(Layer):
    """Passes its input through unchanged (a placeholder, or a named point in a graph)."""

    kind: Literal["identity"] = "identity"

    accepts = "any"
    produces = "same"

    def output_shape(self, inputs: list[Shape]) -> Shape:
        return inputs[0]

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        return 0
