"""Sliding windows, shared by convolutions and pooling: output sizes, `same` pads, and the
base class of layers whose arguments give one value per spatial axis.

Along one axis of length n, a window of k taps spaced `dilation` apart spans
s = dilation*(k-1) + 1 elements, and moves by `stride`:

- `valid`: no padding; out = floor((n - s) / stride) + 1 (TensorFlow and PyTorch agree).
- `same` (Keras/TensorFlow meaning, at every stride): out = ceil(n / stride), padded with
  total = max((out-1)*stride + s - n, 0) zeros, total // 2 before and the rest after. PyTorch's
  own `padding="same"` exists only for stride 1, so its backend pads explicitly with
  `Window.same_padding`.
- an int p (PyTorch's meaning): p zeros on both sides; out = floor((n + 2p - s) / stride) + 1.
- `causal` (conv1d only, Keras's meaning): dilation*(k-1) zeros before the sequence and none
  after, so that an output sees only its own and earlier steps; out = ceil(n / stride).

A transposed convolution runs this backwards: `valid` gives (n-1)*stride + max(k, stride)
(Keras; PyTorch needs `output_padding` = max(stride - k, 0) for it), `same` gives n*stride,
and an explicit p crops p from both sides of the full (n-1)*stride + k.

Every shape here is spatial only, channels-last, without the batch; None is `?` and stays
`?` through the arithmetic.
"""

from dataclasses import dataclass
from math import prod
from typing import Annotated, ClassVar, Literal

from pydantic import ValidationInfo, field_validator

from specc.errors import ShapeError, mismatch
from specc.layers.args import NonNegativeInt, check_axes, invalid, one_of, per_axis
from specc.layers.base import Dim, Layer, Shape, fmt_shape, require_rank

PadWord = Literal["valid", "same"]
# A convolution's `padding`: a word, or explicit zeros on both sides (one int, or one per axis).
Padding = Annotated[
    PadWord | NonNegativeInt | list[NonNegativeInt],
    one_of("valid, same, a non-negative integer or a list of them"),
]
# conv1d's, which may also be `causal`.
CausalPadding = Annotated[
    PadWord | Literal["causal"] | NonNegativeInt | list[NonNegativeInt],
    one_of("valid, same, causal, a non-negative integer or a list of them"),
]

# What the spatial axes of a channels-last input are called, by their number.
SPATIAL_AXES: dict[int, tuple[str, ...]] = {
    1: ("time",),
    2: ("height", "width"),
    3: ("depth", "height", "width"),
}
LAYOUTS: dict[int, str] = {
    1: "[time, channels]",
    2: "[height, width, channels]",
    3: "[depth, height, width, channels]",
}


