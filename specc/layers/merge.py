"""Merges: layers that combine two or more tensors (graph form only).

Elementwise merges (add, subtract, multiply, average, maximum, minimum) need inputs of one
shape — no broadcasting, so a mistake in the wiring is reported rather than silently
broadcast. `?` matches any size. `subtract` takes exactly two.
`dot` multiplies two tensors along an axis of each (keras.layers.Dot).
`concat` joins along `axis` (batch = axis 0, as in both frameworks; -1, the default, is the
channels / features axis) and needs every other axis equal.
"""

from typing import Annotated, ClassVar, Literal

from pydantic import field_validator

from specc.errors import ShapeError, mismatch
from specc.layers.args import Flag, Int, invalid, one_of
from specc.layers.base import Dim, Layer, Shape, fmt_shape, numel, resolve_axis


def _shapes(shapes: list[Shape]) -> str:
    return ", ".join(fmt_shape(s) for s in shapes)


def _meet(a: Dim, b: Dim) -> Dim:
    """The size two compatible dims agree on (`?` yields to a number)."""
    return b if a is None else a


def _compatible(a: Dim, b: Dim) -> bool:
    return a is None or b is None or a == b


class Merge(Layer):
    """Two or more inputs of one shape, combined element by element."""

    arity = "many"
    named_inputs = (2, None)

    def _check_count(self, inputs: list[Shape]) -> None:
        if len(inputs) < 2:
            raise ShapeError(
                mismatch("needs two or more inputs to merge", "two or more", len(inputs))
            )

    def output_shape(self, inputs: list[Shape]) -> Shape:
        self._check_count(inputs)
        out = inputs[0]
        for shape in inputs[1:]:
            if len(shape) != len(out) or not all(map(_compatible, out, shape)):
                raise ShapeError(
                    mismatch(
                        "needs inputs of one shape",
                        "equal shapes",
                        _shapes(inputs),
                    )
                )
            out = tuple(map(_meet, out, shape))
        return out

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        elements = numel(output)
        return None if elements is None else (len(inputs) - 1) * elements


class Add(Merge):
    kind: Literal["add"] = "add"


class Subtract(Merge):
    """The first input minus the second: exactly two inputs, as Keras's Subtract."""

    kind: Literal["subtract"] = "subtract"

    def _check_count(self, inputs: list[Shape]) -> None:
        if len(inputs) != 2:
            raise ShapeError(mismatch("needs exactly two inputs", "two", len(inputs)))


class Multiply(Merge):
    kind: Literal["multiply"] = "multiply"


class Average(Merge):
    kind: Literal["average"] = "average"

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        elements = numel(output)
        return None if elements is None else len(inputs) * elements


class Maximum(Merge):
    """The largest of its inputs, element by element."""

    kind: Literal["maximum"] = "maximum"


class Minimum(Merge):
    """The smallest of its inputs, element by element."""

    kind: Literal["minimum"] = "minimum"


class Concat(Merge):
    """Joins its inputs along `axis`; works on any element type (int token ids too), but
    all inputs must share it."""

    kind: Literal["concat"] = "concat"
    axis: Int = -1

    hints: ClassVar[dict[str, str]] = {"dim": "axis"}
    accepts = "any"
    produces = "same"

    @field_validator("axis")
    @classmethod
    def _not_batch(cls, axis: int) -> int:
        if axis == 0:
            raise invalid("concat cannot join along the batch", "a non-zero axis", "axis 0")
        return axis

    def output_shape(self, inputs: list[Shape]) -> Shape:
        self._check_count(inputs)
        first = inputs[0]
        at = resolve_axis(self.axis, first)
        for shape in inputs[1:]:
            same_rank = len(shape) == len(first)
            others = same_rank and all(
                _compatible(a, b)
                for i, (a, b) in enumerate(zip(first, shape, strict=True))
                if i != at
            )
            if not others:
                raise ShapeError(
                    mismatch(
                        f"along axis {self.axis} needs inputs equal on every other axis",
                        "equal shapes except along the axis",
                        _shapes(inputs),
                    )
                )
        out = list(first)
        for shape in inputs[1:]:
            out = [
                (None if a is None or b is None else a + b) if i == at else _meet(a, b)
                for i, (a, b) in enumerate(zip(out, shape, strict=True))
            ]
        return tuple(out)

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        return 0


DotAxes = Annotated[Int | list[Int], one_of("an axis or a list of two axes")]


class Dot(Layer):
    """The dot products of two tensors along one axis of each, keras.layers.Dot: `axes` is
    that axis of both, or `[axis of a, axis of b]` (batch = axis 0, which cannot be one;
    -1 is the features). Inputs are [features] or [time, features], both of one rank; the
    output is a's remaining axes, then b's: [d]·[d] → [1], [T1, d]·[T2, d] with axes=-1 →
    [T1, T2]. `normalize` divides each input by its L2 norm along the axis first (at least
    1e-7, Keras's epsilon), so the products are cosine similarities.
    """

    kind: Literal["dot"] = "dot"
    axes: DotAxes
    normalize: Flag = False

    arity = "many"
    named_inputs = (2, None)  # tensors only; `resolved` checks that there are two

    @field_validator("axes")
    @classmethod
    def _two_axes(cls, axes: int | list[int]) -> int | list[int]:
        pair = axes if isinstance(axes, list) else [axes]
        if isinstance(axes, list) and len(axes) != 2:
            raise invalid("axes must name one axis of each input", "2 axes", f"{len(axes)}")
        if 0 in pair:
            raise invalid("dot cannot multiply along the batch", "non-zero axes", f"{axes}")
        return axes

    def pair(self) -> tuple[int, int]:
        """The axes, one of each input, as written."""
        if isinstance(self.axes, list):
            return self.axes[0], self.axes[1]
        return self.axes, self.axes

    def resolved(self, inputs: list[Shape]) -> tuple[int, int]:
        """The axes as indexes into each input's shape (batch excluded); checks the inputs."""
        if len(inputs) != 2:
            raise ShapeError(mismatch("needs exactly two inputs", "two", len(inputs)))
        a, b = inputs
        if len(a) != len(b) or len(a) not in (1, 2):
            raise ShapeError(
                mismatch(
                    "needs two inputs of one rank, each [features] or [time, features]",
                    "ranks 1 and 1, or 2 and 2",
                    _shapes(inputs),
                )
            )
        at = tuple(
            resolve_axis(axis, shape) for axis, shape in zip(self.pair(), inputs, strict=True)
        )
        if not _compatible(a[at[0]], b[at[1]]):
            raise ShapeError(
                mismatch(
                    f"needs equal sizes along the axes {list(self.pair())}",
                    f"{a[at[0]]} in both",
                    _shapes(inputs),
                )
            )
        return at  # type: ignore[return-value]

    def output_shape(self, inputs: list[Shape]) -> Shape:
        i, j = self.resolved(inputs)
        a, b = inputs
        out = a[:i] + a[i + 1 :] + b[:j] + b[j + 1 :]
        return out or (1,)

    def flops(self, inputs: list[Shape], output: Shape) -> int | None:
        i, _ = self.resolved(inputs)
        elements, length = numel(output), inputs[0][i]
        if elements is None or length is None:
            return None
        return 2 * elements * length
