"""Pooling and resampling over channels-last inputs: windowed and global max/average pooling,
upsampling, zero padding. None of them has parameters.

Windowed pooling takes `valid` or `same` padding only. Explicit pads would mean -inf for max
and "count the zeros or not" for average, which the frameworks answer differently. With
`same`, an average counts only the elements inside the input (TensorFlow's meaning).
"""

from typing import Annotated, ClassVar, Literal

from pydantic import field_validator

from specc.layers.args import NonNegativeInt, PerAxis, invalid, one_of, per_axis
from specc.layers.base import Layer, Shape, numel, require_rank
from specc.layers.window import LAYOUTS, PadWord, SpatialLayer, Window

POOL_HINTS: dict[str, str] = {
    "pool_size": "size",
    "kernel_size": "size",
    "kernel": "size",
    "strides": "stride",
}


class Pool(SpatialLayer):
    """Max or average over a `size` window moving by `stride`, which defaults to `size`
    (non-overlapping windows, as in both frameworks); `stride=none` means the same."""

    size: PerAxis
    stride: Annotated[
        PerAxis | None, one_of("a positive integer, a list of them, or none (meaning size)")
    ] = None
    padding: PadWord = "valid"

    op: ClassVar[Literal["max", "avg"]]
    hints: ClassVar[dict[str, str]] = POOL_HINTS

    @property
    def window(self) -> Window:
        stride = self.size if self.stride is None else self.stride
        return Window.of(self.rank, self.size, stride, self.padding)

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        self.spatial_input(shape)
        return (*self.window.output(shape), shape[-1])

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        elements = numel(output)
        return None if elements is None else elements * self.window.taps()


class MaxPool1D(Pool):
    kind: Literal["maxpool1d"] = "maxpool1d"
    rank = 1
    op = "max"


class MaxPool2D(Pool):
    kind: Literal["maxpool2d"] = "maxpool2d"
    rank = 2
    op = "max"


class MaxPool3D(Pool):
    kind: Literal["maxpool3d"] = "maxpool3d"
    rank = 3
    op = "max"


class AvgPool1D(Pool):
    kind: Literal["avgpool1d"] = "avgpool1d"
    rank = 1
    op = "avg"


class AvgPool2D(Pool):
    kind: Literal["avgpool2d"] = "avgpool2d"
    rank = 2
    op = "avg"


class AvgPool3D(Pool):
    kind: Literal["avgpool3d"] = "avgpool3d"
    rank = 3
    op = "avg"


class GlobalPool(SpatialLayer):
    """Max or average over all spatial positions: [spatial..., channels] → [channels]."""

    op: ClassVar[Literal["max", "avg"]]

    def output_shape(self, inputs: list[Shape]) -> Shape:
        self.spatial_input(inputs[0])
        return (inputs[0][-1],)

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        return numel(inputs[0])


class GlobalAvgPool1D(GlobalPool):
    kind: Literal["global_avgpool1d"] = "global_avgpool1d"
    rank = 1
    op = "avg"


class GlobalAvgPool2D(GlobalPool):
    kind: Literal["global_avgpool2d"] = "global_avgpool2d"
    rank = 2
    op = "avg"


class GlobalAvgPool3D(GlobalPool):
    kind: Literal["global_avgpool3d"] = "global_avgpool3d"
    rank = 3
    op = "avg"


class GlobalMaxPool1D(GlobalPool):
    kind: Literal["global_maxpool1d"] = "global_maxpool1d"
    rank = 1
    op = "max"


class GlobalMaxPool2D(GlobalPool):
    kind: Literal["global_maxpool2d"] = "global_maxpool2d"
    rank = 2
    op = "max"


class GlobalMaxPool3D(GlobalPool):
    kind: Literal["global_maxpool3d"] = "global_maxpool3d"
    rank = 3
    op = "max"


class UpSample(SpatialLayer):
    """Repeats every element `scale` times along each spatial axis (nearest neighbour)."""

    scale: PerAxis = 2

    hints: ClassVar[dict[str, str]] = {"size": "scale", "scale_factor": "scale"}
    accepts = "any"
    produces = "same"

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        self.spatial_input(shape)
        scale = per_axis(self.scale, self.rank)
        spatial = tuple(
            None if d is None else d * s for d, s in zip(shape[:-1], scale, strict=True)
        )
        return (*spatial, shape[-1])

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        return 0


class UpSample1D(UpSample):
    """Repeats every step `scale` times: [time, channels] → [time * scale, channels]."""

    kind: Literal["upsample1d"] = "upsample1d"
    rank = 1


class UpSample2D(UpSample):
    """Repeats every pixel `scale` times along height and width (nearest neighbour)."""

    kind: Literal["upsample2d"] = "upsample2d"
    rank = 2


class UpSample3D(UpSample):
    """Repeats every voxel `scale` times along depth, height and width."""

    kind: Literal["upsample3d"] = "upsample3d"
    rank = 3


class ZeroPad2D(Layer):
    """Zeros around the image: `padding` is an int (all four sides), [h, w] (h rows above
    and below, w columns left and right), or [[top, bottom], [left, right]] as in Keras."""

    kind: Literal["zeropad2d"] = "zeropad2d"
    padding: Annotated[
        NonNegativeInt | list[NonNegativeInt] | list[list[NonNegativeInt]],
        one_of("an int, [h, w] or [[top, bottom], [left, right]] of non-negative integers"),
    ]

    accepts = "any"
    produces = "same"

    @field_validator("padding")
    @classmethod
    def _two_by_two(cls, padding: int | list) -> int | list:
        if isinstance(padding, int):
            return padding
        flat = len(padding) == 2 and all(isinstance(p, int) for p in padding)
        nested = len(padding) == 2 and all(isinstance(p, list) and len(p) == 2 for p in padding)
        if not (flat or nested):
            raise invalid(
                "zeropad2d padding must be an int, [h, w] or [[top, bottom], [left, right]]",
                "one of those forms",
                padding,
            )
        return padding

    @property
    def pads(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """((top, bottom), (left, right))."""
        p = self.padding
        if isinstance(p, int):
            return ((p, p), (p, p))
        if isinstance(p[0], int):
            return ((p[0], p[0]), (p[1], p[1]))  # type: ignore[return-value]
        return (tuple(p[0]), tuple(p[1]))  # type: ignore[return-value]

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        require_rank(self.kind, shape, 3, LAYOUTS[2])
        (top, bottom), (left, right) = self.pads
        h, w, c = shape
        return (None if h is None else h + top + bottom, None if w is None else w + left + right, c)

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        return 0