def window_length(
    size: Dim, kernel: int, stride: int, padding: PadWord | Literal["causal"] | int, dilation: int
) -> Dim:
    """Output length along one axis (see the module docstring); ≤ 0 when the window does not
    fit, which callers turn into an error."""
    if size is None:
        return None
    if padding in ("same", "causal"):
        return -(-size // stride)
    pad = 0 if padding == "valid" else 2 * padding
    return (size + pad - (dilation * (kernel - 1) + 1)) // stride + 1


def transposed_length(size: Dim, kernel: int, stride: int, padding: PadWord | int) -> Dim:
    """Output length along one axis of a transposed convolution (see the module docstring)."""
    if size is None:
        return None
    if padding == "same":
        return size * stride
    if padding == "valid":
        return (size - 1) * stride + max(kernel, stride)
    return (size - 1) * stride + kernel - 2 * padding


@dataclass(frozen=True)
class Window:
    """A layer's window with one number per spatial axis; `padding` is a word or per-axis ints."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: PadWord | Literal["causal"] | tuple[int, ...]
    dilation: tuple[int, ...]

    @classmethod
    def of(
        cls,
        rank: int,
        kernel: int | list[int],
        stride: int | list[int],
        padding: PadWord | Literal["causal"] | int | list[int],
        dilation: int | list[int] = 1,
    ) -> "Window":
        """From arguments as written (an int or a list each), already validated."""
        pad = padding if isinstance(padding, str) else per_axis(padding, rank)
        return cls(per_axis(kernel, rank), per_axis(stride, rank), pad, per_axis(dilation, rank))

    @property
    def rank(self) -> int:
        return len(self.kernel)

    def _pad(self, axis: int) -> PadWord | Literal["causal"] | int:
        return self.padding if isinstance(self.padding, str) else self.padding[axis]

    def output(self, shape: Shape) -> Shape:
        """Spatial output for a channels-last input `shape` ([spatial..., channels])."""
        out = []
        for axis, size in enumerate(shape[: self.rank]):
            k, d, pad = self.kernel[axis], self.dilation[axis], self._pad(axis)
            length = window_length(size, k, self.stride[axis], pad, d)
            if length is not None and length <= 0:
                raise ShapeError(self._too_small(shape, axis))
            out.append(length)
        return tuple(out)

    def transposed_output(self, shape: Shape) -> Shape:
        """Spatial output of a transposed convolution for a channels-last input `shape`."""
        out = []
        for axis, size in enumerate(shape[: self.rank]):
            length = transposed_length(size, self.kernel[axis], self.stride[axis], self._pad(axis))
            if length is not None and length <= 0:
                raise ShapeError(
                    mismatch(
                        "padding crops away the whole output along "
                        f"{SPATIAL_AXES[self.rank][axis]}",
                        f"padding < {((size - 1) * self.stride[axis] + self.kernel[axis]) / 2:g}",
                        f"padding {self._pad(axis)} for input {fmt_shape(shape)}",
                    )
                )
            out.append(length)
        return tuple(out)

    def same_padding(self, spatial: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
        """(before, after) zeros per axis that TensorFlow adds for `same` on this input.

        Backends without TensorFlow's rule (PyTorch at stride > 1) pad with these explicitly.
        For a transposed convolution, pass the output size: the pads of the forward
        convolution it inverts are what it crops.
        """
        pads = []
        for axis, size in enumerate(spatial):
            span = self.dilation[axis] * (self.kernel[axis] - 1) + 1
            out = -(-size // self.stride[axis])
            total = max((out - 1) * self.stride[axis] + span - size, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)

    def causal_padding(self) -> int:
        """The zeros `causal` puts before a sequence: what the dilated kernel reaches back."""
        return self.dilation[0] * (self.kernel[0] - 1)

    def taps(self) -> int:
        """Elements under the window: the kernel's size, for parameter and FLOP counts."""
        return prod(self.kernel)

    def _too_small(self, shape: Shape, axis: int) -> str:
        name = SPATIAL_AXES[self.rank][axis]
        k, d, pad = self.kernel[axis], self.dilation[axis], self._pad(axis)
        span = d * (k - 1) + 1
        detail = f"kernel {k}" if d == 1 else f"kernel {k} dilated by {d} spans {span}"
        need = span
        if isinstance(pad, int) and pad > 0:
            need = span - 2 * pad
            detail += f", less padding {pad} on each side"
        return mismatch(
            f"window is larger than the input along {name}",
            f"{name} of at least {need} ({detail})",
            f"{shape[axis]} in input {fmt_shape(shape)}",
        )


class SpatialLayer(Layer):
    """A layer over `rank` spatial axes of a channels-last input [spatial..., channels].

    Its per-axis arguments (`kernel`, `size`, `stride`, `padding`, `dilation`, `scale`, as
    the subclass has them) must list one value per spatial axis when given as lists.
    """

    rank: ClassVar[int]

    @field_validator("kernel", "size", "stride", "padding", "dilation", "scale", check_fields=False)
    @classmethod
    def _one_per_axis(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, (int, list)):
            check_axes(value, cls.rank, str(info.field_name), SPATIAL_AXES[cls.rank])
        return value

    @field_validator("dilation", check_fields=False)
    @classmethod
    def _not_strided(cls, dilation: int | list[int], info: ValidationInfo) -> int | list[int]:
        # TensorFlow has no kernel for both at once, and Keras refuses them, on any axes.
        stride = info.data.get("stride", 1)
        if max(per_axis(stride, cls.rank)) > 1 and max(per_axis(dilation, cls.rank)) > 1:
            raise invalid(
                "dilation > 1 cannot be combined with stride > 1 (TensorFlow has no such "
                "convolution)",
                "dilation 1 or stride 1",
                f"stride {stride}, dilation {dilation}",
            )
        return dilation

    def spatial_input(self, shape: Shape) -> None:
        """Check that `shape` is [spatial..., channels] for this layer's rank."""
        require_rank(self.kind, shape, self.rank + 1, LAYOUTS[self.rank])
