"""Pooling and resampling over channels-last inputs: windowed and global max/average pooling,
upsampling, zero padding, cropping. None of them has parameters.

Windowed pooling takes `valid` or `same` padding only. Explicit pads would mean -inf for max
and "count the zeros or not" for average, which the frameworks answer differently. With
`same`, an average counts only the elements inside the input (TensorFlow's meaning).
"""

from typing import Annotated, ClassVar, Literal

from pydantic import field_validator

from specc.errors import ShapeError, mismatch
from specc.layers.args import NonNegativeInt, PerAxis, invalid, one_of, per_axis
from specc.layers.base import Layer, Shape, fmt_shape, numel, require_rank
from specc.layers.window import LAYOUTS, SPATIAL_AXES, PadWord, SpatialLayer, Window

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


# Amounts per side along one axis: an int (both sides) or [before, after].
Sides1D = Annotated[
    NonNegativeInt | list[NonNegativeInt],
    one_of("an int or [before, after] of non-negative integers"),
]
# Along height and width: an int, [h, w] (each on both sides) or [[top, bottom], [left, right]].
Sides2D = Annotated[
    NonNegativeInt | list[NonNegativeInt] | list[list[NonNegativeInt]],
    one_of("an int, [h, w] or [[top, bottom], [left, right]] of non-negative integers"),
]


def check_sides_1d(value: int | list, layer: str, argument: str) -> int | list:
    """A Sides1D value as written: a list must be [before, after]."""
    if isinstance(value, list) and len(value) != 2:
        raise invalid(
            f"{layer} {argument} must be an int or [before, after]", "one of those forms", value
        )
    return value


def check_sides_2d(value: int | list, layer: str, argument: str) -> int | list:
    """A Sides2D value as written: a list must be [h, w] or [[top, bottom], [left, right]]."""
    if isinstance(value, int):
        return value
    flat = len(value) == 2 and all(isinstance(p, int) for p in value)
    nested = len(value) == 2 and all(isinstance(p, list) and len(p) == 2 for p in value)
    if not (flat or nested):
        raise invalid(
            f"{layer} {argument} must be an int, [h, w] or [[top, bottom], [left, right]]",
            "one of those forms",
            value,
        )
    return value


def sides(value: int | list, rank: int) -> tuple[tuple[int, int], ...]:
    """(before, after) per spatial axis, from a validated Sides1D (rank 1) or Sides2D."""
    if isinstance(value, int):
        return ((value, value),) * rank
    if rank == 1:
        return (tuple(value),)  # type: ignore[return-value]
    if isinstance(value[0], int):
        return tuple((v, v) for v in value)  # type: ignore[return-value]
    return tuple(tuple(v) for v in value)  # type: ignore[return-value]


class Edges(Layer):
    """Zeros added around (ZeroPad: `pads`), or elements cut from (Cropping: `crops`), the
    spatial axes of [spatial..., channels], as (before, after) per axis."""

    rank: ClassVar[int]
    accepts = "any"
    produces = "same"

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        return 0


class ZeroPad(Edges):
    """Zero padding (zeropad1d, zeropad2d): `padding` as (before, after) per axis is `pads`."""

    @property
    def pads(self) -> tuple[tuple[int, int], ...]:
        return sides(self.padding, self.rank)  # type: ignore[attr-defined]

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        require_rank(self.kind, shape, self.rank + 1, LAYOUTS[self.rank])
        spatial = tuple(
            None if d is None else d + before + after
            for d, (before, after) in zip(shape[:-1], self.pads, strict=True)
        )
        return (*spatial, shape[-1])


class ZeroPad1D(ZeroPad):
    """Zeros before and after the sequence: `padding` is an int (both ends) or [before, after],
    as Keras's ZeroPadding1D."""

    kind: Literal["zeropad1d"] = "zeropad1d"
    padding: Sides1D

    rank = 1

    @field_validator("padding")
    @classmethod
    def _before_after(cls, padding: int | list) -> int | list:
        return check_sides_1d(padding, "zeropad1d", "padding")


class ZeroPad2D(ZeroPad):
    """Zeros around the image: `padding` is an int (all four sides), [h, w] (h rows above
    and below, w columns left and right), or [[top, bottom], [left, right]] as in Keras."""

    kind: Literal["zeropad2d"] = "zeropad2d"
    padding: Sides2D

    rank = 2

    @field_validator("padding")
    @classmethod
    def _two_by_two(cls, padding: int | list) -> int | list:
        return check_sides_2d(padding, "zeropad2d", "padding")


class Cropping(Edges):
    """Cropping (cropping1d, cropping2d): `cropping` as (before, after) per axis is `crops`."""

    @property
    def crops(self) -> tuple[tuple[int, int], ...]:
        return sides(self.cropping, self.rank)  # type: ignore[attr-defined]

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        require_rank(self.kind, shape, self.rank + 1, LAYOUTS[self.rank])
        spatial = []
        for axis, (size, (before, after)) in enumerate(zip(shape[:-1], self.crops, strict=True)):
            if size is not None and before + after >= size:
                raise ShapeError(
                    mismatch(
                        f"crops away the whole input along {SPATIAL_AXES[self.rank][axis]}",
                        f"a size larger than {before} + {after}",
                        f"{size} in input {fmt_shape(shape)}",
                    )
                )
            spatial.append(None if size is None else size - before - after)
        return (*spatial, shape[-1])


class Cropping1D(Cropping):
    """Cuts steps off the start and end of the sequence: `cropping` is an int (both ends) or
    [start, end], as Keras's Cropping1D."""

    kind: Literal["cropping1d"] = "cropping1d"
    cropping: Sides1D

    rank = 1

    @field_validator("cropping")
    @classmethod
    def _before_after(cls, cropping: int | list) -> int | list:
        return check_sides_1d(cropping, "cropping1d", "cropping")


class Cropping2D(Cropping):
    """Cuts rows and columns off the image's edges: `cropping` takes zeropad2d's forms (an
    int, [h, w], or [[top, bottom], [left, right]]), as Keras's Cropping2D."""

    kind: Literal["cropping2d"] = "cropping2d"
    cropping: Sides2D

    rank = 2

    @field_validator("cropping")
    @classmethod
    def _two_by_two(cls, cropping: int | list) -> int | list:
        return check_sides_2d(cropping, "cropping2d", "cropping")
